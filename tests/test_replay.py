"""Recorded histories replay with the current workflow code: a change that would break running
incidents (a reordered activity, a new timer, a removed branch) fails here, before it ships.

Record new histories with `.venv/bin/python -m tests.histories.record` (see that file)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from warroom.settings import Settings
from workflows.incident import IncidentWarRoom
from workflows.incident.patches import BUNDLE
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


def test_a_run_of_this_shape_asks_for_its_changes_once() -> None:
    """Runs since the change bundle record one patch marker (and one TemporalChangeVersion
    upsert) however many changes they meet, and do not upsert what they were started with."""

    recorded = [p for p in HISTORIES if BUNDLE in p.stem]
    assert len(recorded) >= 13
    for path in recorded:
        events = json.loads(path.read_text())["events"]
        patches = [e for e in events if e.get("markerRecordedEventAttributes", {}).get("markerName") == "core_patch"]
        upserted = [
            name
            for e in events
            for name in e.get("upsertWorkflowSearchAttributesEventAttributes", {})
            .get("searchAttributes", {})
            .get("indexedFields", {})
        ]
        started = events[0].get("workflowExecutionStartedEventAttributes", {})
        if started.get("workflowType", {}).get("name") != "IncidentWarRoom":
            continue
        assert len(patches) == 1, path.name
        data = patches[0]["markerRecordedEventAttributes"]["details"]["patch-data"]["payloads"][0]["data"]
        assert json.loads(base64.b64decode(data))["id"] == BUNDLE, path.name
        assert upserted.count("TemporalChangeVersion") == 1, path.name
        assert "IncidentId" not in upserted, path.name  # set at start, never changed
