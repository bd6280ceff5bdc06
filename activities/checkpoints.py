"""Where a multi-step activity records each finished step for its next attempt.

Each step is reported twice: as the activity's heartbeat details (Temporal keeps them with the
attempt) and as a row in the store, written at once. The SDK throttles heartbeats to one every
few seconds, so a worker killed between two of them loses what it did since; the row does not
wait. The next attempt resumes from whichever of the two got further.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from pydantic import BaseModel
from temporalio import activity

from warroom.store.progress import StepProgress

P = TypeVar("P", bound=BaseModel)
log = logging.getLogger("warroom.activities")


class Checkpoints(Generic[P]):
    def __init__(self, store: StepProgress, model: type[P], steps_done: Callable[[P], int]) -> None:
        info = activity.info()
        self._store = store
        self._key = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
        self._model = model
        self._steps_done = steps_done
        self._writing: asyncio.Task[None] | None = None
        # The rows are for a next attempt: on the last one allowed (a local try of one attempt)
        # nobody would read them, and each is a write on the path to a ready room.
        policy = info.retry_policy
        self._store_rows = not (policy is not None and 0 < policy.maximum_attempts <= info.attempt)

    async def resume(self) -> P:
        """The furthest progress any earlier attempt recorded (nothing done on a first attempt)."""
        if activity.info().attempt == 1:
            return self._model()
        candidates = [self._model()]
        details = activity.info().heartbeat_details
        if details:
            candidates.append(self._model.model_validate(details[0]))
        stored = await asyncio.to_thread(self._store.load, self._key)
        if stored is not None:
            candidates.append(self._model.model_validate(stored))
        return max(candidates, key=self._steps_done)

    def record(self, progress: P) -> None:
        """Report `progress` now; the writes go out in order, without holding up the next step. A
        local activity has no heartbeat: its row alone carries the progress (where it may be retried)."""
        if not activity.info().is_local:
            activity.heartbeat(progress)
        if not self._store_rows:
            return
        data = progress.model_dump(mode="json")
        before = self._writing

        async def write() -> None:
            if before is not None:
                await before
            try:
                await asyncio.to_thread(self._store.save, self._key, data)
            except Exception as e:  # the heartbeat still carries it; the step itself succeeded
                log.warning("could not record the progress of %s: %s", self._key, e)

        self._writing = asyncio.create_task(write())

    async def flush(self) -> None:
        """Wait for the last write (before the attempt ends, whichever way it ends)."""
        if self._writing is not None:
            await asyncio.shield(self._writing)
