"""How long, where and how often the incident workflow's activities run: one profile per kind.

Someone waits on each IM call (the room, the card), so IM calls retry every 10 s at most; a rate
limit waits as long as the platform says whatever this cap (the adapters set `next_retry_delay`).
The assistant gets two attempts (activities/ai.py answers offline on the last one), then gives up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from warroom.messages import WarRoomConfig
    from warroom.names import AI_PERMANENT, NON_RETRYABLE

IM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=NON_RETRYABLE,
)
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=NON_RETRYABLE,
)
AI_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=2,
    non_retryable_error_types=[*NON_RETRYABLE, AI_PERMANENT],
)
IM_HEARTBEAT = timedelta(seconds=10)  # workers.heartbeat beats for the calls while they run
STORE_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class Profile:
    """The options of one kind of activity call. `None` leaves Temporal's default (no heartbeat,
    no overall deadline, the workflow's own task queue)."""

    start_to_close: timedelta
    retry: RetryPolicy
    schedule_to_close: timedelta | None = None
    heartbeat: timedelta | None = None
    task_queue: str | None = None

    def within(self, schedule_to_close: timedelta) -> Profile:
        """The same calls, given up after `schedule_to_close` in all."""
        return replace(self, schedule_to_close=schedule_to_close)


# Writes to our own database: idempotent (stable ids and keys), retried for as long as it takes.
STORE = Profile(start_to_close=STORE_TIMEOUT, retry=STORE_RETRY)
# Our own posts into the transcript: small, and nobody waits for them.
CAPTURE = Profile(start_to_close=timedelta(seconds=10), retry=STORE_RETRY)


def im(config: WarRoomConfig, platform: str) -> Profile:
    """A call to the room's platform, on the platform's regional queue when it has one; a call on
    a lost worker is retried within seconds (heartbeats), a room's work is given up after 2 h.
    A new room is first tried in a local activity (`opening`), except on a regional queue: a
    platform bound to a region keeps the regular activity there, run by that region's workers."""
    return Profile(
        task_queue=config.im_task_queues.get(platform) or workflow.info().task_queue,
        start_to_close=timedelta(seconds=30),
        schedule_to_close=timedelta(hours=2),
        heartbeat=IM_HEARTBEAT,
        retry=IM_RETRY,
    )


def ai(seconds: int = 120) -> Profile:
    """A call to the assistant: `seconds` per attempt; a lost worker is noticed in seconds."""
    return Profile(
        start_to_close=timedelta(seconds=seconds),
        schedule_to_close=timedelta(seconds=seconds * 3),
        heartbeat=timedelta(seconds=10),
        retry=AI_RETRY,
    )
