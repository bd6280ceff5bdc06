"""How long a platform call may wait for its adapter's own rate budget before it gives up.

Adapters keep per-method budgets so a burst stays under the platform's limits. A call that would
wait longer than the adapter's `max_wait` gives up with `RateLimited`, and its activity attempt
fails and is retried after the delay. Under a burst that turns into a herd: every retried attempt
wakes at about the same time and races the others for the next free slot, so rooms lose attempts
(and seconds) without any fault. Inside an activity the attempt can afford to wait longer: the
in-place layer (`activities/in_place.py`) lets the call wait for as long as the attempt has left,
so calls take their turn in the budget's queue instead. A call whose turn comes later than that
keeps its turn for its caller (the activity, whose next attempt comes back at that time), so the
retry does not race newcomers for it.

The same patience lets an adapter repeat one platform call that is idempotent by nature (set a
topic, pin, invite) where it failed (`repeated`), rather than fail the adapter method and have
it start over from its first call (for Slack, a new `conversations.create` from a budget of 20 a
minute).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from warroom.errors import RateLimited, TransientImError

T = TypeVar("T")
FIRST_DELAY, MAX_DELAY = 0.2, 2.0  # seconds between tries of a transient failure, doubling

_until: ContextVar[tuple[float, str] | None] = ContextVar("warroom_im_patience", default=None)


@contextmanager
def patient_until(deadline: float, caller: str) -> Iterator[None]:
    """Calls made inside may wait for a budget until `deadline` (`time.monotonic()` seconds);
    `caller` names who makes them, the same across the caller's retries."""
    token = _until.set((deadline, caller))
    try:
        yield
    finally:
        _until.reset(token)


def caller() -> str | None:
    """Who makes the current call, when it said (`patient_until`)."""
    patience = _until.get()
    return None if patience is None else patience[1]


def max_budget_wait(default: float) -> float:
    """The longest a call may wait for a budget now: `default`, or more when the caller allows."""
    patience = _until.get()
    return default if patience is None else max(default, patience[0] - time.monotonic())


def time_left() -> float | None:
    """Seconds the current caller can still wait; None when it did not say (not in an activity)."""
    patience = _until.get()
    return None if patience is None else patience[0] - time.monotonic()


async def repeated(call: Callable[[], Awaitable[T]], on_repeat: Callable[[Exception], None] = lambda e: None) -> T:
    """`call()`, repeated after a transient failure or a rate limit while the caller's patience
    lasts. Only for a call that is idempotent: a repeat must not do anything twice."""
    delay = FIRST_DELAY
    while True:
        try:
            return await call()
        except (RateLimited, TransientImError) as e:
            wait = e.retry_after if isinstance(e, RateLimited) else delay * random.uniform(0.5, 1.0)
            left = time_left()
            if left is None or wait > left:
                raise
            on_repeat(e)
            await asyncio.sleep(wait)
            delay = min(delay * 2, MAX_DELAY)
