"""IM calls retried inside the activity attempt, before the attempt itself is given up.

An activity such as `open_room` makes up to eight platform calls. If any failed call failed the
whole attempt, a room would need all of them to succeed together: under a 30 % fault rate that is
(0.7)^8 ≈ 6 % of attempts, and the room took 20 attempts on average (bench/faults.py). Retried
where it failed, each call costs about 1/(1 - fault rate) tries and the attempt rarely fails.

Repeating a call is safe because every adapter method is idempotent by its key (the seam's
contract: Temporal already repeats them across attempts). The repeats stay within a share of the
attempt's start-to-close timeout, so an attempt never runs into its timeout because of them; a
rate limit longer than what is left, or a call that keeps failing, fails the attempt as before,
and Temporal retries it after the platform's delay. Outside an activity calls are not retried.
Within the same share, a call may also wait its turn in the adapter's rate budget
(`warroom.im.patience`).
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from temporalio import activity

from warroom.im.base import ImAdapter
from warroom.im.patience import patient_until, repeated
from warroom.telemetry.metrics import platform_label, worker_metrics

# The adapter's outbound calls; the rest (callbacks, checks, connections) pass through as they are
# (`PASSED_THROUGH`: a method of the seam in neither set is a mistake, tests/test_activity_errors.py).
OUTBOUND = frozenset(
    {
        "create_room",
        "lookup_user",
        "add_members",
        "remove_members",
        "post_card",
        "update_card",
        "pin_card",
        "post_message",
        "post_rich",
        "edit_rich",
        "post_notice",
        "rename_room",
        "fetch_history",
        "join_url",
        "dismiss_room",
    }
)
PASSED_THROUGH = frozenset(
    {"handle_callback", "listen", "connection_status", "prepare", "setup_checks", "aclose", "forget_misses"}
)
SHARE_OF_ATTEMPT = 0.5  # of start-to-close: the rest is left for the calls after the repeats


def retrying_in_place(adapter: ImAdapter, platform: str) -> ImAdapter:
    """`adapter` with its outbound calls retried in place (see the module's docstring)."""
    return cast(ImAdapter, _InPlace(adapter, platform))


class _InPlace:
    def __init__(self, adapter: ImAdapter, platform: str) -> None:
        self._adapter = adapter
        self._platform = platform_label(platform)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._adapter, name)
        if name not in OUTBOUND:
            return value
        return functools.partial(_call, value, self._platform, name)


async def _call(fn: Callable[..., Awaitable[Any]], platform: str, method: str, *args: Any, **kwargs: Any) -> Any:
    deadline = _deadline()
    if deadline is None:
        return await fn(*args, **kwargs)
    with patient_until(time.monotonic() + deadline - time.time(), _caller(method, args, kwargs)):
        return await repeated(lambda: fn(*args, **kwargs), on_repeat=lambda e: _count(platform, method, e))


def _deadline() -> float | None:
    """Until when, as a Unix time, this attempt may repeat its calls; None outside an activity."""
    if not activity.in_activity():
        return None
    info = activity.info()
    if info.start_to_close_timeout is None:
        return None
    return info.started_time.timestamp() + SHARE_OF_ATTEMPT * info.start_to_close_timeout.total_seconds()


def _caller(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """This call, named the same in every attempt of the activity (a rate budget keeps its turn
    under this name: `warroom.im.patience`); concurrent calls of one attempt have names of their own."""
    info = activity.info()
    digest = hashlib.sha256(repr((args, sorted(kwargs.items()))).encode()).hexdigest()[:16]
    return f"{info.workflow_id}/{info.activity_id}/{method}/{digest}"


def _count(platform: str, method: str, error: Exception) -> None:
    metrics = worker_metrics(create=False)
    if metrics is not None:
        metrics.im_retries_in_place.labels(platform, method, type(error).__name__).inc()
