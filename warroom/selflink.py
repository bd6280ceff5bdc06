"""Self-link offers: a person who clicks in a room while unlinked is told, privately, a console
address that links that IM account to whoever signs in there.

The address carries a signed token naming the platform and the IM user id, valid for 30 minutes.
It is offered only where the platform shows the notice to the clicker alone (Slack's ephemeral
messages, WeCom's messages from the app): posted in a group, anyone in it could claim the account.
Worker (which makes it) and API (which checks it) share no memory, so the key comes from a setting
both have: WARROOM_SESSION_SECRET, else WARROOM_API_TOKEN; with neither, nothing is offered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from urllib.parse import quote

from warroom.settings import Settings

VALID_SECONDS = 30 * 60
PATH = "/users/self-link"


@dataclass(frozen=True)
class Claim:
    platform: str
    im_user_id: str


def _key(settings: Settings) -> bytes | None:
    secret = settings.session_secret.get_secret_value() or settings.api_token.get_secret_value()
    return hashlib.sha256(b"warroom-self-link:" + secret.encode()).digest() if secret else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def offer(settings: Settings, platform: str, im_user_id: str, *, now: float | None = None) -> str | None:
    """The console address that links `im_user_id` to whoever signs in, or None (no key)."""
    key = _key(settings)
    if key is None:
        return None
    body = _b64(json.dumps({"p": platform, "u": im_user_id, "e": int((now or time.time()) + VALID_SECONDS)}).encode())
    mac = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{settings.public_url.rstrip('/')}{PATH}?t={quote(body + '.' + mac)}"


def verify(settings: Settings, token: str, *, now: float | None = None) -> Claim | None:
    """What a token says, if we signed it and it has not expired; else None."""
    key = _key(settings)
    body, _, mac = token.partition(".")
    if key is None or not body or len(token) > 2000:
        return None
    expected = _b64(hmac.new(key, body.encode("utf-8", "surrogateescape"), hashlib.sha256).digest())
    if not hmac.compare_digest(mac.encode("utf-8", "surrogateescape"), expected.encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        platform, user, expires = str(data["p"]), str(data["u"]), float(data["e"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires < (now or time.time()) or not platform or not user:
        return None
    return Claim(platform, user)
