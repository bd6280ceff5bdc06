"""`warroom doctor` for Slack: token, scopes, signing secret and the URLs Slack must reach."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from warroom.errors import ImError
from warroom.im.base import SetupCheck
from warroom.im.slack.client import SlackApi

COMMON_SCOPES = ("chat:write", "pins:write", "users:read", "users:read.email", "app_mentions:read")
PRIVATE_SCOPES = ("groups:write", "groups:read", "groups:history")
PUBLIC_SCOPES = ("channels:manage", "channels:read", "channels:history")
SCOPE_USE = {
    "chat:write": "post and update the status card, ephemeral refusals",
    "pins:write": "pin the status card",
    "users:read": "needed with users:read.email",
    "users:read.email": "find responders by email (users.lookupByEmail)",
    "app_mentions:read": "receive @mentions of the bot (app_mention events)",
    "groups:write": "create, invite to, set the topic of and archive private channels",
    "groups:read": "find a private channel again after a lost answer (conversations.list/info)",
    "groups:history": "read private channel history (transcripts, no duplicate posts; message.groups events)",
    "channels:manage": "create, invite to, set the topic of and archive public channels",
    "channels:read": "find a public channel again after a lost answer (conversations.list/info)",
    "channels:history": "read public channel history (transcripts, no duplicate posts; message.channels events)",
}
BOT_EVENTS = (
    "app_mention",
    "message.channels",
    "message.groups",
    "member_joined_channel",
    "member_left_channel",
    "channel_archive",
    "group_archive",
)


def required_scopes(private: bool) -> list[str]:
    return [*COMMON_SCOPES, *(PRIVATE_SCOPES if private else PUBLIC_SCOPES)]


def _check(name: str, ok: bool, detail: str = "", fix: str = "") -> SetupCheck:
    return SetupCheck(platform="slack", name=name, ok=ok, detail=detail, fix="" if ok else fix)


def _public(url: str) -> tuple[bool, str]:
    u = urlparse(url)
    if u.scheme != "https":
        return False, "Slack only calls https:// request URLs"
    if (u.hostname or "") in ("localhost", "127.0.0.1", "::1", "0.0.0.0"):
        return False, f"{u.hostname} is not reachable from Slack"
    return True, ""


@dataclass(frozen=True)
class SlackSetup:
    """What the checks look at: the configured values and the API client, not the adapter."""

    token: str
    signing_secret: str
    private: bool  # channels are private
    public_url: str
    api: SlackApi
    identity: Callable[[], Awaitable[dict[str, Any]]]  # auth.test, remembered by the adapter


async def run_setup_checks(setup: SlackSetup) -> list[SetupCheck]:
    checks: list[SetupCheck] = []
    token, signing_secret, private = setup.token, setup.signing_secret, setup.private
    public_url = setup.public_url.rstrip("/")
    checks.append(
        _check(
            "bot token",
            token.startswith("xoxb-"),
            "SLACK_BOT_TOKEN is set" if token else "SLACK_BOT_TOKEN is empty",
            "set SLACK_BOT_TOKEN to the Bot User OAuth Token (xoxb-…) from the Slack app's OAuth & Permissions page",
        )
    )
    try:
        ident = await setup.identity()
        checks.append(
            _check(
                "auth.test",
                True,
                f"bot {ident.get('user')} ({ident.get('user_id')}) in {ident.get('team')} {ident.get('url') or ''}",
            )
        )
    except ImError as e:
        checks.append(_check("auth.test", False, str(e), "fix the token (see above) and that the API is reachable"))
        ident = None
    if ident is not None:
        granted = setup.api.scopes
        if granted is None:
            checks.append(
                _check(
                    "scopes",
                    False,
                    "Slack did not report the token's scopes (no X-OAuth-Scopes header)",
                    "check the scopes by hand: " + ", ".join(required_scopes(private)),
                )
            )
        else:
            kind = "private" if private else "public"
            for scope in required_scopes(private):
                checks.append(
                    _check(
                        f"scope {scope}",
                        scope in granted,
                        SCOPE_USE.get(scope, "")
                        + (f" ({kind} channels)" if scope.split(":")[0] in ("groups", "channels") else ""),
                        f"add the bot scope {scope} (Slack app → OAuth & Permissions → Bot Token Scopes), reinstall "
                        "the app and copy the new token into SLACK_BOT_TOKEN",
                    )
                )
    checks.append(
        _check(
            "signing secret",
            bool(signing_secret),
            "SLACK_SIGNING_SECRET is set" if signing_secret else "SLACK_SIGNING_SECRET is empty",
            "set SLACK_SIGNING_SECRET to the Signing Secret from the Slack app's Basic Information page",
        )
    )
    reachable, why = _public(public_url)
    events_url = f"{public_url}/im/slack/events"
    interactions_url = f"{public_url}/im/slack/interactions"
    public_fix = (
        "set WARROOM_PUBLIC_URL to the https:// address where Slack reaches this API (a tunnel such as "
        "cloudflared or ngrok works for a trial)"
    )
    checks.append(
        _check(
            "events URL",
            reachable,
            f"Event Subscriptions → Request URL {events_url}; bot events: {', '.join(BOT_EVENTS)}"
            + (f" — {why}" if why else ""),
            public_fix,
        )
    )
    checks.append(
        _check(
            "interactivity URL",
            reachable,
            f"Interactivity & Shortcuts → Request URL {interactions_url}" + (f" — {why}" if why else ""),
            public_fix,
        )
    )
    return checks
