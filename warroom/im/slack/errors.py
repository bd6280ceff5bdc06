"""Slack's failures as our typed errors, each permanent one with what the operator should do.

- HTTP 429 / `ratelimited` → `RateLimited` with Slack's `Retry-After`;
- HTTP 5xx, timeouts, dropped connections, Slack's own `internal_error`/`fatal_error` → transient;
- everything else (bad token, missing scope, the bot not in the channel…) → permanent, because
  retrying cannot help: the message says what to change.
"""

from __future__ import annotations

import asyncio

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError

from warroom.errors import ImError, PermanentImError, RateLimited, TransientImError

TRANSIENT_CODES = frozenset(
    {"internal_error", "fatal_error", "request_timeout", "service_unavailable", "team_added_to_org"}
)
RATE_LIMIT_CODES = frozenset({"ratelimited", "rate_limited", "message_limit_exceeded"})
_TOKEN_FIX = (
    "set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-…, Slack app → OAuth & Permissions) "
    "and check the app is still installed in the workspace"
)
FIXES = {
    "not_authed": "SLACK_BOT_TOKEN is empty: " + _TOKEN_FIX,
    "invalid_auth": "SLACK_BOT_TOKEN is not valid: " + _TOKEN_FIX,
    "token_revoked": "the bot token was revoked: reinstall the app and " + _TOKEN_FIX,
    "token_expired": "the bot token expired (token rotation is on): " + _TOKEN_FIX,
    "account_inactive": "the app's bot user is deactivated: reinstall the app and " + _TOKEN_FIX,
    "not_allowed_token_type": "War Room needs a bot token (xoxb-…), not a user or app token: " + _TOKEN_FIX,
    "missing_scope": "add the missing scope to the Slack app (OAuth & Permissions → Bot Token Scopes), "
    "reinstall the app, and run `warroom doctor`",
    "not_in_channel": "the War Room bot is not a member of this channel: invite it with `/invite @<app name>` "
    "(or let War Room create the channel)",
    "channel_not_found": "the channel does not exist or the bot cannot see it (private channels need the bot "
    "as a member)",
    "is_archived": "the channel is archived: unarchive it in Slack or open a new war room",
    "restricted_action": "a workspace setting forbids this for apps (e.g. who may create or archive channels): "
    "ask a Slack admin to allow it",
    "cannot_create_channel": "Slack does not let this app create channels here: ask a Slack admin",
    "method_not_supported_for_channel_type": "this channel type does not support the call",
    "cant_archive_general": "the #general channel cannot be archived",
    "cant_update_message": "the card was not posted by this bot token: open a new war room",
    "message_not_found": "the status card was deleted in Slack; War Room keeps the incident up to date elsewhere",
    "edit_window_closed": "Slack no longer allows editing the card",
    "invalid_blocks": "Slack rejected the card's blocks (a War Room bug: please report it)",
    "invalid_arguments": "Slack rejected the call's arguments (a War Room bug: please report it)",
    "too_many_pins": "the channel has too many pins: unpin something",
    "ekm_access_denied": "your Enterprise Key Management settings refuse access",
    "enterprise_is_restricted": "an Enterprise Grid policy restricts this call",
    "no_permission": "the app lacks permission for this call: check its scopes and workspace settings",
}


def describe(code: str) -> str:
    return FIXES.get(code, "")


def retry_after_seconds(headers: object, default: float = 1.0) -> float:
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")  # type: ignore[attr-defined]
        return max(float(value), 0.0) if value is not None else default
    except (AttributeError, TypeError, ValueError):
        return default


def from_api_error(method: str, e: SlackApiError) -> ImError:
    """Slack answered, but not `ok`: decide what that means."""
    resp = e.response
    status = getattr(resp, "status_code", 0) or 0
    data = resp.data if isinstance(getattr(resp, "data", None), dict) else {}
    code = str(data.get("error") or "")
    if status == 429 or code in RATE_LIMIT_CODES:
        wait = retry_after_seconds(getattr(resp, "headers", {}) or {})
        return RateLimited(
            f"slack {method}: rate limited (retry after {wait:g}s)", retry_after=wait, platform="slack", code=code
        )
    if status >= 500 or code in TRANSIENT_CODES:
        return TransientImError(
            f"slack {method}: Slack is having trouble (HTTP {status}{', ' + code if code else ''})",
            platform="slack",
            code=code or str(status),
        )
    if not code:
        return TransientImError(f"slack {method}: unexpected HTTP {status} without an error code", platform="slack")
    detail = code
    if code == "missing_scope":
        needed, provided = data.get("needed"), data.get("provided")
        detail = f"missing_scope (needs {needed or '?'}; the token has {provided or 'none'})"
    for message in (data.get("response_metadata") or {}).get("messages") or []:
        detail += f"; {message}"
    fix = describe(code)
    return PermanentImError(f"slack {method}: {detail}" + (f" — {fix}" if fix else ""), platform="slack", code=code)


def from_exception(method: str, e: BaseException) -> ImError | None:
    """Network-level failures; None when `e` is not one we know."""
    if isinstance(e, SlackApiError):
        return from_api_error(method, e)
    if isinstance(e, asyncio.TimeoutError | TimeoutError | aiohttp.ServerTimeoutError):
        return TransientImError(f"slack {method}: no answer in time (it may still have been applied)", platform="slack")
    if isinstance(e, aiohttp.ClientError):
        return TransientImError(f"slack {method}: connection failed: {type(e).__name__}: {e}", platform="slack")
    if isinstance(e, SlackClientError):
        return PermanentImError(f"slack {method}: {e}", platform="slack", code="client_error")
    return None
