"""Lark/Feishu OpenAPI failures → War Room's typed errors (`warroom.errors`).

lark-oapi never raises on business errors: a response carries `code` (0 = success), `msg` and
the raw HTTP status and headers. Its own classifier (`lark_oapi.channel.errors`) files the
frequency-limit codes as permanent, so this module is the one place that decides:

- `RateLimited(retry_after)`: gateway limit 99991400 / HTTP 429 (wait `x-ogw-ratelimit-reset`
  seconds), message frequency limit 230020 (5 QPS per chat, user or message), group
  operation limit 232019 (also Lark's answer to concurrent member changes on one chat);
- `TransientImError`: 5xx, timeouts, dropped connections, an expired or revoked tenant token
  (the SDK's cached token is dropped so the retry fetches a new one), "group is being created";
- `PermanentImError`: everything else, with a message that says what the operator should do.
"""

from __future__ import annotations

import json
from typing import Any

from warroom.errors import ImError, PermanentImError, RateLimited, TransientImError

PLATFORM = "lark"
RATE_LIMIT_HEADER = "x-ogw-ratelimit-reset"

GATEWAY_RATE_LIMIT = 99991400
MESSAGE_RATE_LIMIT = 230020
GROUP_RATE_LIMIT = 232019
# Per-second limits: one second is enough unless the gateway names a longer wait.
RATE_LIMIT_DELAY = {GATEWAY_RATE_LIMIT: 1.0, MESSAGE_RATE_LIMIT: 1.0, GROUP_RATE_LIMIT: 1.0, 11232: 1.0}

TOKEN_INVALID = {99991661, 99991663, 99991664, 99991665, 99991666, 99991668}
TRANSIENT = {232068}  # "The group is being created, please wait a moment"
CHAT_GONE = {232009}  # the chat was disbanded
CHAT_UNKNOWN = {232006}  # invalid chat_id (also what a long-deleted chat looks like)

_SCOPE = (
    "the Lark app lacks a permission scope this call needs (the message names it): add it under "
    "Permissions & Scopes in the developer console, then create and publish a new app version"
)
_BOT_OUT = "the bot is not in this chat: add the War Room bot back to the group, or recreate the war room"
FIXES: dict[int, str] = {
    99991672: _SCOPE,
    99991679: _SCOPE,
    99991401: "this server's IP is not on the Lark app's IP allowlist (developer console → Security Settings)",
    10003: "LARK_APP_ID or LARK_APP_SECRET is wrong: copy both from the developer console (Credentials)",
    10014: "LARK_APP_SECRET is wrong: copy it from the developer console (Credentials & Basic Info)",
    230002: _BOT_OUT,
    232011: _BOT_OUT,
    230027: "the bot lacks the permission for this operation in the chat (is it still the group owner/manager?)",
    232009: "the chat has been disbanded; open a new war room",
    232006: "Lark does not know this chat id (it may have been disbanded long ago)",
    232025: "enable the Bot capability of the Lark app (developer console → Features → Bot) and publish a version",
    232034: "the Lark app is not installed or not available in this tenant: publish it and check its availability",
    232021: "the bot was not found: enable the Bot capability and publish the app",
    232024: "the members are outside the app's availability: widen the app's availability in the developer console",
    232043: "some user ids are not usable by this app (outside its availability or another tenant)",
    41050: "the user is outside the app's contact data scope: widen it under Permissions & Scopes → contact range",
    230001: "Lark rejected the message content (a War Room bug: please report it with the log id)",
    230099: "Lark rejected the card JSON (a War Room bug: please report it with the log id)",
    230025: "the message is too long for Lark",
    230022: "Lark's content review rejected the message",
}


def _header(headers: dict[str, str] | None, name: str) -> str | None:
    for k, v in (headers or {}).items():
        if k.lower() == name:
            return v
    return None


def _retry_after(code: int | None, status: int | None, headers: dict[str, str] | None) -> float:
    reset = _header(headers, RATE_LIMIT_HEADER)
    if reset:
        try:
            return max(float(reset), 0.05)
        except ValueError:
            pass
    return RATE_LIMIT_DELAY.get(code or 0, 1.0)


def error_for(
    what: str,
    *,
    code: int | None,
    msg: str | None,
    status: int | None,
    headers: dict[str, str] | None = None,
    log_id: str | None = None,
    troubleshooter: str | None = None,
) -> ImError:
    """The typed error for one failed OpenAPI answer (`code` non-zero, or no usable body)."""
    tag = f"code {code}" if code is not None else f"HTTP {status}"
    where = f" (log id {log_id})" if log_id else ""
    text = f"lark {what}: {msg or 'failed'} [{tag}]{where}"
    err_code = str(code if code is not None else status)
    if status == 429 or code in RATE_LIMIT_DELAY:
        return RateLimited(text, retry_after=_retry_after(code, status, headers), platform=PLATFORM, code=err_code)
    if code in TOKEN_INVALID or code in TRANSIENT:
        return TransientImError(text, platform=PLATFORM, code=err_code)
    if status is not None and status >= 500:
        return TransientImError(text, platform=PLATFORM, code=err_code)
    fix = FIXES.get(code or 0)
    if fix:
        text = f"{text}: {fix}"
    elif troubleshooter:
        text = f"{text}: see {troubleshooter}"
    return PermanentImError(text, platform=PLATFORM, code=err_code)


def error_from_response(what: str, resp: Any) -> ImError:
    """The typed error for a lark-oapi response object whose `success()` is false."""
    raw = getattr(resp, "raw", None)
    status = getattr(raw, "status_code", None)
    headers = getattr(raw, "headers", None) or {}
    code = getattr(resp, "code", None)
    msg = getattr(resp, "msg", None)
    if code is None and raw is not None and raw.content:  # e.g. a 5xx with a plain-text body
        msg = raw.content[:200].decode("utf-8", "replace")
    error = getattr(resp, "error", None)
    return error_for(
        what,
        code=code,
        msg=msg,
        status=status,
        headers=headers,
        log_id=_header(headers, "x-tt-logid"),
        troubleshooter=getattr(error, "troubleshooter", None),
    )


def error_from_exception(what: str, e: BaseException) -> ImError:
    """The typed error for an exception raised inside lark-oapi (network, token, bad body)."""
    import requests  # lark-oapi's sync transport

    if isinstance(e, ImError):
        return e
    name = type(e).__name__
    if isinstance(e, requests.Timeout):
        return TransientImError(f"lark {what}: timed out ({e})", platform=PLATFORM, code="timeout")
    if isinstance(e, requests.ConnectionError):
        return TransientImError(f"lark {what}: connection failed ({name})", platform=PLATFORM, code="connection")
    if isinstance(e, requests.RequestException):
        return TransientImError(f"lark {what}: {name}: {e}", platform=PLATFORM, code="http")
    if name == "ObtainAccessTokenException":  # lark_oapi.core.exception: the token endpoint said no
        code = getattr(e, "code", None)
        return error_for(f"{what} (tenant access token)", code=code, msg=getattr(e, "msg", str(e)), status=None)
    if name in ("NoAuthorizationException",):
        return PermanentImError(
            f"lark {what}: {e}: set LARK_APP_ID and LARK_APP_SECRET", platform=PLATFORM, code="not_configured"
        )
    if isinstance(e, json.JSONDecodeError | UnicodeDecodeError):
        # A gateway answered with something that is not JSON (an HTML 502 page, a cut-off body).
        return TransientImError(f"lark {what}: unreadable answer ({name})", platform=PLATFORM, code="bad_body")
    if isinstance(e, OSError):
        return TransientImError(f"lark {what}: {name}: {e}", platform=PLATFORM, code="os")
    # Anything else is a bug on one side or the other; retrying for hours would not fix it.
    return PermanentImError(f"lark {what}: unexpected {name}: {e}", platform=PLATFORM, code="unexpected")
