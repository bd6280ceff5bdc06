"""How a new room's one activity is run: in the workflow task that asked for it, when it can.

The open-room call (`calls.OPEN_ROOM`) is first tried once as a local activity: the worker that
runs the workflow task runs the call, and the task completes with its result, so the room is ready
without an activity dispatch through the server and the workflow task that would follow it. A
local activity holds its workflow task while it runs, so that try is short (`LOCAL_TIMEOUT`, well
inside the workflow task's 10 s) and is not retried. When it fails (a platform error, a rate
limit) or runs past that (a slow platform, a worker too busy to finish it), the call is made again
as the regular activity: on the workflow's queue, with heartbeats, its retry policy and its 2 h
deadline. A call the local try made may be made again, but no effect is repeated (the room and the
card go by key, invites by membership, links once stored). A refusal for good (missing permission,
an unknown platform) fails the room at once. A worker lost during the local try loses its workflow
task, which another worker runs again, local try included.

Platforms bound to a region (`options.im` gives them a task queue other than the workflow's,
`WARROOM_PLATFORM_REGIONS`) always take the regular activity on their regional queue: a local
activity runs on the worker of the workflow's own queue, which may not be in that region or allowed
to reach that platform.

Workflows that started opening a room before `open-room-local` keep the regular activity alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

from workflows.incident import calls, options
from workflows.incident.patches import patched

with workflow.unsafe.imports_passed_through():
    from warroom.messages import OpenedRoom, OpenRoomInput, WarRoomConfig
    from warroom.names import NON_RETRYABLE

PATCH = "open-room-local"
LOCAL_TIMEOUT = timedelta(seconds=3)
# The local try: a few seconds, once (a retry is the regular activity's).
LOCAL = options.Profile(
    start_to_close=LOCAL_TIMEOUT,
    schedule_to_close=LOCAL_TIMEOUT,
    retry=RetryPolicy(maximum_attempts=1, non_retryable_error_types=NON_RETRYABLE),
)
# What a failed opening raises: the regular activity's ActivityError, or a local activity's
# refusal for good, which reaches the workflow as its ApplicationError, not wrapped.
FAILED = (ActivityError, ApplicationError)


def runs_locally(config: WarRoomConfig, platform: str) -> bool:
    """Whether a room on `platform` is first opened in the workflow task: not for a platform bound
    to a region (its calls stay on its regional queue's workers)."""
    return options.im(config, platform).task_queue == workflow.info().task_queue


async def open_room(
    config: WarRoomConfig, inp: OpenRoomInput, *, waiting: Callable[[], None] | None = None
) -> OpenedRoom:
    """Open the room: locally first where it may, else (or after a local try that did not make it)
    as the regular activity, which may take a while (`waiting` is called before it). Raises one
    of `FAILED` when the room cannot be opened."""
    profile = options.im(config, inp.platform)
    if runs_locally(config, inp.platform) and patched(PATCH):
        try:
            return await calls.OPEN_ROOM.local(inp, LOCAL)
        except FailureError as e:
            if _refused_for_good(e):
                raise
            workflow.logger.info("opening the room locally did not make it (%s): as an activity", e)
    if waiting is not None:
        waiting()
    return await calls.OPEN_ROOM(inp, profile)


def _refused_for_good(e: FailureError) -> bool:
    """A cancellation, or an error the regular activity would not retry either."""
    while isinstance(e, ActivityError) and isinstance(e.cause, FailureError):
        e = e.cause
    if isinstance(e, CancelledError):
        return True
    return isinstance(e, ApplicationError) and (e.non_retryable or e.type in NON_RETRYABLE)
