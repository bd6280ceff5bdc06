"""One place where War Room calls Slack's Web API: slack-sdk's `AsyncWebClient`, budgets, and
the translation of every failure into our typed errors.

slack-sdk's own retry handlers are off: a write repeated inside the SDK would bypass the
adapter's look-before-write (a second channel, a second card), and its repeats know nothing of
the attempt's time. Calls idempotent by nature are repeated here, within the activity's patience;
the others by the whole adapter method, inside the activity (`activities/in_place.py`), and then
by Temporal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from warroom.errors import RateLimited
from warroom.im.patience import repeated
from warroom.im.slack import errors
from warroom.im.slack.limits import Budget

log = logging.getLogger("warroom.slack")
# Calls that make something new each time: repeating one blindly could make a second channel or
# a second card (the adapter finds the first again before it repeats them).
NOT_REPEATABLE = frozenset({"conversations.create", "chat.postMessage", "chat.postEphemeral"})


class SlackApi:
    def __init__(self, token: str, *, base_url: str, timeout: float, budget: Budget) -> None:
        self.token = token
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = timeout
        self.budget = budget
        self.calls: Counter[str] = Counter()
        self.scopes: set[str] | None = None  # from the X-OAuth-Scopes header of any answer
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: AsyncWebClient | None = None

    def _web_client(self) -> AsyncWebClient:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._loop = loop
            self._client = AsyncWebClient(
                token=self.token or None,
                base_url=self.base_url,
                timeout=int(max(self.timeout, 1)),
                session=self._session,
                logger=log,
                retry_handlers=[],
            )
        assert self._client is not None
        return self._client

    async def call(
        self,
        method: str,
        *,
        expected: Iterable[str] = (),
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Call `method` (e.g. "conversations.create") through slack-sdk's typed method.

        Returns the answer's data. An error code listed in `expected` is returned (with
        `ok: false`) for the caller to handle; any other failure raises a typed `ImError`. A
        method that is idempotent by nature is repeated where it failed while the activity's
        patience lasts (`warroom.im.patience`); the others are repeated by the adapter, which
        looks before it writes again.
        """
        if method in NOT_REPEATABLE:
            return await self._call_once(method, expected, kwargs)
        return await repeated(lambda: self._call_once(method, expected, kwargs))

    async def _call_once(self, method: str, expected: Iterable[str], kwargs: dict[str, Any]) -> dict[str, Any]:
        await self.budget.acquire(method, kwargs.get("channel"))
        fn = getattr(self._web_client(), method.replace(".", "_"))
        self.calls[method] += 1
        try:
            resp = await fn(**kwargs)
        except SlackApiError as e:
            self._note(getattr(e.response, "headers", None))
            data = e.response.data if isinstance(e.response.data, dict) else {}
            if data.get("error") in set(expected) and e.response.status_code == 200:
                return data
            mapped = errors.from_api_error(method, e)
            if isinstance(mapped, RateLimited):
                self.budget.blocked(method, mapped.retry_after)
            raise mapped from None
        except Exception as e:
            mapped = errors.from_exception(method, e)
            if mapped is None:
                raise
            raise mapped from e
        self._note(resp.headers)
        return resp.data if isinstance(resp.data, dict) else {}

    def _note(self, headers: Any) -> None:
        try:
            value = headers.get("x-oauth-scopes") if headers is not None else None
        except AttributeError:
            value = None
        if value is not None:
            self.scopes = {s.strip() for s in str(value).split(",") if s.strip()}

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            with contextlib.suppress(RuntimeError):  # its event loop is gone
                await self._session.close()
        self._session = None
