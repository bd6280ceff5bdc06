"""Recorded histories replay with the current workflow code: a change that would break running
incidents (a reordered activity, a new timer, a removed branch) fails here, before it ships.

Record new histories with `.venv/bin/python -m tests.histories.record` (see that file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.incident import IncidentWarRoom
from workflows.link_users import LinkUsers

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_recorded() -> None:
    names = {p.stem for p in HISTORIES}
    assert {
        "full_life",
        "full_life-before-notice",
        "continue_as_new",
        "continue_as_new-1",
        "continue_as_new-before-handover",
        "link_users",
        "ai_life",
        "ai_life-1",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_with_current_code(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[IncidentWarRoom, LinkUsers], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
