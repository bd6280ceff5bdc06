"""Per-method budgets, so a burst of incidents stays under Slack's rate limits instead of
tripping them.

Slack limits each Web API method per workspace by "tier" (Tier 2 ≈ 20/min, Tier 3 ≈ 50/min,
Tier 4 ≈ 100/min) and posting to about one message per second per channel. Each method gets
a token bucket holding half a minute's allowance and refilled at half the tier's rate, so no
60-second window exceeds the tier's figure (see `TokenBucket`). A call that would have to wait
longer than `max_wait` (or than what the activity attempt has left: `warroom.im.patience`) does
not sleep inside the activity: it raises `RateLimited`, and Temporal retries it after that delay.
A 429 from Slack blocks the method's bucket for its `Retry-After`, so concurrent calls do not
hammer a method Slack already refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from warroom.errors import RateLimited
from warroom.im.patience import caller, max_budget_wait

TIER_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
METHOD_TIER = {
    "auth.test": 4,
    "conversations.create": 2,
    "conversations.setTopic": 2,
    "conversations.setPurpose": 2,
    "conversations.archive": 2,
    "conversations.unarchive": 2,
    "conversations.rename": 2,
    "conversations.list": 2,
    "pins.add": 2,
    "conversations.invite": 3,
    "conversations.kick": 3,
    "conversations.history": 3,
    "conversations.info": 3,
    "users.lookupByEmail": 3,
    "chat.update": 3,
    "chat.postEphemeral": 4,
    "chat.getPermalink": 4,
}
# chat.postMessage is "special": ~1 message per second per channel, a generous workspace limit.
POST_PER_MINUTE = 300
CHANNEL_POSTS_PER_SECOND = 1.0
CHANNEL_POST_BURST = 3
CHANNEL_METHODS = ("chat.postMessage", "chat.postEphemeral")
TURN_KEPT_SECONDS = 120  # a kept turn not taken up this long after it came is forgotten


class TokenBucket:
    """`capacity` tokens, refilled at `rate` per second. With capacity C and rate r, at most
    C + 60·r calls pass in any minute; the defaults keep that at the tier's per-minute figure."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(capacity, 1.0)
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self.blocked_until = 0.0

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait(self) -> float:
        """Seconds until a call may go, without taking a token."""
        now = self.clock()
        self._refill(now)
        need = 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate
        return max(need, self.blocked_until - now, 0.0)

    def take(self) -> None:
        """Take a token (the balance may go negative: later callers then wait longer)."""
        self._refill(self.clock())
        self.tokens -= 1

    def block(self, seconds: float) -> None:
        """Slack said 429: nobody calls this method for `seconds`."""
        self.blocked_until = max(self.blocked_until, self.clock() + seconds)


class Budget:
    """The buckets of one workspace (one bot token) in this process."""

    def __init__(self, *, scale: float = 1.0, max_wait: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.scale = scale
        self.max_wait = max_wait
        self.clock = clock
        self._methods: dict[str, TokenBucket] = {}
        self._channels: dict[str, TokenBucket] = {}
        self._turns: dict[tuple[str, str, str], float] = {}  # (method, channel, caller) → when

    def _method(self, method: str) -> TokenBucket:
        if method not in self._methods:
            per_minute = (
                POST_PER_MINUTE if method == "chat.postMessage" else TIER_PER_MINUTE[METHOD_TIER.get(method, 3)]
            )
            per_minute *= self.scale
            self._methods[method] = TokenBucket(per_minute / 120, per_minute / 2, self.clock)
        return self._methods[method]

    def _channel(self, channel: str) -> TokenBucket:
        if channel not in self._channels:
            if len(self._channels) > 10_000:  # forget idle channels
                self._channels.clear()
            self._channels[channel] = TokenBucket(
                CHANNEL_POSTS_PER_SECOND * self.scale, CHANNEL_POST_BURST * self.scale, self.clock
            )
        return self._channels[channel]

    def _buckets(self, method: str, channel: str | None) -> list[TokenBucket]:
        buckets = [self._method(method)]
        if channel and method in CHANNEL_METHODS:
            buckets.append(self._channel(channel))
        return buckets

    def reserve(self, method: str, channel: str | None = None) -> float:
        """Take the tokens for one call and return how long to wait before making it; raise
        `RateLimited` when that would be longer than the call may wait (`max_wait`, or what its
        activity attempt has left). A caller that names itself keeps its turn then: the tokens
        are taken, and its retry, coming back after the delay, makes the call in that turn."""
        who = caller()
        turn = (method, channel or "", who or "")
        if who is not None and turn in self._turns:
            wait = max(self._turns.pop(turn) - self.clock(), 0.0)
            if wait > max_budget_wait(self.max_wait):
                self._turns[turn] = self.clock() + wait
                raise _spent(method, wait)
            return wait
        buckets = self._buckets(method, channel)
        wait = max(b.wait() for b in buckets)
        if wait > max_budget_wait(self.max_wait) and who is None:
            raise _spent(method, wait)
        for b in buckets:
            b.take()
        if wait > max_budget_wait(self.max_wait):
            self._keep_turn(turn, self.clock() + wait)
            raise _spent(method, wait)
        return wait

    def _keep_turn(self, turn: tuple[str, str, str], at: float) -> None:
        if len(self._turns) > 10_000:  # turns whose callers never came back (retried elsewhere)
            now = self.clock()
            self._turns = {k: t for k, t in self._turns.items() if t > now - TURN_KEPT_SECONDS}
        self._turns[turn] = at

    async def acquire(self, method: str, channel: str | None = None) -> None:
        wait = self.reserve(method, channel)
        if wait > 0:
            await asyncio.sleep(wait)

    def blocked(self, method: str, seconds: float) -> None:
        self._method(method).block(seconds)


def _spent(method: str, wait: float) -> RateLimited:
    return RateLimited(
        f"slack {method}: this worker's budget for the method is spent; retrying in {wait:.1f}s",
        retry_after=wait,
        platform="slack",
        code="budget",
    )
