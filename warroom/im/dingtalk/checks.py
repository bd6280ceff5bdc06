"""`warroom doctor` for DingTalk: token, robot code, templates, owner, permissions, callbacks.

DingTalk has no API that lists an app's granted permissions, so each one is probed with a call
that cannot change anything (an id that cannot exist): DingTalk checks the permission before the
parameters, so a permission error means it is missing and any other refusal means it is granted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from warroom.errors import ImError
from warroom.im.base import SetupCheck
from warroom.im.dingtalk.api import DingTalkApi
from warroom.im.dingtalk.settings import DingTalkSettings

PLATFORM = "dingtalk"
CONSOLE = "https://open-dev.dingtalk.com"
NO_GROUP = "cidWarRoomDoctorProbe000000000=="


def _check(name: str, ok: bool, detail: str = "", fix: str = "") -> SetupCheck:
    return SetupCheck(platform=PLATFORM, name=name, ok=ok, detail=detail, fix="" if ok else fix)


def _is_permission_error(e: ImError) -> bool:
    text = str(e)
    return (
        e.code.startswith("Forbidden.AccessDenied.AccessToken")
        or e.code in ("60011", "88")
        or ("permission" in text.lower() and "qps" not in text.lower())
    )


async def _probe(name: str, scope: str, call) -> SetupCheck:  # type: ignore[no-untyped-def]
    try:
        await call()
    except ImError as e:
        if _is_permission_error(e):
            return _check(
                f"permission {scope}",
                False,
                f"{name}: {e}",
                f"{CONSOLE} → your app → 权限管理: add {scope}, then publish the app again",
            )
        return _check(f"permission {scope}", True, f"{name}: granted (the probe was refused for its made-up id)")
    return _check(f"permission {scope}", True, f"{name}: granted")


@dataclass(frozen=True)
class DingTalkSetup:
    """What the checks look at: the API client, the settings, the Stream connection's state."""

    api: DingTalkApi
    settings: DingTalkSettings
    public_url: str
    connection: Callable[[], dict[str, object] | None]


def _setting(name: str, value: str, fix: str) -> SetupCheck:
    return _check(name, bool(value), f"set: {value}" if value else "not set", fix)


async def run_checks(setup: DingTalkSetup) -> list[SetupCheck]:
    s, api = setup.settings, setup.api
    checks = [
        _setting("robot code", s.robot_code, f"set DINGTALK_ROBOT_CODE to the robot's RobotCode ({CONSOLE} → 机器人)"),
        _setting(
            "scene-group template",
            s.scene_group_template_id,
            "set DINGTALK_SCENE_GROUP_TEMPLATE_ID (开放能力 → 场景群 → 群模板; preinstall the robot in it)",
        ),
        _setting(
            "card template",
            s.card_template_id,
            "set DINGTALK_CARD_TEMPLATE_ID (卡片平台 → your template → 模板ID; README: the status card)",
        ),
    ]
    try:
        await api.access_token()
    except ImError as e:
        checks.append(
            _check("access token", False, str(e), "check DINGTALK_APP_KEY / DINGTALK_APP_SECRET (凭证与基础信息)")
        )
        return checks + _callback_checks(setup)
    checks.append(_check("access token", True, f"obtained for app {s.app_key}"))
    if s.owner_user_id:
        try:
            owner = await api.user(s.owner_user_id)
            checks.append(_check("group owner", True, f"{owner.get('name') or s.owner_user_id} ({s.owner_user_id})"))
        except ImError as e:
            checks.append(
                _check(
                    "group owner",
                    False,
                    str(e),
                    "set DINGTALK_OWNER_USER_ID to a userid inside the app's visible range",
                )
            )
    else:
        checks.append(
            _check(
                "group owner",
                False,
                "DINGTALK_OWNER_USER_ID is not set",
                "set DINGTALK_OWNER_USER_ID to the userid who owns every war room (README)",
            )
        )
    checks += [
        await _probe("people by phone", "qyapi_get_member_by_mobile", lambda: api.user_by_mobile("10000000000")),
        await _probe("directory (people by email)", "通讯录只读权限 (directory read)", lambda: api.sub_departments(1)),
        await _probe("join link", "qyapi_chat_base_read", lambda: api.group_url(NO_GROUP)),
        await _probe("disband and members", "qyapi_chat_manage", lambda: api.remove_members(NO_GROUP, ["nobody"])),
        await _probe(
            "robot messages",
            "qyapi_robot_sendmsg",
            lambda: api.send_markdown(
                robot_code=s.robot_code or "none", open_conversation_id=NO_GROUP, title="probe", text="probe"
            ),
        ),
        await _probe("status card", "Card.Instance.Write", lambda: api.update_card("wr-doctor-probe", {"status": ""})),
    ]
    return checks + _callback_checks(setup)


def _callback_checks(setup: DingTalkSetup) -> list[SetupCheck]:
    s = setup.settings
    if s.callback_mode == "http":
        url = f"{setup.public_url or 'WARROOM_PUBLIC_URL'}/im/dingtalk/events"
        return [
            _check("robot messages (HTTP)", True, f"the robot's 消息接收地址 must be {url}"),
            _check(
                "card buttons",
                False,
                "HTTP mode: card clicks arrive only over Stream mode (no documented way to verify HTTP card callbacks)",
                "set DINGTALK_CALLBACK_MODE=stream for working card buttons",
            ),
        ]
    status = setup.connection() or {}
    state = str(status.get("state") or "idle")
    detail = f"Stream mode: {state}" + (f" ({status.get('last_error')})" if status.get("last_error") else "")
    if state == "idle":
        detail += "; `warroom api` holds the connection (robot messages and card clicks arrive over it)"
    return [
        _check(
            "stream connection",
            state in ("idle", "connected"),
            detail,
            "in the developer console: 机器人 → 消息接收模式 Stream 模式; 卡片平台 → the template's callback: "
            "Stream; check that `warroom api` can reach DINGTALK_API_BASE_URL",
        ),
    ]
