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
from warroom.im.base import MessageReceived
from warroom.im.sandbox.platform import SandboxPlatform
from warroom.messages import (
    ActRequest,
    CreateRoomRequest,
    DismissRoomRequest,
    LinkUsersInput,
    Person,
    ReviewRequest,
    RoomActionSignal,
    SnapshotSignal,
)
from warroom.models import Action, Alert, IncidentIn, Responder, Severity, Source
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


async def ai_life(env: WorkflowEnvironment, svc: WarRoomService) -> list[WorkflowHandle]:
    """The assistant: impact and runbook push when the room opens, chat that matches another
    runbook, questions (one suggesting an action that a person then clicks), a severity change
    (impact refresh), continue-as-new with the assistant's state, a requested review, the review
    on close, dismissal."""
    svc.settings.max_signals_per_run = 14
    body = IncidentIn(
        title="Checkout returns 500 errors after the deploy",
        severity=Severity.HIGH,
        responders=[Responder(email=ANN), Responder(email=BOB)],
        labels={"service": "checkout", "region": "eu-west-1"},
        alerts=[Alert(title="checkout 5xx above 5%", service="checkout", metric="http_5xx_ratio", value=12.5)],
    )
    incident, _ = await svc.upsert_incident(body, actor=ANN, source=Source.API)
    handle = svc.handle(incident.id)
    first = await handle.describe()
    room = await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox", actor=ANN))
    chat = room.chat_id or ""
    sandbox = SandboxPlatform(svc.store.db)
    ann = sandbox.lookup_user(email=ANN, phone=None, now=datetime.now(UTC))
    bob = sandbox.lookup_user(email=BOB, phone=None, now=datetime.now(UTC))

    async def wait_for(kind: str, n: int = 1) -> None:
        while len([e for e in svc.store.timeline.list(incident.id) if e.kind == kind]) < n:
            await asyncio.sleep(0.05)

    async def say(user: str, text: str) -> None:
        mid = str(sandbox.post(chat, author=user, text=text, key=None, now=datetime.now(UTC)))
        event = MessageReceived(
            event_id=f"msg-{mid}",
            chat_id=chat,
            message_id=mid,
            im_user_id=user,
            text=text,
            mentions_bot="@warroom" in text,
        )
        assert await svc.dispatch("sandbox", [event]) == []

    await wait_for("ai.knowledge")
    for n in range(5):
        await say(bob if n % 2 else ann, f"postgres says too many connections, replica lag growing ({n})")
    await wait_for("ai.knowledge", 2)
    await say(ann, "@warroom what is the status?")
    await say(bob, "@warroom what should we do?")
    await wait_for("ai.answer", 2)
    await handle.signal(
        IncidentWarRoom.room_action,
        RoomActionSignal(
            event_id="click-ack", platform="sandbox", chat_id=chat, im_user_id=ann, action=Action.ACKNOWLEDGE
        ),
    )
    await svc.upsert_incident(
        IncidentIn(id=incident.id, title=body.title, severity=Severity.CRITICAL), actor=ANN, source=Source.API
    )
    await wait_for("ai.impact", 2)
    while (await handle.query(IncidentWarRoom.view)).runs < 2:
        await say(bob, "@warroom help")
        await asyncio.sleep(0.2)
    await say(ann, "root cause: the deploy dropped the payment client timeout")
    await handle.execute_update(IncidentWarRoom.review, ReviewRequest(actor=ANN))
    await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.CLOSE, actor=ANN))
    await handle.execute_update(IncidentWarRoom.dismiss_room, DismissRoomRequest(actor=ANN))
    await handle.result()
    return [svc.client.get_workflow_handle(handle.id, run_id=first.run_id), handle]


SCENARIOS: dict[str, Scenario] = {
    "full_life": full_life,
    "continue_as_new": continue_as_new,
    "link_users": link_users,
    "ai_life": ai_life,
}


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
