"""Who is signed in to the console: a signed, expiring session cookie, and its CSRF token.

The cookie holds the person (email, name, admin) and a random CSRF token, signed with
HMAC-SHA256 under WARROOM_SESSION_SECRET: no session table to look up on every page and every
replica of the API accepts it. Every form carries the CSRF token and every POST checks it, so a
page elsewhere cannot act with a visitor's cookie (SameSite=Lax stops most of that already).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass

from warroom.settings import Settings

COOKIE = "warroom_session"
PRE_COOKIE = "warroom_signin"  # the sign-in form's own CSRF token, before there is a session
_PROCESS_SECRET = secrets.token_bytes(32)


@dataclass(frozen=True)
class Identity:
    """A signed-in person. `email` is what the timeline records as the actor."""

    email: str
    name: str
    admin: bool
    via: str  # token, password, oidc, open
    csrf: str = ""
    expires: float = 0.0

    @property
    def label(self) -> str:
        return self.name or self.email


def _secret(settings: Settings) -> bytes:
    given = settings.session_secret.get_secret_value()
    if given:
        return hashlib.sha256(b"warroom-session:" + given.encode()).digest()
    token = settings.api_token.get_secret_value()
    if token:
        return hashlib.sha256(b"warroom-session-from-api-token:" + token.encode()).digest()
    return _PROCESS_SECRET


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(settings: Settings, email: str, name: str, *, admin: bool, via: str) -> tuple[Identity, str]:
    """A new session: the identity and the cookie value that carries it."""
    who = Identity(
        email=email,
        name=name,
        admin=admin,
        via=via,
        csrf=secrets.token_urlsafe(24),
        expires=time.time() + settings.session_hours * 3600,
    )
    body = _b64(json.dumps(asdict(who), separators=(",", ":")).encode())
    mac = _b64(hmac.new(_secret(settings), body.encode(), hashlib.sha256).digest())
    return who, f"{body}.{mac}"


def read(settings: Settings, value: str | None) -> Identity | None:
    """The identity in a cookie value, or None when it is missing, forged, malformed or expired."""
    if not value or "." not in value or len(value) > 4096:
        return None
    body, _, mac = value.rpartition(".")
    want = _b64(hmac.new(_secret(settings), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac.encode(), want.encode()):
        return None
    try:
        who = Identity(**json.loads(_unb64(body)))
    except (ValueError, TypeError):
        return None
    return who if who.expires > time.time() else None


def cookie_options(settings: Settings) -> dict[str, object]:
    """HttpOnly, SameSite=Lax, and Secure when the console is served over https."""
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": settings.public_url.lower().startswith("https://"),
        "path": "/",
    }


def same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def open_csrf(settings: Settings) -> str:
    """The CSRF token of an open console (nobody configured): unguessable for other sites."""
    return _b64(hmac.new(_secret(settings), b"open-console-csrf", hashlib.sha256).digest())
