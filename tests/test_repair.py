"""`warroom repair`: a run stuck on a nondeterminism failure is reset to the task that wrote what
its replay rejects, and goes on with the signals it got meanwhile (a real dev server and worker)."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Worker
from typer.testing import CliRunner

from starters.cli import app
from starters.repair import diagnose, find_stuck, reset

from .conftest import eventually

# A history from the chaos suite that temporalio 1.35 could not replay (an update accepted after
# a lost workflow task; README, Reliability): what `warroom repair` must diagnose. It predates the
# 1.0 history baseline, so it is read here, not replayed.
SDK_BUG = Path(__file__).parent / "histories" / "sdk" / "update-after-lost-workflow-task.json"
_executions = itertools.count()


@activity.defn(name="repair_step")
async def _step() -> None:
    """What the workflow's new code does instead of its old timer."""


@workflow.defn(name="RepairChangedUnderfoot", sandboxed=False)
class _ChangedUnderfoot:
    """A timer the first time its code runs, an activity from then on: like code deployed without
    a patch. With no workflow cache, its second task replays the first and fails for good."""

    def __init__(self) -> None:
        self.released = False

    @workflow.run
    async def run(self) -> str:
        if next(_executions) == 0:
            await workflow.sleep(0.1)
        else:
            await workflow.execute_activity(_step, start_to_close_timeout=timedelta(seconds=10))
        await workflow.wait_condition(lambda: self.released)
        return "finished"

    @workflow.signal
    def release(self) -> None:
        self.released = True


async def test_a_stuck_run_is_reset_and_gets_the_signals_it_missed(client: Client) -> None:
    queue = f"repair-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[_ChangedUnderfoot], activities=[_step], max_cached_workflows=0
    ):
        handle = await client.start_workflow(_ChangedUnderfoot.run, id=f"stuck-{queue}", task_queue=queue)

        async def stuck():  # type: ignore[no-untyped-def]
            return [s for s in await find_stuck(client, "RepairChangedUnderfoot") if s.workflow_id == handle.id]

        (found,) = await eventually(stuck)
        assert "nondeterminism" in found.message.lower() and found.reset_to < found.failed_event_id
        await handle.signal(_ChangedUnderfoot.release)  # sent while it is stuck: after the reset point

        run_id = await reset(client, found)
        assert await client.get_workflow_handle(handle.id, run_id=run_id).result() == "finished"
        assert await stuck() == []


def test_the_sdk_fault_found_by_the_chaos_suite_is_reset_to_the_task_that_wrote_the_rejected_event() -> None:
    history = WorkflowHistory.from_json("sdk-bug", SDK_BUG.read_text())
    found = diagnose("incident-chaos-1", "run", list(history.events))
    assert found is not None and found.failed_event_id == 182
    # Event 149 (an activity scheduled before the update's acceptance) was written by the task
    # that completed at 148: that task runs again.
    assert found.reset_to == 148


def test_a_run_that_got_past_the_failure_is_not_stuck() -> None:
    """A nondeterminism failure followed by a completed task (a fixed worker replayed it)."""
    events = list(WorkflowHistory.from_json("sdk-bug", SDK_BUG.read_text()).events)
    completed = HistoryEvent(event_id=185, event_type=EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    assert diagnose("x", "r", [*events, completed]) is None


def test_the_cli_says_when_nothing_is_stuck_and_when_temporal_is_unreachable(dev_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"WARROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    address = dev_env.client.service_client.config.target_host
    r = CliRunner().invoke(app, ["repair", "--json"], env={**env, "WARROOM_TEMPORAL_ADDRESS": address})
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"dry_run": False, "stuck": []}
    r = CliRunner().invoke(app, ["repair"], env={**env, "WARROOM_TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert r.exit_code == 3 and "cannot reach Temporal at 127.0.0.1:1" in r.output
