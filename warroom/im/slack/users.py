"""Responders by email (`users.lookupByEmail`), cached with an expiry.

Found users are kept for `ttl` seconds, unknown emails (`users_not_found`) for `miss_ttl`, so
someone who joins the workspace later is found soon. Concurrent lookups of one email (a burst
of incidents with the same on-call people) share one call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from warroom.im.slack.client import SlackApi


@dataclass
class _Entry:
    user_id: str | None
    expires: float


class UserDirectory:
    def __init__(
        self,
        api: SlackApi,
        *,
        ttl: float = 3600,
        miss_ttl: float = 300,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 50_000,
    ) -> None:
        self.api = api
        self.ttl = ttl
        self.miss_ttl = miss_ttl
        self.clock = clock
        self.max_entries = max_entries
        self._cache: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _cached(self, key: str) -> _Entry | None:
        entry = self._cache.get(key)
        if entry is not None and entry.expires > self.clock():
            return entry
        return None

    async def by_email(self, email: str) -> str | None:
        key = email.strip().lower()
        if not key:
            return None
        hit = self._cached(key)
        if hit is not None:
            return hit.user_id
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._cached(key)
            if hit is not None:
                return hit.user_id
            data = await self.api.call("users.lookupByEmail", expected=("users_not_found",), email=key)
            user = (data.get("user") or {}) if data.get("ok") else {}
            user_id = user.get("id") if user and not user.get("deleted") else None
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
                self._locks = {key: lock}
            self._cache[key] = _Entry(user_id, self.clock() + (self.ttl if user_id else self.miss_ttl))
            return user_id

    def forget_misses(self) -> None:
        self._cache = {k: e for k, e in self._cache.items() if e.user_id is not None}

    def forget(self, email: str) -> None:
        self._cache.pop(email.strip().lower(), None)
