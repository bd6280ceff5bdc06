"""One access-token cache per DingTalk app, shared by everything in the process.

alibabacloud-dingtalk does not cache tokens (every call takes one in its headers), and DingTalk
answers a repeated fetch within the token's life with the same token anyway, so one cache per
(base URL, app key) is enough for all adapters, the Stream connection and `warroom doctor` of a
process. A token is replaced `REFRESH_AHEAD` before it expires (incidents outlive tokens by
weeks), and dropped at once when DingTalk refuses it (`forget`), so the one retry the API makes
fetches a new one. Tokens never leave the process: workflows carry no credential.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

REFRESH_AHEAD = 300.0  # seconds before expiry a token is replaced
MIN_LIFETIME = 60.0

Fetch = Callable[[], Awaitable[tuple[str, float]]]  # → (token, seconds it lives)


@dataclass
class _Token:
    value: str
    refresh_at: float


class TokenCache:
    """The token of one app; `get()` fetches at most once at a time."""

    def __init__(self, fetch: Fetch, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.fetch = fetch
        self.clock = clock
        self.fetches = 0
        self._token: _Token | None = None
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _guard(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:  # a cache may outlive an event loop (tests, CLI)
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock

    async def get(self) -> str:
        token = self._token
        if token is not None and self.clock() < token.refresh_at:
            return token.value
        async with self._guard():
            token = self._token
            if token is not None and self.clock() < token.refresh_at:
                return token.value
            value, lifetime = await self.fetch()
            self.fetches += 1
            ahead = min(REFRESH_AHEAD, max(lifetime, MIN_LIFETIME) / 2)
            self._token = _Token(value, self.clock() + max(lifetime, MIN_LIFETIME) - ahead)
            return value

    def forget(self, value: str) -> None:
        """DingTalk refused `value`: the next `get()` fetches a new token (unless one already did)."""
        if self._token is not None and self._token.value == value:
            self._token = None


_caches: dict[tuple[str, str], TokenCache] = {}
_caches_lock = threading.Lock()


def shared(base_url: str, app_key: str, fetch: Fetch) -> TokenCache:
    """The process's cache for this app (the first caller's `fetch` serves everyone)."""
    with _caches_lock:
        cache = _caches.get((base_url, app_key))
        if cache is None:
            cache = _caches[(base_url, app_key)] = TokenCache(fetch)
        return cache
