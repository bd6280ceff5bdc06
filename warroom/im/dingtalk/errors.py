"""DingTalk failures → War Room's typed errors (`warroom.errors`), in one place.

Two answer shapes reach us:
- the new OpenAPI (api.dingtalk.com, through alibabacloud-dingtalk): HTTP 4xx/5xx with
  `{"code": "…", "message": "…", "requestid": "…"}`, raised by the SDK as a `TeaException`
  wrapped in an `UnretryableException` (timeouts and refused connections too, as a `RetryError`);
- the legacy OpenAPI (oapi.dingtalk.com/topapi, through httpx): HTTP 200 with `errcode` ≠ 0.

Decisions:
- `RateLimited`: `403 Forbidden.AccessDenied.QpsLimitForAppkeyAndApi`, 90018 (20 QPS per app and
  API), 90002 (the API's global limit): one second; the egress-IP ban (an HTML page saying
  `"punish":"deny"`, not JSON): its `wait` minutes, five by default;
- `TransientImError`: 5xx, timeouts, dropped connections, an expired or invalid token (401,
  40014, 42001: the caller refreshes it once first), an unreadable gateway page;
- `PermanentImError`: everything else, with what to fix (missing permission, the owner outside
  the app's visible range, a template the app does not own, a robot not in the group…).

`TransientImError.code` says whether the request may have taken effect: "timeout"/"dropped"
(maybe) vs "connect"/an HTTP status (DingTalk answered, or never heard us). The robot-message
sent-once record (`warroom.im.sent_once`) relies on that difference, as DingTalk has no dedup key for messages.
"""

from __future__ import annotations

import json
import re
from typing import Any

from warroom.errors import ImError, PermanentImError, RateLimited, TransientImError

PLATFORM = "dingtalk"
QPS_CODES = {"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "90018", "90002", "90019"}
TOKEN_CODES = {"40014", "42001", "InvalidAuthentication", "Unauthorized", "invalidAuthentication"}
ORG_QUOTA_CODES = {"Forbidden.AccessDenied.ApiCountLimitForOrg", "90020"}
GONE_CODES = {"chatNotExist", "groupNotExist", "resource.not.found", "34001", "4000110"}
UNKNOWN_OUTCOME = {"timeout", "dropped"}  # the request may have taken effect

_PERMISSION = (
    "the DingTalk app lacks a permission this call needs: open the developer console → your app → "
    "权限管理 (Permissions), add {scope}, and publish the app again"
)
FIXES: dict[str, str] = {
    "permession.checkFailed": (
        "DingTalk refused the permission check (权限校验失败): the group owner (DINGTALK_OWNER_USER_ID) must be "
        "inside the app's visible range (developer console → 版本管理与发布 → 可见范围), the app needs "
        "qyapi_chat_manage, and the group must come from this app's scene-group template"
    ),
    "Forbidden.AccessDenied.AccessTokenPermissionDenied": _PERMISSION.format(scope="the scope the message names"),
    "paramIllegal": "DingTalk refused the parameters (a War Room bug or a wrong template id: see the message)",
    "parameter.invalid": "DingTalk refused the parameters (a wrong template id, robot code or user id?)",
    "invalidParameter.robotCode": "DINGTALK_ROBOT_CODE is not a robot of this app (developer console → 机器人)",
    "robot.notInGroup": (
        "the robot is not in the group: the scene-group template (DINGTALK_SCENE_GROUP_TEMPLATE_ID) must "
        "preinstall the robot DINGTALK_ROBOT_CODE (场景群 → 群模板 → 机器人)"
    ),
    "template.notOwned": (
        "the template is not owned by this app: DINGTALK_SCENE_GROUP_TEMPLATE_ID and DINGTALK_CARD_TEMPLATE_ID "
        "must be created under this app (卡片平台 / 场景群 → 群模板) and published"
    ),
    "400020": "the scene-group template is not installed in this group or not owned by this app",
    "60011": _PERMISSION.format(scope="the directory read permission (通讯录只读权限) and widen its range"),
    "60121": "DingTalk does not know this user (they may have left the organization)",
    "60124": "the sharing user is not a member of the group (DINGTALK_OWNER_USER_ID must stay in every room)",
    "40078": "DingTalk does not know this user or phone number",
    "43009": "DingTalk rejected the message content (a War Room bug: please report it with the request id)",
    "invalidClientIdOrSecret": "DINGTALK_APP_KEY or DINGTALK_APP_SECRET is wrong: copy both from 凭证与基础信息",
    "40089": "DINGTALK_APP_KEY or DINGTALK_APP_SECRET is wrong: copy both from 凭证与基础信息",
}
_SCOPE_IN_MESSAGE = re.compile(r"\b(qyapi_[a-z_]+|Card\.[A-Za-z.]+|Contact\.[A-Za-z.]+|Robot\.[A-Za-z.]+)\b")


def error_for(what: str, *, code: str, message: str, status: int | None, request_id: str = "") -> ImError:
    """The typed error for one answered failure (a new-API error body or a legacy errcode)."""
    where = f" (request id {request_id})" if request_id else ""
    tag = f"HTTP {status}, {code}" if status else code
    text = f"dingtalk {what}: {message or 'failed'} [{tag}]{where}"
    if code in QPS_CODES:
        return RateLimited(text, retry_after=1.0, platform=PLATFORM, code=code)
    if code in TOKEN_CODES or status == 401:
        return TransientImError(text + ": the access token was refused", platform=PLATFORM, code="token")
    if code in ORG_QUOTA_CODES:
        return PermanentImError(
            text + ": the organization's monthly API quota is used up (upgrade the DingTalk plan)",
            platform=PLATFORM,
            code=code,
        )
    if (status or 0) >= 500 or code in ("system.error", "-1", "400001", "ServiceUnavailable"):
        return TransientImError(text, platform=PLATFORM, code=str(status or code))
    fix = FIXES.get(code)
    scope = _SCOPE_IN_MESSAGE.search(message or "")
    if fix is None and (scope or code.startswith("Forbidden")):
        fix = _PERMISSION.format(scope=scope.group(1) if scope else "the permission the message names")
    return PermanentImError(f"{text}: {fix}" if fix else text, platform=PLATFORM, code=code)


def ip_ban(what: str, text: str) -> RateLimited | None:
    """DingTalk's answer to too many calls from one egress IP: an HTML page, not JSON."""
    if '"punish"' not in text and "punish" not in text:
        return None
    match = re.search(r'"wait"\s*:\s*(\d+)', text)
    minutes = int(match.group(1)) if match else 5
    return RateLimited(
        f"dingtalk {what}: this server's IP is banned for {minutes} min (too many calls from one IP)",
        retry_after=60.0 * minutes,
        platform=PLATFORM,
        code="ip_banned",
    )


def from_sdk(what: str, e: BaseException) -> ImError:
    """The typed error for an exception out of alibabacloud-dingtalk (Tea/darabonba)."""
    if isinstance(e, ImError):
        return e
    inner = getattr(e, "inner_exception", None) or e
    data = getattr(inner, "data", None)
    if isinstance(data, dict) and ("statusCode" in data or "code" in data):
        return error_for(
            what,
            code=str(data.get("code") or data.get("Code") or ""),
            message=str(data.get("message") or data.get("Message") or ""),
            status=_int(data.get("statusCode")),
            request_id=str(data.get("requestid") or data.get("RequestId") or ""),
        )
    text = str(getattr(inner, "message", "") or inner)
    if isinstance(inner, RuntimeError) and "parse the value as json" in text:
        return ip_ban(what, text) or TransientImError(
            f"dingtalk {what}: unreadable answer (a gateway page?)", platform=PLATFORM, code="bad_body"
        )
    lowered = text.lower()
    if "timeout" in lowered or "timed out" in lowered:
        return TransientImError(f"dingtalk {what}: timed out", platform=PLATFORM, code="timeout")
    if "cannot connect" in lowered or "connect call failed" in lowered or "name or service" in lowered:
        return TransientImError(f"dingtalk {what}: cannot connect ({text[:120]})", platform=PLATFORM, code="connect")
    if "disconnect" in lowered or "reset" in lowered or "closed" in lowered or "payload" in lowered:
        return TransientImError(f"dingtalk {what}: connection dropped", platform=PLATFORM, code="dropped")
    if isinstance(inner, OSError):
        return TransientImError(f"dingtalk {what}: {type(inner).__name__}: {inner}", platform=PLATFORM, code="dropped")
    return PermanentImError(f"dingtalk {what}: unexpected {type(inner).__name__}: {text[:300]}", platform=PLATFORM,
                            code="unexpected")  # fmt: skip


def from_legacy(what: str, status: int, body: bytes) -> tuple[dict[str, Any], ImError | None]:
    """A legacy oapi answer: (its JSON, None) on success, otherwise the typed error."""
    try:
        data = json.loads(body)
    except ValueError:
        text = body[:500].decode("utf-8", "replace")
        return {}, ip_ban(what, text) or TransientImError(
            f"dingtalk {what}: unreadable answer (HTTP {status})", platform=PLATFORM, code=str(status)
        )
    if not isinstance(data, dict):
        return {}, TransientImError(f"dingtalk {what}: unexpected answer", platform=PLATFORM, code="bad_body")
    errcode = data.get("errcode", 0 if status < 400 else status)
    if status >= 400 or errcode not in (0, "0"):
        return data, error_for(
            what,
            code=str(errcode),
            message=str(data.get("errmsg") or data.get("message") or ""),
            status=status if status >= 400 else None,
            request_id=str(data.get("request_id") or ""),
        )
    return data, None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
