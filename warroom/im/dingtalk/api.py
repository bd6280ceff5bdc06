"""DingTalk OpenAPI calls, one method per endpoint War Room uses.

- api.dingtalk.com (`DINGTALK_API_BASE_URL`) through alibabacloud-dingtalk's async clients: its
  endpoint and protocol come from the base URL, so tests point it at a local fake;
- oapi.dingtalk.com/topapi (`DINGTALK_OAPI_BASE_URL`) through httpx: those legacy APIs (people by
  phone, the directory, the group's link) are not in the SDK.

Only wire concerns live here: the token (`tokens`, refreshed once when DingTalk refuses it), the
per-API budgets (`limits`), and every failure as a typed error (`errors`). Policy (dedup ids,
batching, coalescing, messages sent once) is the adapter's. The SDK is imported on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from warroom.errors import ImError, PermanentImError, TransientImError
from warroom.im.dingtalk import limits, tokens
from warroom.im.dingtalk.errors import PLATFORM, from_legacy, from_sdk

T = TypeVar("T")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
USER_PAGE = 100  # topapi/v2/user/list: at most 100 per page


def endpoint(base_url: str, setting: str) -> tuple[str, str]:
    """(protocol, host[:port]) of a base URL: https, or http on loopback (tests)."""
    parts = urllib.parse.urlsplit(base_url.rstrip("/"))
    ok = parts.scheme == "https" or (parts.scheme == "http" and (parts.hostname or "") in LOOPBACK)
    if not ok or not parts.netloc or "@" in parts.netloc or parts.path or parts.query:
        raise PermanentImError(
            f"{setting} {base_url!r} is not usable: it must be an https origin without a path "
            f"(https://api.dingtalk.com, https://oapi.dingtalk.com)",
            platform=PLATFORM,
            code="bad_base_url",
        )
    return parts.scheme, parts.netloc


@dataclass
class DirectoryUser:
    userid: str
    emails: tuple[str, ...]  # email and org_email, lower-case


class DingTalkApi:
    def __init__(self, *, app_key: str, app_secret: str, api_base_url: str, oapi_base_url: str, timeout: float) -> None:
        self.app_key = app_key
        self._secret = app_secret
        self.api_base_url = api_base_url.rstrip("/")
        self.oapi_base_url = oapi_base_url.rstrip("/")
        self.protocol, self.host = endpoint(self.api_base_url, "DINGTALK_API_BASE_URL")
        endpoint(self.oapi_base_url, "DINGTALK_OAPI_BASE_URL")
        self.timeout = timeout
        self.tokens = tokens.shared(self.api_base_url, app_key, self._fetch_token)
        self.budgets = limits.shared(app_key)
        self._clients: dict[str, Any] = {}
        self._http: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ plumbing
    def _client(self, module: str) -> Any:
        """The SDK client of one API module (`im_1_0`, `card_1_0`, …), built on first use."""
        client = self._clients.get(module)
        if client is None:
            import importlib

            from alibabacloud_tea_openapi import models as open_api_models

            cls = importlib.import_module(f"alibabacloud_dingtalk.{module}.client").Client
            client = self._clients[module] = cls(open_api_models.Config(protocol=self.protocol, endpoint=self.host))
        return client

    def _runtime(self) -> Any:
        from alibabacloud_tea_util import models as util_models

        ms = int(self.timeout * 1000)
        return util_models.RuntimeOptions(read_timeout=ms, connect_timeout=min(ms, 5000), autoretry=False)

    @staticmethod
    def models(module: str) -> Any:
        import importlib

        return importlib.import_module(f"alibabacloud_dingtalk.{module}.models")

    async def _fetch_token(self) -> tuple[str, float]:
        m = self.models("oauth2_1_0")
        await self.budgets.take("oauth2.accessToken")
        try:
            resp = await self._client("oauth2_1_0").get_access_token_with_options_async(
                m.GetAccessTokenRequest(app_key=self.app_key, app_secret=self._secret), {}, self._runtime()
            )
        except Exception as e:
            raise from_sdk("access token", e) from e
        body = resp.body
        if not body or not body.access_token:
            raise TransientImError("dingtalk access token: the answer has no accessToken", platform=PLATFORM)
        return body.access_token, float(body.expire_in or 7200)

    async def _with_token(self, what: str, api: str, call: Callable[[str], Awaitable[T]]) -> T:
        """`call(token)`, within the API's budget; a refused token is replaced and the call made
        once more (tokens can be revoked early, or expire mid-incident)."""
        for attempt in (1, 2):
            token = await self.tokens.get()
            await self.budgets.take(api)
            try:
                return await call(token)
            except ImError as e:
                if e.code != "token" or attempt == 2:
                    raise
                self.tokens.forget(token)
        raise AssertionError("unreachable")

    async def _sdk(self, what: str, module: str, method: str, request: Any, headers_cls: str) -> Any:
        async def call(token: str) -> Any:
            headers = getattr(self.models(module), headers_cls)(x_acs_dingtalk_access_token=token)
            try:
                resp = await getattr(self._client(module), method)(request, headers, self._runtime())
            except Exception as e:
                raise from_sdk(what, e) from e
            return resp.body

        return await self._with_token(what, f"{module}.{method}", call)

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.oapi_base_url, timeout=self.timeout)
        return self._http

    async def _legacy(self, what: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `path?access_token=…` on the legacy OpenAPI; its `result` on success."""

        async def call(token: str) -> dict[str, Any]:
            try:
                r = await self._http_client().post(path, params={"access_token": token}, json=body)
            except httpx.ConnectError as e:
                raise TransientImError(f"dingtalk {what}: cannot connect ({e})", platform=PLATFORM,
                                       code="connect") from e  # fmt: skip
            except httpx.TimeoutException as e:
                raise TransientImError(f"dingtalk {what}: timed out", platform=PLATFORM, code="timeout") from e
            except httpx.HTTPError as e:
                raise TransientImError(f"dingtalk {what}: connection dropped ({type(e).__name__})",
                                       platform=PLATFORM, code="dropped") from e  # fmt: skip
            data, error = from_legacy(what, r.status_code, r.content)
            if error is not None:
                raise error
            return data

        return await self._with_token(what, f"oapi{path}", call)

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            with contextlib.suppress(RuntimeError):  # its event loop is gone (a CLI run): nothing to close
                await http.aclose()

    # ------------------------------------------------------------------ auth
    async def access_token(self) -> str:
        return await self.tokens.get()

    # ------------------------------------------------------------------ scene groups
    async def create_scene_group(
        self, *, title: str, template_id: str, owner_user_id: str, uuid: str
    ) -> tuple[str, str]:
        """`POST /v1.0/im/sceneGroup/create`: (openConversationId, chatId); the same `uuid`
        ("建群去重的业务ID") yields the same group."""
        m = self.models("im_1_0")
        request = m.CreateSceneGroupRequest(
            title=title, template_id=template_id, owner_user_id=owner_user_id, uuid=uuid, user_ids=[owner_user_id]
        )
        body = await self._sdk("create scene group", "im_1_0", "create_scene_group_with_options_async", request,
                               "CreateSceneGroupHeaders")  # fmt: skip
        if not body or not body.open_conversation_id:
            raise TransientImError("dingtalk create scene group: the answer has no open_conversation_id",
                                   platform=PLATFORM, code="bad_body")  # fmt: skip
        return body.open_conversation_id, body.chat_id or ""

    async def add_members(self, open_conversation_id: str, user_ids: list[str]) -> None:
        m = self.models("im_1_0")
        request = m.AddSceneGroupMemberRequest(open_conversation_id=open_conversation_id, user_ids=list(user_ids))
        await self._sdk("add members", "im_1_0", "add_scene_group_member_with_options_async", request,
                        "AddSceneGroupMemberHeaders")  # fmt: skip

    async def remove_members(self, open_conversation_id: str, user_ids: list[str]) -> None:
        m = self.models("im_1_0")
        request = m.RemoveSceneGroupMemberRequest(open_conversation_id=open_conversation_id, user_ids=list(user_ids))
        await self._sdk("remove members", "im_1_0", "remove_scene_group_member_with_options_async", request,
                        "RemoveSceneGroupMemberHeaders")  # fmt: skip

    async def disband(self, open_conversation_id: str) -> None:
        m = self.models("im_1_0")
        request = m.DsbandOpenSceneGroupRequest(open_conversation_id=open_conversation_id)
        await self._sdk("disband scene group", "im_1_0", "dsband_open_scene_group_with_options_async", request,
                        "DsbandOpenSceneGroupHeaders")  # fmt: skip

    async def group_url(self, open_conversation_id: str) -> str | None:
        """`topapi/im/chat/scenegroup/get`: the group's `group_url` (its join link)."""
        data = await self._legacy(
            "get scene group", "/topapi/im/chat/scenegroup/get", {"open_conversation_id": open_conversation_id}
        )
        result = data.get("result") or {}
        return str(result.get("group_url") or "") or None

    # ------------------------------------------------------------------ cards and messages
    async def create_and_deliver(
        self,
        *,
        out_track_id: str,
        template_id: str,
        open_conversation_id: str,
        robot_code: str,
        params: dict[str, str],
        at_user_ids: dict[str, str] | None = None,
    ) -> None:
        """`POST /v1.0/card/instances/createAndDeliver` into the group; clicks come back over Stream."""
        m = self.models("card_1_0")
        request = m.CreateAndDeliverRequest(
            out_track_id=out_track_id,
            card_template_id=template_id,
            open_space_id=f"dtv1.card//IM_GROUP.{open_conversation_id}",
            card_data=m.CreateAndDeliverRequestCardData(card_param_map=params),
            callback_type="STREAM",
            im_group_open_space_model=m.CreateAndDeliverRequestImGroupOpenSpaceModel(support_forward=False),
            im_group_open_deliver_model=m.CreateAndDeliverRequestImGroupOpenDeliverModel(
                robot_code=robot_code, at_user_ids=at_user_ids or None
            ),
            user_id_type=1,
        )
        body = await self._sdk("deliver card", "card_1_0", "create_and_deliver_with_options_async", request,
                               "CreateAndDeliverHeaders")  # fmt: skip
        results = (body.result.deliver_results if body and body.result else None) or []
        failed = [r for r in results if r.success is False]
        if failed:
            raise PermanentImError(
                f"dingtalk deliver card: not delivered to {failed[0].space_id}: {failed[0].error_msg}: is the robot "
                "DINGTALK_ROBOT_CODE in the group (the scene-group template must preinstall it)?",
                platform=PLATFORM,
                code="not_delivered",
            )

    async def update_card(self, out_track_id: str, params: dict[str, str]) -> None:
        """`PUT /v1.0/card/instances`: the card's params, by key."""
        m = self.models("card_1_0")
        request = m.UpdateCardRequest(
            out_track_id=out_track_id,
            card_data=m.UpdateCardRequestCardData(card_param_map=params),
            card_update_options=m.UpdateCardRequestCardUpdateOptions(update_card_data_by_key=True),
            user_id_type=1,
        )
        await self._sdk("update card", "card_1_0", "update_card_with_options_async", request, "UpdateCardHeaders")

    async def send_markdown(self, *, robot_code: str, open_conversation_id: str, title: str, text: str) -> str:
        """`POST /v1.0/robot/groupMessages/send` (sampleMarkdown): its processQueryKey."""
        m = self.models("robot_1_0")
        request = m.OrgGroupSendRequest(
            robot_code=robot_code,
            open_conversation_id=open_conversation_id,
            msg_key="sampleMarkdown",
            msg_param=json.dumps({"title": title, "text": text}, ensure_ascii=False),
        )
        body = await self._sdk("send message", "robot_1_0", "org_group_send_with_options_async", request,
                               "OrgGroupSendHeaders")  # fmt: skip
        return (body.process_query_key if body else None) or ""

    # ------------------------------------------------------------------ people
    async def user_by_mobile(self, mobile: str) -> str | None:
        """`topapi/v2/user/getbymobile`: the userid, or None when nobody has this number."""
        try:
            data = await self._legacy("user by phone", "/topapi/v2/user/getbymobile", {"mobile": mobile})
        except PermanentImError as e:
            if e.code in ("60121", "40078", "60104"):
                return None
            raise
        return str((data.get("result") or {}).get("userid") or "") or None

    async def user(self, userid: str) -> dict[str, Any]:
        data = await self._legacy("get user", "/topapi/v2/user/get", {"userid": userid})
        return data.get("result") or {}

    async def sub_departments(self, dept_id: int) -> list[int]:
        data = await self._legacy("list departments", "/topapi/v2/department/listsubid", {"dept_id": dept_id})
        return [int(d) for d in (data.get("result") or {}).get("dept_id_list") or []]

    async def department_users(self, dept_id: int) -> list[DirectoryUser]:
        """Every user of one department (`topapi/v2/user/list`, paged), with their emails."""
        out: list[DirectoryUser] = []
        cursor = 0
        for _ in range(1000):
            body = {"dept_id": dept_id, "cursor": cursor, "size": USER_PAGE}
            data = await self._legacy("list users", "/topapi/v2/user/list", body)
            result = data.get("result") or {}
            for u in result.get("list") or []:
                emails = tuple(str(u[k]).strip().lower() for k in ("email", "org_email") if u.get(k))
                if u.get("userid"):
                    out.append(DirectoryUser(userid=str(u["userid"]), emails=emails))
            if not result.get("has_more"):
                break
            cursor = int(result.get("next_cursor") or 0)
            await asyncio.sleep(0)
        return out
