"""Record workflow histories for the replay test (tests/test_replay.py).

Run after a workflow change that is meant to be compatible, to add the new shapes of history:

    .venv/bin/python -m tests.histories.record

Each scenario runs on the time-skipping test server (so snooze timers fire at once) with a real
worker, the sandbox IM and a throwaway SQLite store, and writes `<scenario>.json` next to this file.
Existing files are replaced only by name: keep old recordings, they prove old runs still replay.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from starters.service import WarRoomService
from warroom.im.sandbox.platform import SandboxPlatform
from warroom.messages import (
    ActRequest,
    CreateRoomRequest,
    DismissRoomRequest,
    LinkUsersInput,
    Person,
    RoomActionSignal,
    SnapshotSignal,
)
from warroom.models import Action, IncidentIn, Responder, Source
from warroom.settings import Settings
from warroom.store import Store
from workers.main import build_worker
from workflows.incident import SEARCH_ATTRIBUTES, IncidentWarRoom
from workflows.link_users import LinkUsers

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
ANN, BOB = "ann@example.com", "bob@example.com"
Scenario = Callable[[WorkflowEnvironment, WarRoomService], Awaitable[list[WorkflowHandle]]]


async def full_life(env: WorkflowEnvironment, svc: WarRoomService) -> list[WorkflowHandle]:
    """Open, room, refused click, acknowledge from the room, snooze that expires, close, dismiss."""
    incident, _ = await svc.upsert_incident(
        IncidentIn(title="Checkout 500s", responders=[Responder(email=ANN), Responder(name="No Contact")]),
        actor=ANN,
        source=Source.API,
    )
    handle = svc.handle(incident.id)
    room = await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox", actor=ANN))
    sandbox = SandboxPlatform(svc.store.db)
    ann = sandbox.lookup_user(email=ANN, phone=None, now=datetime.now(UTC))
    eve = sandbox.lookup_user(email="eve@example.com", phone=None, now=datetime.now(UTC))
    for event_id, user in (("click-1", eve), ("click-2", ann), ("click-2", ann)):
        await handle.signal(
            IncidentWarRoom.room_action,
            RoomActionSignal(
                event_id=event_id,
                platform="sandbox",
                chat_id=room.chat_id or "",
                im_user_id=user,
                action=Action.ACKNOWLEDGE,
            ),
        )
    await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.SNOOZE, actor=ANN, minutes=60))
    await env.sleep(timedelta(minutes=61))
    await svc.set_responders(incident.id, [Responder(email=ANN), Responder(email=BOB)], actor=ANN, source=Source.API)
    await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.CLOSE, actor=ANN))
    await handle.execute_update(IncidentWarRoom.dismiss_room, DismissRoomRequest(actor=ANN))
    await handle.result()
    return [handle]


async def continue_as_new(env: WorkflowEnvironment, svc: WarRoomService) -> list[WorkflowHandle]:
    """Enough snapshots to continue as new twice, with a room and a create request in flight."""
    svc.settings.max_signals_per_run = 10
    incident, _ = await svc.upsert_incident(
        IncidentIn(title="Replica lag", responders=[Responder(email=ANN)]), actor=ANN, source=Source.API
    )
    handle = svc.handle(incident.id)
    first = await handle.describe()
    await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox", actor=ANN))
    for runs, versions in ((2, range(2, 14)), (3, range(14, 26))):
        for v in versions:
            changed = incident.model_copy(update={"version": incident.version + v, "title": f"Replica lag ({v})"})
            await handle.signal(IncidentWarRoom.snapshot, SnapshotSignal(incident=changed))
        while (await handle.query(IncidentWarRoom.view)).runs < runs:
            await asyncio.sleep(0.05)
    await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.ACKNOWLEDGE, actor=ANN))
    await handle.terminate("recorded")
    return [svc.client.get_workflow_handle(handle.id, run_id=first.run_id), handle]


async def link_users(env: WorkflowEnvironment, svc: WarRoomService) -> list[WorkflowHandle]:
    people = [Person(responder_id="r1", email=ANN), Person(responder_id="r2", name="Nobody")]
    handle = await svc.client.start_workflow(
        LinkUsers.run,
        args=[LinkUsersInput(platform="sandbox", people=people), svc.config()],
        id=f"link-users-{uuid.uuid4().hex[:8]}",
        task_queue=svc.settings.task_queue,
    )
    await handle.result()
    return [handle]


SCENARIOS: dict[str, Scenario] = {"full_life": full_life, "continue_as_new": continue_as_new, "link_users": link_users}


async def record(names: list[str]) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"), data_converter=pydantic_data_converter
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in SEARCH_ATTRIBUTES},
        )
    )
    try:
        for name in names:
            with tempfile.TemporaryDirectory() as tmp:
                settings = Settings(
                    WARROOM_DATABASE_URL=f"sqlite:///{tmp}/record.db",
                    WARROOM_TASK_QUEUE=f"record-{uuid.uuid4().hex[:8]}",
                    WARROOM_SANDBOX_SIGNING_SECRET="record",
                    _env_file=None,
                )
                store = Store(settings.database_url)
                worker, im = build_worker(env.client, store, settings)
                async with worker:
                    handles = await SCENARIOS[name](env, WarRoomService(env.client, store, settings))
                    for n, handle in enumerate(handles):
                        history = await handle.fetch_history()
                        path = HERE / (f"{name}.json" if n == 0 else f"{name}-{n}.json")
                        path.write_text(history.to_json())
                        print(f"{path.name}: {len(history.events)} events")
                await im.aclose()
                store.close()
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1:] or list(SCENARIOS)))
