"""Repair incidents whose workflow can no longer be replayed: reset each to the workflow task that
wrote the history its replay rejects.

A workflow task that fails for nondeterminism fails on every worker that has to replay it, so the
incident stops until someone resets it. Two causes are known: workflow code deployed without a
patch, and an SDK fault the chaos suite found (temporalio 1.35: an update accepted after a retried
task's commands replays in the other order; see tests/test_replay.py). Either way the fix is the
one an operator would apply by hand: reset the run to the task that produced the first event the
replay rejects. That task runs again on the current code; the events after it are discarded and
the signals and updates that came after it are delivered again. Whatever the discarded part did
outside the workflow is done again by idempotent activities (same room, same card, same message
keys), so nothing is done twice in the room. The timeline keeps what the discarded part recorded
(it happened); the steps run again are recorded after it, so one step can appear twice there.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client

from warroom.messages import WORKFLOW_TYPE

_REJECTED_EVENT = re.compile(r"HistoryEvent\(id: (\d+)")
NONDETERMINISM = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR


@dataclass
class Stuck:
    """A run whose latest workflow task failed for nondeterminism, and where to reset it."""

    workflow_id: str
    run_id: str
    failed_event_id: int
    message: str
    reset_to: int  # a WorkflowTaskCompleted event id: that task runs again


def diagnose(workflow_id: str, run_id: str, events: list[HistoryEvent]) -> Stuck | None:
    """The run's diagnosis from its history: stuck when its last workflow task failure is a
    nondeterminism error that no later task got past."""
    failed = None
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failed = e if e.workflow_task_failed_event_attributes.cause == NONDETERMINISM else None
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and failed is not None:
            failed = None  # a later task completed: the run got past it
    if failed is None:
        return None
    message = failed.workflow_task_failed_event_attributes.failure.message
    named = _REJECTED_EVENT.search(message)
    rejected = int(named.group(1)) if named else failed.event_id
    completed = [
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and e.event_id < rejected
    ]
    if not completed:
        return None  # the first task itself: nothing to reset to (the run must be started again)
    return Stuck(workflow_id, run_id, failed.event_id, message, completed[-1])


async def find_stuck(client: Client, workflow_type: str = WORKFLOW_TYPE) -> list[Stuck]:
    """Running workflows of `workflow_type` that are stuck on a nondeterminism failure. Only those
    whose pending workflow task is a retry have their history read."""
    stuck = []
    query = f"WorkflowType = '{workflow_type}' AND ExecutionStatus = 'Running'"
    async for wf in client.list_workflows(query):
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
        if (await handle.describe()).raw_description.pending_workflow_task.attempt < 2:
            continue
        found = diagnose(wf.id, wf.run_id, list((await handle.fetch_history()).events))
        if found is not None:
            stuck.append(found)
    return stuck


async def reset(client: Client, stuck: Stuck) -> str:
    """Reset the run to `stuck.reset_to` (signals and updates after it are delivered again);
    returns the new run's id."""
    resp = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=stuck.workflow_id, run_id=stuck.run_id),
            reason=f"warroom repair: {stuck.message[:200]}",
            workflow_task_finish_event_id=stuck.reset_to,
            request_id=str(uuid.uuid4()),
        )
    )
    return resp.run_id
