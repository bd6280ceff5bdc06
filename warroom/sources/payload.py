"""Reading a delivery's JSON strictly: every refusal names what is wrong (a 400/422, never a 500)."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

from warroom.sources.base import SourceError

# Alertmanager's "zero" time: an alert still firing has this as `endsAt`.
_ZERO_YEAR = 1


def parse_json(body: bytes) -> Any:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SourceError(400, f"body is not JSON: {e}") from None
    _refuse_unstorable(value)
    return value


def _refuse_unstorable(value: Any) -> None:
    """NUL in text and NaN/Infinity numbers: no store keeps them (PostgreSQL rejects NUL)."""
    if isinstance(value, str) and "\x00" in value:
        raise SourceError(422, "text must not contain NUL characters")
    if isinstance(value, float) and not math.isfinite(value):
        raise SourceError(422, "numbers must be finite")
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_unstorable(k)
            _refuse_unstorable(v)
    elif isinstance(value, list):
        for v in value:
            _refuse_unstorable(v)


def obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SourceError(422, f"{where}: expected an object")
    return value


def text(value: Any, where: str, *, required: bool = False, max_length: int = 500) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise SourceError(422, f"{where}: expected {'a non-empty' if required else 'a'} string")
    if len(value) > max_length:
        raise SourceError(422, f"{where}: longer than {max_length} characters")
    return value


def labels(value: Any, where: str) -> dict[str, str]:
    found = obj(value if value is not None else {}, where)
    if len(found) > 64:
        raise SourceError(422, f"{where}: more than 64 labels")
    return {text(k, where, required=True, max_length=100): text(v, f"{where}.{k}") for k, v in found.items()}


def timestamp(value: Any, where: str) -> datetime | None:
    """An RFC 3339 time; None for Alertmanager's zero time (`0001-01-01T00:00:00Z`)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise SourceError(422, f"{where}: expected an RFC 3339 time")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SourceError(422, f"{where}: not an RFC 3339 time: {value[:40]!r}") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return None if at.year == _ZERO_YEAR else at.astimezone(UTC)


def body_key(body: bytes) -> str:
    """A delivery's identity when the source gives none: the same body is the same delivery."""
    return hashlib.sha256(body).hexdigest()
