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
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

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
