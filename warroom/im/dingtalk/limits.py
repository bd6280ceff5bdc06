"""Per-API request budgets: DingTalk allows an app 20 calls per second per API.

Every call waits for its API's token bucket before it is sent, so a burst (a hundred members, a
reconcile after an outage) is spread out instead of meeting `QpsLimitForAppkeyAndApi`. A wait
longer than `max_wait` is not waited out in the activity: it becomes `RateLimited`, and Temporal
retries after that delay (`next_retry_delay`). One budget per app and process, like the token.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from warroom.errors import RateLimited
from warroom.im.dingtalk.errors import PLATFORM
from warroom.im.patience import max_budget_wait

QPS_PER_API = 20.0


class Bucket:
    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.clock = clock
        self._tokens = self.capacity
        self._at = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token; the seconds to wait before using it."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def give_back(self) -> None:
        with self._lock:
            self._tokens = min(self.capacity, self._tokens + 1)


class Budgets:
    """One bucket per API (the method and path of the call)."""

    def __init__(self, rate: float = QPS_PER_API, *, max_wait: float = 5.0) -> None:
        self.rate = rate
        self.max_wait = max_wait
        self._buckets: dict[str, Bucket] = {}
        self._lock = threading.Lock()

    def bucket(self, api: str) -> Bucket:
        with self._lock:
            b = self._buckets.get(api)
            if b is None:
                b = self._buckets[api] = Bucket(self.rate)
            return b

    async def take(self, api: str) -> None:
        bucket = self.bucket(api)
        wait = bucket.reserve()
        if wait > max_budget_wait(self.max_wait):
            bucket.give_back()
            raise RateLimited(
                f"dingtalk {api}: this process's budget of {self.rate:g} calls/s is spent for {wait:.1f} s",
                retry_after=wait,
                platform=PLATFORM,
                code="budget",
            )
        if wait > 0:
            await asyncio.sleep(wait)


_budgets: dict[str, Budgets] = {}
_lock = threading.Lock()


def shared(app_key: str) -> Budgets:
    with _lock:
        b = _budgets.get(app_key)
        if b is None:
            b = _budgets[app_key] = Budgets()
        return b
