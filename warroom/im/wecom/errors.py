"""WeCom answers → War Room's typed errors (`warroom.errors`), in one place.

WeCom answers HTTP 200 with `{"errcode": int, "errmsg": str}`; only `errcode` is meaningful (the
error page says `errmsg` may change). Decisions:
- `RateLimited`: 45009 (API frequency), 45033 (concurrent calls): retried after a backoff;
- `TransientImError`: 5xx, timeouts, dropped connections, -1 (system busy), and a token refused
  twice in a row (40001/40014/42001: `api` refreshes once first);
- `PermanentImError`: everything else, with what to fix: 60011 (the app's visible range must be
  the root department), 86xxx (chat errors), 40003 and friends (unknown user), 40013/40056
  (wrong corp id or agent id)…

`TransientImError.code` is "timeout" or "dropped" when the request may have taken effect, which
is what `appchat/send` (no dedup key) needs to know.
"""

from __future__ import annotations

from warroom.errors import ImError, PermanentImError, RateLimited, TransientImError

PLATFORM = "wecom"
TOKEN_CODES = {40001, 40014, 42001}
LIMIT_CODES = {45009: 2.0, 45033: 1.0}
BUSY_CODES = {-1}
UNKNOWN_OUTCOME = {"timeout", "dropped"}
CHAT_EXISTS = {86215}  # "会话ID已经存在" (also accepted: an errmsg saying it exists)
CHAT_MISSING = {86003}
_ROOT = (
    "the app's visible range (可见范围) must be the root department: WeCom admin console → 应用管理 → "
    "your app → 可见范围 → select the company itself, not a department"
)
FIXES: dict[int, str] = {
    60011: "WeCom refused for lack of privilege (60011): " + _ROOT,
    60020: "the server's IP is not in the app's trusted IPs (企业可信IP): add it in the app's settings",
    40003: "WeCom does not know this userid (40003): the person may have left, or is outside the visible range",
    46004: "WeCom does not know this user (46004): check the email or phone, and the app's visible range",
    60111: "WeCom does not know this userid (60111)",
    60103: "the phone number is not valid for WeCom (60103)",
    40013: "WECOM_CORP_ID is wrong (40013): copy it from 我的企业 → 企业信息 → 企业ID",
    40056: "WECOM_AGENT_ID is wrong (40056): copy the AgentId from 应用管理 → your app",
    40091: "WECOM_SECRET is wrong (40091): copy the app's Secret from 应用管理 → your app",
    48002: "the API is not allowed for this app (48002): use a self-built app (自建应用) with the API enabled",
    301002: "the app may not act on this member (301002): widen its visible range (" + _ROOT + ")",
    81013: "the userids are not in the app's visible range (81013): " + _ROOT,
    86001: "WeCom refused the chatid (86001 chatid 不合法): a War Room bug, please report it",
    86003: "the group does not exist (86003): it was not created by this app",
    86004: "WeCom refused the group name (86004)",
    86005: "WeCom refused the group owner (86005): the owner must be a member inside the visible range",
    86006: "a WeCom group needs at least 2 and at most 2000 members (86006): set WECOM_DUTY_USER_IDS",
    86007: "WeCom refused a group member (86007): a userid outside the app's visible range",
    86008: "the group was not created by this app (86008): only the app that made a group may change it",
    86101: "only the group owner may do this (86101)",
    86207: "the group owner is not in the member list (86207): a War Room bug, please report it",
    86215: "the chatid already exists (86215)",
    86216: "the group holds an unknown member id (86216): someone left the company or the visible range",
    86220: "WeCom refused the chat parameters (86220)",
    40058: "WeCom refused a parameter (40058): a War Room bug, please report it",
    40008: "WeCom refused the message type (40008)",
    40099: "the template card is not valid (40099)",
}
_CREDENTIAL_FIX = "check WECOM_CORP_ID and WECOM_SECRET (应用管理 → your app → Secret)"


def error_for(what: str, errcode: int | None, errmsg: str, *, status: int | None = None) -> ImError:
    """The typed error for one failed answer (an errcode ≠ 0, or an HTTP error status)."""
    tag = f"HTTP {status}" if errcode is None else f"errcode {errcode}"
    text = f"wecom {what}: {errmsg or 'failed'} [{tag}]"
    if errcode is None:
        if (status or 0) >= 500 or status is None:
            return TransientImError(text, platform=PLATFORM, code=str(status or "http"))
        return PermanentImError(text, platform=PLATFORM, code=str(status))
    if errcode in LIMIT_CODES:
        return RateLimited(text + ": WeCom's frequency limit", retry_after=LIMIT_CODES[errcode], platform=PLATFORM,
                           code=str(errcode))  # fmt: skip
    if errcode in TOKEN_CODES:
        if errcode == 40001 and "secret" in (errmsg or "").lower():
            return PermanentImError(f"{text}: {_CREDENTIAL_FIX}", platform=PLATFORM, code=str(errcode))
        return TransientImError(text + ": the access token was refused", platform=PLATFORM, code="token")
    if errcode in BUSY_CODES:
        return TransientImError(text + ": WeCom is busy", platform=PLATFORM, code=str(errcode))
    fix = FIXES.get(errcode)
    if fix is None and 86000 <= errcode < 87000:
        fix = "a WeCom chat error (86xxx): see https://developer.work.weixin.qq.com/document/path/90313"
    return PermanentImError(f"{text}: {fix}" if fix else text, platform=PLATFORM, code=str(errcode))


def from_exception(what: str, e: BaseException) -> ImError:
    """The typed error for whatever wechatpy or requests raised."""
    if isinstance(e, ImError):
        return e
    import requests
    from wechatpy.exceptions import WeChatClientException

    if isinstance(e, WeChatClientException):
        response = getattr(e, "response", None)
        status = getattr(response, "status_code", None)
        code = e.errcode if isinstance(e.errcode, int) else None
        return error_for(what, code, str(e.errmsg or ""), status=status if code is None else None)
    if isinstance(e, requests.Timeout):
        return TransientImError(f"wecom {what}: timed out", platform=PLATFORM, code="timeout")
    if isinstance(e, requests.ConnectionError):
        text = str(e).lower()
        dropped = "aborted" in text or "reset" in text or "remote end closed" in text
        return TransientImError(f"wecom {what}: connection {'dropped' if dropped else 'failed'}",
                                platform=PLATFORM, code="dropped" if dropped else "connect")  # fmt: skip
    if isinstance(e, requests.RequestException | OSError):
        return TransientImError(f"wecom {what}: {type(e).__name__}", platform=PLATFORM, code="dropped")
    return PermanentImError(f"wecom {what}: unexpected {type(e).__name__}: {str(e)[:300]}", platform=PLATFORM,
                            code="unexpected")  # fmt: skip
