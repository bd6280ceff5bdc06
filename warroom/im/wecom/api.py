"""WeCom API calls through wechatpy 1.8's `WeChatClient`, one method per endpoint War Room uses.

wechatpy is used where it has the call (`appchat.create|get|update|send`, `agent.get`) and
through its generic `post`/`get` where it does not (`user/getuserid`, `user/get_userid_by_email`, `template_card`,
`update_template_card`). Two of its habits are turned off:
- `gettoken` is hard-coded to qyapi.weixin.qq.com: the client here fetches it at
  WECOM_API_BASE_URL like every other call (and with a timeout, which wechatpy's fetch lacks);
- on 40001/40014/42001 wechatpy refetches the token and retries by unbounded recursion
  (`auto_retry`): off; a refused token is refreshed once here and the call made once more.

One client, hence one token, per (base URL, corp, secret) and process: wechatpy keeps the token in
the client's session storage, refreshed when less than a minute remains. Tokens never leave the
process. wechatpy is synchronous (requests): calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from warroom.errors import PermanentImError, TransientImError
from warroom.im.wecom.errors import CHAT_MISSING, PLATFORM, TOKEN_CODES, from_exception

T = TypeVar("T")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
EMAIL_TYPES = (1, 2)  # 1: 企业邮箱 (the corp's mail), 2: 个人邮箱 (a personal address)

_clients: dict[tuple[str, str, str], Any] = {}
_clients_lock = threading.Lock()


def base_url(value: str) -> str:
    """WECOM_API_BASE_URL, checked: https (http on loopback, for tests), ending in `/`."""
    parts = urllib.parse.urlsplit(value)
    ok = parts.scheme == "https" or (parts.scheme == "http" and (parts.hostname or "") in LOOPBACK)
    if not ok or not parts.netloc or "@" in parts.netloc or parts.query or parts.fragment:
        raise PermanentImError(
            f"WECOM_API_BASE_URL {value!r} is not usable: it must be an https URL like "
            "https://qyapi.weixin.qq.com/cgi-bin/",
            platform=PLATFORM,
            code="bad_base_url",
        )
    return value if value.endswith("/") else value + "/"


def _client_class() -> type:
    from wechatpy.enterprise import WeChatClient

    class Client(WeChatClient):  # type: ignore[misc]
        """wechatpy's client with gettoken at the configured base URL and one fetch at a time."""

        def __init__(self, corp_id: str, secret: str, *, api_base_url: str, timeout: float) -> None:
            super().__init__(corp_id, secret, timeout=timeout, auto_retry=False)
            self.API_BASE_URL = api_base_url
            self.fetches = 0
            self._fetch_lock = threading.Lock()

        def fetch_access_token(self) -> Any:
            with self._fetch_lock:
                return self._fetch_access_token(
                    url=self.API_BASE_URL + "gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret}
                )

        def _fetch_access_token(self, url: str, params: dict[str, str]) -> Any:
            res = self._http.get(url=url, params=params, timeout=self.timeout)
            self.fetches += 1
            result = self._handle_result(res)  # raises on an errcode
            if not isinstance(result, dict) or not result.get("access_token"):
                raise TransientImError("wecom gettoken: the answer has no access_token", platform=PLATFORM)
            lifetime = int(result.get("expires_in") or 7200)
            self.session.set(self.access_token_key, result["access_token"], lifetime)
            self.expires_at = int(time.time()) + lifetime
            return result

        def refresh_if(self, refused: str) -> None:
            """WeCom refused `refused`: fetch a new token, unless another thread already did."""
            with self._fetch_lock:
                current = self.session.get(self.access_token_key)
                if current and current != refused:
                    return
                self.expires_at = None
                self.session.delete(self.access_token_key)
            self.fetch_access_token()

    return Client


def shared_client(*, corp_id: str, secret: str, api_base_url: str, timeout: float) -> Any:
    """The process's client (and token) for this app."""
    import hashlib

    key = (api_base_url, corp_id, hashlib.sha256(secret.encode()).hexdigest())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = _client_class()(corp_id, secret, api_base_url=api_base_url, timeout=timeout)
        return client


class WeComApi:
    def __init__(self, *, corp_id: str, secret: str, agent_id: str, api_base_url: str, timeout: float) -> None:
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.api_base_url = base_url(api_base_url)
        self.client = shared_client(corp_id=corp_id, secret=secret, api_base_url=self.api_base_url, timeout=timeout)

    @property
    def agentid(self) -> int | str:
        return int(self.agent_id) if self.agent_id.isdigit() else self.agent_id

    # ------------------------------------------------------------------ plumbing
    def _call_sync(self, what: str, call: Callable[[], T]) -> T:
        for attempt in (1, 2):
            token = None
            try:
                token = self.client.access_token
                result = call()
            except Exception as e:
                from wechatpy.exceptions import WeChatClientException

                refused = isinstance(e, WeChatClientException) and e.errcode in TOKEN_CODES
                if refused and attempt == 1 and token:
                    self.client.refresh_if(token)
                    continue
                if refused and token is None:  # gettoken itself refused the corp id or secret
                    raise PermanentImError(
                        f"wecom gettoken: {getattr(e, 'errmsg', '')} [errcode {getattr(e, 'errcode', '')}]: "
                        "check WECOM_CORP_ID and WECOM_SECRET (应用管理 → your app → Secret)",
                        platform=PLATFORM,
                        code="credentials",
                    ) from e
                raise from_exception(what, e) from e
            if not isinstance(result, dict):  # wechatpy hands back the response when it is not JSON
                status = getattr(result, "status_code", "?")
                raise TransientImError(f"wecom {what}: unreadable answer (HTTP {status})", platform=PLATFORM,
                                       code="bad_body")  # fmt: skip
            return result
        raise AssertionError("unreachable")

    async def _call(self, what: str, call: Callable[[], T]) -> T:
        return await asyncio.to_thread(self._call_sync, what, call)

    def _post(self, path: str, data: dict[str, Any]) -> Callable[[], dict[str, Any]]:
        return lambda: self.client.post(path, data=data)

    # ------------------------------------------------------------------ token and app
    async def access_token(self) -> None:
        """Fetch the app's token if the process has none (it stays in the process: never returned)."""
        await self._call("gettoken", lambda: {"ok": bool(self.client.access_token)})

    async def agent(self) -> dict[str, Any]:
        return await self._call("agent/get", lambda: self.client.agent.get(self.agent_id))

    # ------------------------------------------------------------------ groups
    async def create_chat(self, chat_id: str, name: str, owner: str, members: list[str]) -> dict[str, Any]:
        def create() -> dict[str, Any]:
            return self.client.appchat.create(chat_id=chat_id, name=name, owner=owner, user_list=members)

        return await self._call("appchat/create", create)

    async def get_chat(self, chat_id: str) -> dict[str, Any] | None:
        """The group's `chat_info`, or None when WeCom has no such group (86003)."""
        try:
            data = await self._call("appchat/get", lambda: _chat_info(self.client, chat_id))
        except PermanentImError as e:
            if e.code in {str(c) for c in CHAT_MISSING}:
                return None
            raise
        info = data.get("chat_info")
        if not isinstance(info, dict):
            raise TransientImError("wecom appchat/get: the answer has no chat_info", platform=PLATFORM)
        return info

    async def update_chat(
        self,
        chat_id: str,
        *,
        name: str | None = None,
        owner: str | None = None,
        add: list[str] | None = None,
        remove: list[str] | None = None,
    ) -> None:
        def update() -> dict[str, Any]:  # wechatpy leaves out what is None
            return self.client.appchat.update(chat_id, name=name, owner=owner, add_user_list=add or None,
                                              del_user_list=remove or None)  # fmt: skip

        await self._call("appchat/update", update)

    async def send_markdown(self, chat_id: str, content: str) -> None:
        await self._call("appchat/send", lambda: self.client.appchat.send(chat_id, "markdown", content=content))

    # ------------------------------------------------------------------ application messages
    async def send_card(self, userid: str, card: dict[str, Any]) -> tuple[str, str]:
        """A `template_card` to one person: (msgid, response_code)."""
        data = {"touser": userid, "msgtype": "template_card", "agentid": self.agentid, "template_card": card,
                "enable_duplicate_check": 1, "duplicate_check_interval": 1800}  # fmt: skip
        res = await self._call("message/send", self._post("message/send", data))
        return str(res.get("msgid") or ""), str(res.get("response_code") or "")

    async def send_text(self, userid: str, content: str) -> None:
        data = {"touser": userid, "msgtype": "text", "agentid": self.agentid, "text": {"content": content}}
        await self._call("message/send", self._post("message/send", data))

    async def update_card(self, userid: str, response_code: str, card: dict[str, Any]) -> None:
        data = {"userids": [userid], "agentid": self.agentid, "response_code": response_code, "template_card": card}
        await self._call("message/update_template_card", self._post("message/update_template_card", data))

    # ------------------------------------------------------------------ people
    async def userid_by_email(self, email: str, email_type: int) -> str | None:
        return await self._userid("user/get_userid_by_email", {"email": email, "email_type": email_type})

    async def userid_by_mobile(self, mobile: str) -> str | None:
        return await self._userid("user/getuserid", {"mobile": mobile})

    async def _userid(self, path: str, data: dict[str, Any]) -> str | None:
        try:
            res = await self._call(path, self._post(path, data))
        except PermanentImError as e:
            if e.code in ("46004", "60111", "40003", "60103", "40035", "301006"):
                return None  # not found (or not a valid email/number): a miss, not a failure
            raise
        userid = res.get("userid")
        return str(userid) if userid else None


def _chat_info(client: Any, chat_id: str) -> dict[str, Any]:
    """wechatpy's `appchat.get` hands back the answer's `chat_info` alone (and fails on an answer
    without one): put it back in the answer's shape."""
    try:
        return {"chat_info": client.appchat.get(chat_id)}
    except (KeyError, TypeError):
        return {}
