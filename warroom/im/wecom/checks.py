"""`warroom doctor` for WeCom: settings, token, agent id, visible range, each API the app needs,
the callback URL and keys, and what to fix.

WeCom lists no granted permissions, so each API is probed with a call that cannot change anything
(a chatid, email or response code that cannot exist): a privilege error (60011, 48002, 60020…)
means the app may not call it, any other refusal means it may. `user/getuserid` is not probed:
WeCom blocks it for a day after many wrong numbers.
"""

from __future__ import annotations

from warroom.errors import ImError
from warroom.im.base import SetupCheck
from warroom.im.wecom.api import WeComApi
from warroom.im.wecom.crypto import Crypto
from warroom.im.wecom.errors import FIXES
from warroom.im.wecom.settings import WeComSettings

PLATFORM = "wecom"
CONSOLE = "https://work.weixin.qq.com/wework_admin"
PRIVILEGE = {"60011", "48002", "60020", "301002", "81013", "credentials"}
NO_CHAT = "wrdoctorprobe00000000000000000000"[:32]


def _check(name: str, ok: bool, detail: str = "", fix: str = "") -> SetupCheck:
    return SetupCheck(platform=PLATFORM, name=name, ok=ok, detail=detail, fix="" if ok else fix)


async def _probe(name: str, call) -> SetupCheck:  # type: ignore[no-untyped-def]
    try:
        await call()
    except ImError as e:
        if e.code in PRIVILEGE:
            return _check(f"api {name}", False, str(e), FIXES.get(int(e.code), str(e)) if e.code.isdigit() else str(e))
        return _check(f"api {name}", True, "allowed (the probe was refused for its made-up id)")
    return _check(f"api {name}", True, "allowed")


def _settings(s: WeComSettings) -> list[SetupCheck]:
    checks = []
    for name, value, fix in (
        ("corp id", s.corp_id, f"set WECOM_CORP_ID ({CONSOLE} → 我的企业 → 企业信息 → 企业ID)"),
        ("agent id", s.agent_id, "set WECOM_AGENT_ID (应用管理 → your self-built app → AgentId)"),
        ("secret", s.secret.get_secret_value(), "set WECOM_SECRET (应用管理 → your app → Secret → 查看)"),
    ):
        checks.append(_check(name, bool(value), "set" if value else "not set", fix))
    return checks


def _callback_checks(s: WeComSettings, public_url: str) -> list[SetupCheck]:
    url = f"{public_url or 'WARROOM_PUBLIC_URL'}/im/wecom/callback"
    token, key = s.token.get_secret_value(), s.encoding_aes_key.get_secret_value()
    fix = (f"应用管理 → your app → 接收消息 → 设置API接收: URL {url}, and the Token and EncodingAESKey shown there "
           "as WECOM_TOKEN and WECOM_ENCODING_AES_KEY (WeCom checks the URL when you save)")  # fmt: skip
    try:
        valid_key = bool(key) and Crypto(token or "x", key, s.corp_id or "x") is not None
    except ValueError:
        valid_key = False
    https = url.startswith("https://")
    keys_ok = bool(token) and valid_key
    keys = (
        "WECOM_TOKEN and a 43-character WECOM_ENCODING_AES_KEY are set"
        if keys_ok
        else "WECOM_TOKEN or WECOM_ENCODING_AES_KEY is missing or not a valid EncodingAESKey"
    )
    reach = f"WeCom must reach {url} (button clicks arrive there)"
    return [
        _check("callback keys", keys_ok, keys, fix),
        _check("callback URL", https, reach, "set WARROOM_PUBLIC_URL to the public https address of `warroom api`"),
    ]


async def run_checks(api: WeComApi, s: WeComSettings, public_url: str) -> list[SetupCheck]:
    checks = _settings(s)
    try:
        await api.access_token()
    except ImError as e:
        checks.append(_check("access token", False, str(e), "check WECOM_CORP_ID and WECOM_SECRET (the app's own)"))
        return checks + _callback_checks(s, public_url)
    checks.append(_check("access token", True, f"obtained for corp {s.corp_id}"))
    try:
        agent = await api.agent()
    except ImError as e:
        checks.append(_check("agent", False, str(e), "check WECOM_AGENT_ID (应用管理 → your app → AgentId)"))
    else:
        checks.append(_check("agent", True, f"{agent.get('name') or 'the app'} (agent {s.agent_id})"))
        parties = (agent.get("allow_partys") or {}).get("partyid") or []
        root = 1 in parties or "1" in parties
        checks.append(_check("visible range", root, f"departments {parties[:10]}" + (" (the root)" if root else ""),
                             FIXES[60011]))  # fmt: skip
    checks += [
        await _probe("appchat (groups)", lambda: api.get_chat(NO_CHAT)),
        await _probe("user/get_userid_by_email", lambda: api.userid_by_email("doctor-probe@invalid.example", 1)),
        await _probe("message/update_template_card", lambda: api.update_card("doctor-probe", "no-such-code", {})),
    ]
    if s.duty():
        checks.append(_check("duty accounts", True, f"{', '.join(s.duty())} join every war room"))
    else:
        checks.append(_check("duty accounts", True, "none: a room with one linked person waits for a second one"))
    return checks + _callback_checks(s, public_url)
