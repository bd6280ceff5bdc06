"""Prometheus Alertmanager's webhook receiver (payload version 4)."""

from __future__ import annotations

from collections.abc import Mapping

from warroom.sources.auth import check_token
from warroom.sources.base import SourceError, SourceEvent
from warroom.sources.grouped import parse_group
from warroom.sources.payload import obj, parse_json


class AlertmanagerSource:
    name = "alertmanager"

    def __init__(self, token: str) -> None:
        self._token = token

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        check_token(headers, self._token, source=self.name)

    def parse(self, body: bytes) -> list[SourceEvent]:
        payload = obj(parse_json(body), "body")
        if str(payload.get("version", "4")) != "4":
            raise SourceError(
                422, f"version: only Alertmanager's payload version 4 is known, not {payload.get('version')!r}"
            )
        return [parse_group(self.name, payload, body)]
