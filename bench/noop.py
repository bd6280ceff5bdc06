"""The engine's own floor: a workflow that runs the same number of activities (and local
activities) as an incident's war room, each doing nothing. The burst benchmark compares War Room's
throughput with it."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker import Worker

QUEUE = "bench-noop"


@activity.defn(name="bench_noop")
async def noop() -> None:
    """Nothing: what remains is scheduling, dispatch and completion in the engine."""


@dataclass
class Shape:
    activities: int
    local_activities: int = 0


@workflow.defn(name="BenchNoop")
class BenchNoop:
    @workflow.run
    async def run(self, shape: Shape) -> None:
        for _ in range(shape.activities):
            await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=30))
        for _ in range(shape.local_activities):
            await workflow.execute_local_activity(noop, start_to_close_timeout=timedelta(seconds=30))


async def serve(address: str) -> None:
    from temporalio.client import Client

    client = await Client.connect(address)
    async with Worker(client, task_queue=QUEUE, workflows=[BenchNoop], activities=[noop]):
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(os.environ["WARROOM_TEMPORAL_ADDRESS"]))
