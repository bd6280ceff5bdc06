"""`warroom doctor` for Feishu/Lark: credentials, bot, scopes, callback settings.

Each check names what is wrong and what to do in the developer console. Checks that need the
API are skipped (and say so) when no tenant access token can be obtained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from warroom.errors import ImError
from warroom.im.base import SetupCheck
from warroom.im.lark.api import LarkApi

PLATFORM = "lark"
FEISHU, LARK = "https://open.feishu.cn", "https://open.larksuite.com"
CALLBACK_PATH = "/im/lark/events"
EVENTS = ("im.message.receive_v1", "im.chat.disbanded_v1")
CALLBACKS = ("card.action.trigger",)

# What War Room does → the tenant scopes that allow it (any one of them is enough).
REQUIRED_SCOPES: list[tuple[str, tuple[str, ...]]] = [
    ("create group chats", ("im:chat", "im:chat:create")),
    ("add and remove members", ("im:chat", "im:chat.members:write_only")),
    ("disband group chats", ("im:chat", "im:chat:delete")),
    ("share the join link", ("im:chat", "im:chat:read", "im:chat:readonly")),
    ("set the card as top notice", ("im:chat", "im:chat.top_notice:write_only")),
    ("send messages and cards as the bot", ("im:message", "im:message:send_as_bot")),
    ("update the status card", ("im:message", "im:message:send_as_bot", "im:message:update")),
    ("pin the status card", ("im:message", "im:message.pins:write_only", "im:message:send_as_bot")),
    ("read chat history", ("im:message", "im:message:readonly")),
    ("receive @bot messages", ("im:message.group_at_msg:readonly", "im:message.group_msg")),
    ("look up users by email and phone", ("contact:user.id:readonly",)),
]
OPTIONAL_SCOPES: list[tuple[str, tuple[str, ...]]] = [
    ("all group messages in history and transcript (sensitive: tenant admin approval)", ("im:message.group_msg",)),
]


def console_url(domain: str, app_id: str) -> str:
    base = LARK if "larksuite" in domain else FEISHU
    return f"{base}/app/{app_id}"


def _check(name: str, ok: bool, detail: str = "", fix: str = "") -> SetupCheck:
    return SetupCheck(platform=PLATFORM, name=name, ok=ok, detail=detail, fix="" if ok else fix)


def _domain_check(domain: str) -> SetupCheck:
    d = domain.rstrip("/")
    if d == FEISHU:
        return _check("domain", True, f"Feishu (China): {d}")
    if d == LARK:
        return _check("domain", True, f"Lark (international): {d}")
    return _check(
        "domain",
        urlsplit(d).scheme in ("https", "http"),
        f"custom OpenAPI origin {d} (neither Feishu nor Lark)",
        f"set LARK_DOMAIN to {FEISHU} for Feishu or {LARK} for Lark",
    )


@dataclass(frozen=True)
class LarkSetup:
    """What the checks look at: the API client and which secrets are set, not the adapter."""

    api: LarkApi
    public_url: str
    has_encrypt_key: bool
    has_verification_token: bool
    remember_bot: Callable[[str], None]  # the bot's open_id, once the checks learned it


def _callback_checks(setup: LarkSetup) -> list[SetupCheck]:
    url = setup.public_url.rstrip("/") + CALLBACK_PATH
    parts = urlsplit(url)
    public = parts.scheme == "https" and (parts.hostname or "") not in ("localhost", "127.0.0.1", "::1", "0.0.0.0")
    subscribe = (
        f"in the developer console → Events & Callbacks: set the event request URL and the callback request URL "
        f"to {url}; subscribe to the events {', '.join(EVENTS)} and to the callback {', '.join(CALLBACKS)}"
    )
    return [
        _check(
            "encrypt key",
            setup.has_encrypt_key,
            "set: callbacks are decrypted and their X-Lark-Signature checked",
            "set LARK_ENCRYPT_KEY to the Encrypt Key under Events & Callbacks → Encryption Strategy "
            "(War Room refuses callbacks it cannot verify)",
        ),
        _check(
            "verification token",
            setup.has_verification_token,
            "set",
            "set LARK_VERIFICATION_TOKEN to the Verification Token under Events & Callbacks → Encryption Strategy",
        ),
        _check(
            "callback URL",
            public,
            f"{url} ({subscribe})" if public else f"{url} is not reachable from Lark",
            f"set WARROOM_PUBLIC_URL to this server's public https address; then {subscribe}",
        ),
    ]


async def _scope_checks(api: LarkApi, console: str) -> list[SetupCheck]:
    try:
        scopes = await api.scopes()
    except ImError as e:
        return [
            _check(
                "scopes",
                False,
                f"cannot list the app's scopes: {e}",
                f"grant the scope application:application:self_manage (or check by hand at {console}/auth)",
            )
        ]
    granted = {name for name, ok in scopes if ok}
    out = []
    for what, any_of in REQUIRED_SCOPES:
        have = [s for s in any_of if s in granted]
        out.append(
            _check(
                f"scope for: {what}",
                bool(have),
                f"granted: {', '.join(have)}" if have else f"none of {', '.join(any_of)} is granted",
                f"add {any_of[-1] if len(any_of) > 1 else any_of[0]} at {console}/auth?q={quote(any_of[-1])}, "
                "then create and publish a new app version",
            )
        )
    for what, any_of in OPTIONAL_SCOPES:
        have = [s for s in any_of if s in granted]
        detail = (
            f"granted: {', '.join(have)}"
            if have
            else f"optional, not granted ({', '.join(any_of)}): only messages that @mention the bot are seen"
        )
        out.append(_check(f"scope for: {what}", True, detail))
    return out


async def run_checks(setup: LarkSetup) -> list[SetupCheck]:
    api = setup.api
    console = console_url(api.domain, api.app_id)
    checks = [_domain_check(api.domain)]
    try:
        await api.tenant_token()
    except ImError as e:
        checks.append(
            _check(
                "tenant access token",
                False,
                str(e),
                f"check LARK_APP_ID / LARK_APP_SECRET ({console}/baseinfo) and LARK_DOMAIN (Feishu or Lark)",
            )
        )
        checks.append(_check("bot and scopes", False, "skipped: no tenant access token", "fix the token first"))
        return checks + _callback_checks(setup)
    checks.append(_check("tenant access token", True, f"obtained for app {api.app_id}"))
    try:
        bot = await api.bot_info()
    except ImError as e:
        checks.append(_check("bot", False, str(e), f"enable the Bot capability at {console} and publish a version"))
    else:
        if bot.get("open_id"):
            setup.remember_bot(str(bot["open_id"]))
        active = bot.get("activate_status") in (None, 2)
        checks.append(
            _check(
                "bot",
                bool(bot.get("open_id")) and active,
                f"{bot.get('app_name') or 'bot'} ({bot.get('open_id') or 'no open_id'}), "
                f"activate_status {bot.get('activate_status')}",
                f"enable the Bot capability at {console} (Features → Bot), then publish and install the app",
            )
        )
    checks += await _scope_checks(api, console)
    return checks + _callback_checks(setup)
