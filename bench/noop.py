"""The engine's own floors, for the benchmarks to compare War Room with.

- `BenchNoop`: a workflow that runs the same number of activities as an incident's war room, each
  doing nothing (the burst benchmark compares War Room's throughput with it);
- `BenchRoom`: a workflow that has just started takes an update that runs one activity as long as
  a room's IM calls (room ready compares with it: what the engine alone adds to the floor).

Same runner as War Room's worker (no sandbox), in a process of its own like War Room's worker.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

QUEUE = "bench-noop"
TIMEOUT = timedelta(seconds=30)


@activity.defn(name="bench_noop")
async def noop() -> None:
    """Nothing: what remains is scheduling, dispatch and completion in the engine."""


@activity.defn(name="bench_wait")
async def wait(seconds: float) -> float:
    """Stands in for IM calls that take `seconds` in all; returns when they were done (the room
    is ready then, before the workflow hears of it)."""
    await asyncio.sleep(seconds)
    return time.time()


@workflow.defn(name="BenchNoop")
class BenchNoop:
    @workflow.run
    async def run(self, activities: int) -> None:
        for _ in range(activities):
            await workflow.execute_activity(noop, start_to_close_timeout=TIMEOUT)


@workflow.defn(name="BenchRoom")
class BenchRoom:
    """Like an incident asked for its room as soon as it exists: the run's first activity (the
    incident's first timeline write) is under way when the update comes."""

    def __init__(self) -> None:
        self.opened = False

    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(noop, start_to_close_timeout=TIMEOUT)
        await workflow.wait_condition(lambda: self.opened)

    @workflow.update
    async def open(self, seconds: float) -> float:
        done = await workflow.execute_activity(wait, seconds, start_to_close_timeout=TIMEOUT)
        self.opened = True
        return done


async def serve(address: str) -> None:
    from temporalio.client import Client

    client = await Client.connect(address)
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[BenchNoop, BenchRoom],
        activities=[noop, wait],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(os.environ["WARROOM_TEMPORAL_ADDRESS"]))
