"""The generic webhook: any JSON, mapped to an incident by the rules file's JMESPath expressions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jmespath
from pydantic import ValidationError

from warroom.models import INCIDENT_ID, Responder
from warroom.sources.auth import check_signatures, check_token
from warroom.sources.base import SourceError, SourceEvent
from warroom.sources.payload import body_key, parse_json, timestamp
from warroom.sources.rules import Webhook


class WebhookSource:
    name = "webhook"

    def __init__(self, hook_name: str, hook: Webhook) -> None:
        self.hook_name = hook_name
        self.hook = hook

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        if self.hook.hmac_secret:
            given = headers.get(self.hook.signature_header.lower(), "").strip().removeprefix("sha256=")
            if not given or not check_signatures([given], [self.hook.hmac_secret], body):
                raise SourceError(401, f"{self.hook.signature_header}: missing or not the HMAC-SHA256 of the body")
        else:
            check_token(headers, self.hook.token or "", source=f"webhook {self.hook_name}")

    def parse(self, body: bytes) -> list[SourceEvent]:
        doc = parse_json(body)
        m = self.hook.mapping
        external_id = _scalar(doc, m.id, "id", required=True)
        if not INCIDENT_ID.match(external_id):
            raise SourceError(422, "id: 1-64 letters, digits, '.', '_' or '-'")
        title = _scalar(doc, m.title, "title", required=True)[:500]
        severity = status = None
        if m.severity:
            given = _scalar(doc, m.severity, "severity").lower()
            severity = self.hook.severity_map.get(given) or _enum(given, "severity")
        if m.status:
            given = _scalar(doc, m.status, "status").lower()
            status = self.hook.status_map.get(given) or _enum(given, "status")
        at = timestamp(_scalar(doc, m.at, "at"), "at") if m.at else None
        return [
            SourceEvent(
                source=f"webhook:{self.hook_name}",
                external_id=external_id,
                delivery_key=(_scalar(doc, m.delivery_id, "delivery_id") if m.delivery_id else "") or body_key(body),
                at=at or datetime.now(UTC),
                title=title,
                description=_scalar(doc, m.description, "description")[:20_000] if m.description else None,
                severity=severity,
                status=status,
                responders=_responders(doc, m.responders) if m.responders else None,
                url=_scalar(doc, m.url, "url")[:1000] if m.url else "",
                summary=f"{status.value if status else 'update'}: {title[:100]}",
            )
        ]


def _scalar(doc: Any, expr: str | None, field: str, *, required: bool = False) -> str:
    value = jmespath.search(expr, doc) if expr else None
    if value is None:
        if required:
            raise SourceError(422, f"{field}: the mapping {expr!r} finds nothing in the body")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SourceError(422, f"{field}: the mapping {expr!r} finds a {type(value).__name__}, not text")
    return str(value).strip()


def _enum(given: str, field: str) -> Any:
    from warroom.models import IncidentStatus, Severity

    kind = Severity if field == "severity" else IncidentStatus
    try:
        return kind(given)
    except ValueError:
        raise SourceError(422, f"{field}: {given[:40]!r} is none of {', '.join(k.value for k in kind)}") from None


def _responders(doc: Any, expr: str) -> list[Responder]:
    found = jmespath.search(expr, doc)
    if found is None:
        return []
    if not isinstance(found, list) or len(found) > 500:
        raise SourceError(422, f"responders: the mapping {expr!r} must find a list (at most 500)")
    out = []
    for n, item in enumerate(found):
        try:
            out.append(Responder(email=item) if isinstance(item, str) else Responder.model_validate(item))
        except ValidationError as e:
            raise SourceError(422, f"responders[{n}]: {e.errors()[0]['msg']}") from None
    return out
