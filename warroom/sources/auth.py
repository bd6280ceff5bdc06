"""Credentials of deliveries: a shared token (bearer or basic auth, as Alertmanager's and
Grafana's `http_config` send it) or an HMAC-SHA256 signature of the body."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping

from warroom.sources.base import SourceError


def check_token(headers: Mapping[str, str], token: str, *, source: str) -> None:
    """`Authorization: Bearer <token>`, or basic auth with the token as the password (any user).

    An unset token refuses everything: a source open to anyone could open rooms and page people."""
    if not token:
        raise SourceError(401, f"{source} deliveries are refused: no token is configured for {source}")
    scheme, _, value = headers.get("authorization", "").partition(" ")
    given = value.strip()
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(given, validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            raise SourceError(401, "basic auth credentials are not base64 of user:password") from None
    elif scheme.lower() != "bearer":
        raise SourceError(401, "send `Authorization: Bearer <token>` or basic auth with the token as password")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise SourceError(401, f"wrong {source} token")


def hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signatures(given: Iterable[str], secrets: Iterable[str], body: bytes) -> bool:
    """True when any given hex signature is the HMAC-SHA256 of `body` under any secret (several
    secrets: one being rotated in, one out)."""
    wanted = [hmac_hex(s, body) for s in secrets if s]
    return any(hmac.compare_digest(g.strip().lower().encode(), w.encode()) for g in given for w in wanted)
