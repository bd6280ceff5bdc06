"""Recorded histories replay with the current workflow code: a change that would break running
incidents (a reordered activity, a new timer, a removed branch) fails here, before it ships.

Record new histories with `.venv/bin/python -m tests.histories.record` (see that file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from warroom.settings import Settings
from workflows.incident import IncidentWarRoom
from workflows.link_users import LinkUsers

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_recorded() -> None:
    names = {p.stem for p in HISTORIES}
    # The 1.0 baseline: every path of the workflow (see tests/histories/record.py). Later shapes
    # add recordings under new names; these stay.
    assert {
        "full_life",
        "continue_as_new",
        "continue_as_new-1",
        "link_users",
        "ai_life",
        "ai_life-1",
        "room_gone",
        "room_gone-1",
        "handover",
        "handover-1",
    } <= names


# Both runners: the sandbox (what the tests run) and none (what a worker runs by default).
RUNNERS = {"sandboxed": SandboxedWorkflowRunner, "unsandboxed": UnsandboxedWorkflowRunner}


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_with_current_code(path: Path, runner: str) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(
        workflows=[IncidentWarRoom, LinkUsers],
        data_converter=pydantic_data_converter,
        workflow_runner=RUNNERS[runner](),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_workers_run_without_the_sandbox_by_default_and_the_tests_with_it() -> None:
    assert Settings.model_fields["workflow_sandbox"].default is False
    assert Settings(_env_file=None).workflow_sandbox  # tests/conftest.py turns it on for every worker
