"""The conftest guard of the shared time-skipping server (`skip_env`): a workflow a test leaves
running with a timer would stop time skipping for every later test (its timer fires with no
worker left, and the server waits for that workflow task before it skips again). The guard
terminates what the test left open."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from .conftest import leftovers_ended

LEFT: dict[str, str] = {}  # what the first test below left running, for the next one


@workflow.defn(name="TestSleeper")
class Sleeper:
    @workflow.run
    async def run(self, minutes: int) -> None:
        await workflow.sleep(timedelta(minutes=minutes))


async def _start(client: Client, minutes: int) -> WorkflowHandle:
    """A sleeper started with a worker that is gone when this returns: its timer is still set."""
    queue = f"sleepers-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[Sleeper], workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await client.start_workflow(
            Sleeper.run, minutes, id=f"sleeper-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
        while not [e async for e in handle.fetch_history_events() if e.HasField("timer_started_event_attributes")]:
            await asyncio.sleep(0.05)
    return handle


async def _time_still_skips(client: Client) -> None:
    """A timer later than the leftover's fires at once (15 s of wall time for an hour)."""
    queue = f"sleepers-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[Sleeper], workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await client.start_workflow(Sleeper.run, 60, id=f"sleeper-{uuid.uuid4().hex[:8]}", task_queue=queue)
        await asyncio.wait_for(handle.result(), 15)


async def test_a_workflow_left_in_the_block_is_terminated_and_time_still_skips(skip_env: WorkflowEnvironment) -> None:
    async with leftovers_ended(skip_env.client):  # what skip_env does around every test
        left = await _start(skip_env.client, 30)
    assert (await left.describe()).status is WorkflowExecutionStatus.TERMINATED
    await _time_still_skips(skip_env.client)


async def test_a_test_leaves_a_workflow_with_a_live_timer(skip_env: WorkflowEnvironment) -> None:
    """Deliberately left running: skip_env's teardown must end it (checked by the next test)."""
    left = await _start(skip_env.client, 30)
    LEFT["id"], LEFT["run_id"] = left.id, left.result_run_id or ""


async def test_the_next_test_finds_it_terminated_and_time_skipping(skip_env: WorkflowEnvironment) -> None:
    if LEFT:  # the test before ran on this server (run alone or on another xdist worker: it did not)
        left = skip_env.client.get_workflow_handle(LEFT["id"], run_id=LEFT["run_id"])
        assert (await left.describe()).status is WorkflowExecutionStatus.TERMINATED
    await _time_still_skips(skip_env.client)
