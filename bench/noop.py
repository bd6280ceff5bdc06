"""The engine's own floor: a workflow that runs the same number of activities as an incident's
war room, each doing nothing. The burst benchmark compares War Room's throughput with it."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker import Worker

QUEUE = "bench-noop"


@activity.defn(name="bench_noop")
async def noop() -> None:
    """Nothing: what remains is scheduling, dispatch and completion in the engine."""


@workflow.defn(name="BenchNoop")
class BenchNoop:
    @workflow.run
    async def run(self, activities: int) -> None:
        for _ in range(activities):
            await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=30))


async def serve(address: str) -> None:
    from temporalio.client import Client

    client = await Client.connect(address)
    async with Worker(client, task_queue=QUEUE, workflows=[BenchNoop], activities=[noop]):
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(os.environ["WARROOM_TEMPORAL_ADDRESS"]))
