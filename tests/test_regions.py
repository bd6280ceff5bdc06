"""Regional routing on one dev server: a platform bound to a region (WARROOM_PLATFORM_REGIONS) has
its IM calls run only by workers started with that WARROOM_REGION; workflows, store activities and
the IM calls of unbound platforms stay on the main queue's (global) worker.

Who ran what is read from the workflow histories themselves: each ActivityTaskStarted event names
the identity of the worker that polled the task, each WorkflowTaskCompleted event the worker
that completed the workflow task.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client

from starters.service import WarRoomService
from tests.platforms import installed
from warroom.models import Action, IncidentIn, Responder, RoomState, Source
from warroom.settings import Settings
from warroom.store import Store
from warroom.telemetry.metrics import worker_metrics
from workers.main import build_worker
from workflows.incident import WAR_ROOM_STATE, IncidentWarRoom

from .conftest import eventually

ANN = "ann@example.com"
GLOBAL, CN = "worker-global", "worker-cn"


@dataclass
class Ran:
    kind: str  # activity type, or "workflow task"
    task_queue: str
    identity: str


async def ran(client: Client, workflow_id: str) -> list[Ran]:
    """Every activity and workflow task of the workflow's runs: where it was queued, who ran it."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled: dict[int, tuple[str, str]] = {}
    out: list[Ran] = []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = e.activity_task_scheduled_event_attributes
            scheduled[e.event_id] = (a.activity_type.name, a.task_queue.name)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            a = e.activity_task_started_event_attributes
            kind, queue = scheduled[a.scheduled_event_id]
            out.append(Ran(kind, queue, a.identity))
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            # (the started event of a task handed out with the previous completion has no identity)
            out.append(Ran("workflow task", "", e.workflow_task_completed_event_attributes.identity))
        elif e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            # A local activity ran inside the workflow task whose completion precedes its marker.
            m = e.marker_recorded_event_attributes
            if m.marker_name == "core_local_activity":
                kind = json.loads(m.details["data"].payloads[0].data)["activity_type"]
                out.append(Ran(kind, "", out[-1].identity))
    return out


@contextlib.asynccontextmanager
async def running(client: Client, store: Store, settings: Settings, identity: str) -> AsyncIterator[None]:
    worker, im = build_worker(client, store, settings, identity=identity)
    async with worker:
        yield
    await im.aclose()


@pytest.fixture
def bound(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Sandbox bound to region `cn`; a second platform (a sandbox under another name) unbound."""
    with installed(tmp_path, {"second": "tests.platforms.second_sandbox:plugin"}):
        yield settings.model_copy(update={"platform_regions": "sandbox=cn"})


def regional(settings: Settings, region: str) -> Settings:
    return settings.model_copy(update={"region": region})


async def _life(svc: WarRoomService, platform: str) -> str:
    """Incident → room → acknowledge → close → dismiss; returns the workflow id."""
    incident, _ = await svc.upsert_incident(
        IncidentIn(title=f"Checkout errors on {platform}", responders=[Responder(email=ANN)]),
        actor=ANN,
        source=Source.API,
    )
    room = await svc.create_room(incident.id, platform=platform, actor=ANN, source=Source.API)
    assert room.done and room.value.state is RoomState.ACTIVE, room
    for action in (Action.ACKNOWLEDGE, Action.CLOSE):
        assert (await svc.act(incident.id, action, actor=ANN, source=Source.API)).done
    gone = await svc.dismiss_room(incident.id, actor=ANN, source=Source.API)
    assert gone.done and gone.value.state is RoomState.DISMISSED, gone
    await svc.handle(incident.id).result()
    return f"incident-{incident.id}"


async def test_each_platforms_calls_run_only_on_its_regions_worker(client, store, bound):
    assert WarRoomService(client, store, bound).config().im_task_queues == {"sandbox": f"{bound.task_queue}-cn"}
    async with running(client, store, bound, GLOBAL), running(client, store, regional(bound, "cn"), CN):
        svc = WarRoomService(client, store, bound)
        in_cn, in_global = await asyncio.gather(_life(svc, "sandbox"), _life(svc, "second"))
        cn_runs, global_runs = await ran(client, in_cn), await ran(client, in_global)

    im_cn = [r for r in cn_runs if r.kind.startswith("im_")]
    im_global = [r for r in global_runs if r.kind.startswith("im_")]
    assert {"im_open_room", "im_update_card", "im_dismiss_room"} <= {r.kind for r in im_cn}
    assert {"im_open_room", "im_update_card", "im_dismiss_room"} <= {r.kind for r in im_global}
    # The bound platform's IM calls: on <queue>-cn, run by the cn worker only.
    assert {(r.task_queue, r.identity) for r in im_cn} == {(f"{bound.task_queue}-cn", CN)}
    # The unbound platform's IM calls, the workflows and the store activities: the global worker;
    # its room is opened in a local activity (no queue: in the global worker's workflow task),
    # the bound platform's on its regional queue, never locally.
    # (A local try that ran past its 3 s on a loaded machine is finished by the regular activity,
    # on the global queue: still the global worker.)
    assert {(r.task_queue, r.identity) for r in im_global} == {(bound.task_queue, GLOBAL), ("", GLOBAL)}
    assert "" in {r.task_queue for r in im_global if r.kind == "im_open_room"}
    # Whatever was queued on <queue>-cn (IM calls, and AI work that reads the chat) ran on the cn
    # worker; everything on the main queue (workflow tasks, store activities) on the global one.
    for r in cn_runs + global_runs:
        assert r.identity == (CN if r.task_queue == f"{bound.task_queue}-cn" else GLOBAL), r
    store_work = {r.kind: r.task_queue for r in cn_runs if r.kind in ("record", "apply_action", "workflow task")}
    assert store_work == {"record": bound.task_queue, "apply_action": "", "workflow task": ""}  # local activity


async def test_room_completes_when_the_regional_worker_starts_late(client, store, bound):
    metrics = worker_metrics()
    assert metrics is not None
    sample = metrics.registry.get_sample_value
    before = {s: sample(f"warroom_room_ready_seconds_{s}", {"platform": "sandbox"}) or 0.0 for s in ("count", "sum")}

    async with running(client, store, bound, GLOBAL):
        svc = WarRoomService(client, store, bound, wait=0.5)
        incident, _ = await svc.upsert_incident(
            IncidentIn(title="Late region", responders=[Responder(email=ANN)]), actor=ANN, source=Source.API
        )
        answer = await svc.create_room(incident.id, platform="sandbox", actor=ANN, source=Source.API)
        assert not answer.done  # accepted; the room waits for a worker of region cn
        await asyncio.sleep(2)
        pending = (await svc.handle(incident.id).describe()).raw_description.pending_activities
        assert [(p.activity_type.name, p.state) for p in pending] == [
            ("im_open_room", PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED)
        ]
        assert (await svc.room_now(incident.id)).state is RoomState.CREATING
        # waiting for the regional worker, the room shows as creating in Temporal's search too
        started = (await svc.handle(incident.id).describe()).typed_search_attributes
        assert started.get(WAR_ROOM_STATE) == "creating"

        async with running(client, store, regional(bound, "cn"), CN):
            room = await eventually(lambda: _active(svc, incident.id), timeout=30)
            assert room.chat_id and room.card_handle
            await eventually(lambda: (store.rooms.current(incident.id) or room).state is RoomState.ACTIVE)

    runs = await ran(client, f"incident-{incident.id}")
    assert {r.identity for r in runs if r.kind.startswith("im_")} == {CN}
    after = {s: sample(f"warroom_room_ready_seconds_{s}", {"platform": "sandbox"}) for s in ("count", "sum")}
    assert after["count"] == before["count"] + 1
    assert after["sum"] - before["sum"] >= 2.0  # the wait for the regional worker is part of room-ready


async def _active(svc: WarRoomService, incident_id: str):
    view = await svc.handle(incident_id).query(IncidentWarRoom.view)
    return view.room if view.room.state is RoomState.ACTIVE and view.room.card_handle else None
