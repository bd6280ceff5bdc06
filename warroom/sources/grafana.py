"""Grafana alerting's webhook contact point: Alertmanager's group shape plus Grafana's fields
(`title`, `message`, `state`, `orgId`), one incident per group key like Alertmanager's."""

from __future__ import annotations

from collections.abc import Mapping

from warroom.sources.auth import check_token
from warroom.sources.base import SourceEvent
from warroom.sources.grouped import parse_group
from warroom.sources.payload import obj, parse_json, text


class GrafanaSource:
    name = "grafana"

    def __init__(self, token: str) -> None:
        self._token = token

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        check_token(headers, self._token, source=self.name)

    def parse(self, body: bytes) -> list[SourceEvent]:
        payload = obj(parse_json(body), "body")
        event = parse_group(self.name, payload, body)
        message = text(payload.get("message"), "message", max_length=20_000)
        if message and not event.description:
            event.description = message
        return [event]
