"""IncidentWarRoom on a real Temporal dev server, with the sandbox IM and a real SQLite store.

Every assertion about the room is made at the sandbox platform's own records (rooms, members,
messages), not only through the workflow's view of itself.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from starters.service import WarRoomService
from warroom.im.sandbox.platform import SandboxPlatform
from warroom.messages import (
    CreateRoomRequest,
    RoomActionSignal,
    RoomGoneSignal,
    SnapshotSignal,
    WarRoomConfig,
    WarRoomInput,
    workflow_id,
)
from warroom.models import Action, IncidentIn, IncidentStatus, MemberState, Responder, RoomState, Source
from warroom.settings import Settings
from warroom.store import Store
from workflows.incident import IncidentWarRoom

from .conftest import eventually

ANN = "ann@example.com"
BOB = "bob@example.com"


def _incident(store: Store, *responders: Responder, title: str = "Checkout errors"):
    incident, _ = store.incidents.upsert(
        IncidentIn(id=f"t{uuid.uuid4().hex[:8]}", title=title, responders=list(responders)), datetime.now(UTC)
    )
    return incident


async def _start(client: Client, settings: Settings, store: Store, incident, **config) -> WorkflowHandle:
    return await client.start_workflow(
        IncidentWarRoom.run,
        WarRoomInput(incident=incident, config=WarRoomConfig(**config)),
        id=workflow_id(incident.id),
        task_queue=settings.task_queue,
    )


def _kinds(store: Store, incident_id: str) -> list[str]:
    return [e.kind for e in store.timeline.list(incident_id)]


async def test_duplicate_create_requests_make_exactly_one_room(client, worker, store, settings):
    incident = _incident(store, Responder(email=ANN), Responder(email=BOB))
    handle = await _start(client, settings, store, incident)
    rooms = await asyncio.gather(
        *(handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox")) for _ in range(8))
    )
    assert len({r.chat_id for r in rooms}) == 1
    sandbox = SandboxPlatform(store.db)
    assert [r.chat_id for r in sandbox.rooms() if r.incident_id == incident.id] == [rooms[0].chat_id]
    room = await eventually(lambda: _room_with_members(sandbox, rooms[0].chat_id, 2))
    assert all(m.joins == 1 for m in room.members)
    assert len([m for m in room.messages if m.card]) == 1  # one card, updated in place
    await eventually(lambda: _kinds(store, incident.id).count("member.invited") == 2)
    assert _kinds(store, incident.id).count("room.created") == 1


async def test_a_new_rooms_card_shows_its_invites_and_is_edited_only_for_one_that_failed(
    client, worker, store, settings
):
    """The card goes out beside the invites showing them as done: no edit when they all went
    through; one edit when a responder could not be found (Carol has neither email nor phone)."""
    sandbox = SandboxPlatform(store.db)
    for responders, shown in (
        ([Responder(email=ANN), Responder(email=BOB)], ["invited", "invited"]),
        ([Responder(email=ANN), Responder(name="Carol")], ["invited", "unlinked"]),
    ):
        incident = _incident(store, *responders)
        handle = await _start(client, settings, store, incident)
        chat_id = (
            await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox"))
        ).chat_id
        edits = 0 if shown == ["invited", "invited"] else 1
        await eventually(lambda i=incident.id: {"card.posted", "member.invited"} <= set(_kinds(store, i)))
        card = await eventually(lambda c=chat_id, n=edits: _card_with_edits(sandbox, c, n))
        assert [m["state"] for m in card.card["members"]] == shown
        await asyncio.sleep(1)  # an edit would follow the invites' outcomes at once: none comes
        assert [m.edits for m in sandbox.room(chat_id).messages if m.card] == [edits]


def _card_with_edits(sandbox: SandboxPlatform, chat_id: str, edits: int):
    return next((m for m in sandbox.room(chat_id).messages if m.card and m.edits == edits), None)


def _room_with_members(sandbox: SandboxPlatform, chat_id: str, n: int):
    room = sandbox.room(chat_id)
    return room if len([m for m in room.members if m.state == "joined"]) == n else None


async def test_newest_snapshot_wins_over_late_older_ones(client, worker, store, settings):
    incident = _incident(store, Responder(email=ANN))
    handle = await _start(client, settings, store, incident)
    v3 = incident.model_copy(update={"version": 3, "title": "v3 title", "severity": "critical"})
    v2 = incident.model_copy(update={"version": 2, "title": "v2 title"})
    await handle.signal(IncidentWarRoom.snapshot, SnapshotSignal(incident=v3))
    await handle.signal(IncidentWarRoom.snapshot, SnapshotSignal(incident=v2))
    view = await eventually(lambda: _view_if(handle, lambda v: v.incident.version == 3))
    assert view.incident.title == "v3 title"
    await asyncio.sleep(0.3)
    assert (await handle.query(IncidentWarRoom.view)).incident.title == "v3 title"
    await eventually(lambda: _kinds(store, incident.id).count("incident.updated") == 1)


async def _view_if(handle: WorkflowHandle, pred):
    view = await handle.query(IncidentWarRoom.view)
    return view if pred(view) else None


async def test_room_actions_are_authorized_deduplicated_and_audited(client, worker, store, settings):
    svc = WarRoomService(client, store, settings)
    incident, _ = await svc.upsert_incident(
        IncidentIn(title="Payments down", responders=[Responder(email=ANN), Responder(name="No Contact")]),
        actor=ANN,
        source=Source.API,
    )
    room = (await svc.create_room(incident.id, platform="sandbox", actor=ANN, source=Source.API)).value
    sandbox = SandboxPlatform(store.db)
    ann_id = sandbox.lookup_user(email=ANN, phone=None, now=datetime.now(UTC))
    eve_id = sandbox.lookup_user(email="eve@example.com", phone=None, now=datetime.now(UTC))
    handle = svc.handle(incident.id)

    # Someone in the room who is not a responder: refused, audited, answered in the room.
    await handle.signal(
        IncidentWarRoom.room_action,
        RoomActionSignal(
            event_id="e-1", platform="sandbox", chat_id=room.chat_id, im_user_id=eve_id, action=Action.ACKNOWLEDGE
        ),
    )
    await eventually(lambda: "action.refused" in _kinds(store, incident.id))
    refusal = await eventually(lambda: [m for m in sandbox.messages(room.chat_id) if "refused" in m.text])
    assert eve_id in refusal[0].text
    assert store.incidents.get(incident.id).status is IncidentStatus.TRIGGERED

    # The responder, twice with the same event id (a platform retry): applied once.
    click = RoomActionSignal(
        event_id="e-2",
        platform="sandbox",
        chat_id=room.chat_id,
        im_user_id=ann_id,
        action=Action.ACKNOWLEDGE,
        card_version=None,
    )
    await handle.signal(IncidentWarRoom.room_action, click)
    await handle.signal(IncidentWarRoom.room_action, click)
    await eventually(lambda: store.incidents.get(incident.id).status is IncidentStatus.ACKNOWLEDGED)
    await eventually(lambda: _card(sandbox, room.chat_id)["status"] == "acknowledged")
    await asyncio.sleep(0.3)
    entries = store.timeline.list(incident.id)
    acks = [e for e in entries if e.kind == "action.acknowledge"]
    assert len(acks) == 1 and acks[0].actor == ANN and acks[0].source == "sandbox"

    # A click on a card older than the last status change: refused as stale.
    await handle.signal(
        IncidentWarRoom.room_action,
        RoomActionSignal(
            event_id="e-3",
            platform="sandbox",
            chat_id=room.chat_id,
            im_user_id=ann_id,
            action=Action.CLOSE,
            card_version=1,
        ),
    )
    await eventually(lambda: len([e for e in store.timeline.list(incident.id) if e.kind == "action.refused"]) == 2)
    assert store.incidents.get(incident.id).status is IncidentStatus.ACKNOWLEDGED

    # The unlinked responder is shown on the card and in the timeline.
    card = _card(sandbox, room.chat_id)
    assert {"name": "No Contact", "state": "unlinked"} in card["members"]
    assert "member.unlinked" in _kinds(store, incident.id)


def _card(sandbox: SandboxPlatform, chat_id: str) -> dict:
    cards = [m for m in sandbox.messages(chat_id) if m.card]
    assert len(cards) == 1
    return cards[0].card


async def test_dismiss_is_refused_until_closed_then_completes_the_workflow(client, worker, store, settings):
    svc = WarRoomService(client, store, settings)
    incident, _ = await svc.upsert_incident(
        IncidentIn(title="Disk full", responders=[Responder(email=ANN)]), actor=ANN, source=Source.CLI
    )
    room = (await svc.create_room(incident.id, platform=None, actor=ANN, source=Source.CLI)).value
    with pytest.raises(WorkflowUpdateFailedError):
        await svc.handle(incident.id).execute_update(IncidentWarRoom.dismiss_room, _dismiss())
    await svc.act(incident.id, Action.CLOSE, actor=ANN, source=Source.CLI)
    out = await svc.dismiss_room(incident.id, actor=ANN, source=Source.CLI)
    assert out.done and out.value.state is RoomState.DISMISSED
    view = await svc.handle(incident.id).result()
    assert view.room.state is RoomState.DISMISSED
    assert SandboxPlatform(store.db).room(room.chat_id).state == "dismissed"
    kinds = _kinds(store, incident.id)
    assert kinds.index("action.close") < kinds.index("room.dismissed")
    assert store.rooms.current(incident.id).state is RoomState.DISMISSED


def _dismiss():
    from warroom.messages import DismissRoomRequest

    return DismissRoomRequest(actor=ANN)


async def test_responder_changes_invite_and_remove(client, worker, store, settings):
    svc = WarRoomService(client, store, settings)
    incident, _ = await svc.upsert_incident(
        IncidentIn(title="Latency", responders=[Responder(email=ANN)]), actor=ANN, source=Source.API
    )
    room = (await svc.create_room(incident.id, platform=None, actor=ANN, source=Source.API)).value
    await svc.set_responders(incident.id, [Responder(email=BOB)], actor=ANN, source=Source.API)
    sandbox = SandboxPlatform(store.db)
    await eventually(lambda: _room_with_members(sandbox, room.chat_id, 2))

    async def states():
        view = await svc.handle(incident.id).query(IncidentWarRoom.view)
        return {m.email: m.state for m in view.room.members}

    await eventually(lambda: _eq(states(), {ANN: MemberState.REMOVED, BOB: MemberState.INVITED}))
    await eventually(lambda: {"member.removed", "member.invited"} <= set(_kinds(store, incident.id)))


async def _eq(coro, expected) -> bool:
    return (await coro) == expected


async def test_continue_as_new_carries_state_and_dedup(client, worker, store, settings):
    incident = _incident(store, Responder(email=ANN))
    handle = await _start(client, settings, store, incident, max_signals_per_run=12)
    room = await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox"))
    sandbox = SandboxPlatform(store.db)
    ann_id = sandbox.lookup_user(email=ANN, phone=None, now=datetime.now(UTC))
    await eventually(lambda: _room_with_members(sandbox, room.chat_id, 1))
    click = RoomActionSignal(
        event_id="ack-1", platform="sandbox", chat_id=room.chat_id, im_user_id=ann_id, action=Action.ACKNOWLEDGE
    )
    await handle.signal(IncidentWarRoom.room_action, click)
    for v in range(2, 30):
        await handle.signal(
            IncidentWarRoom.snapshot,
            SnapshotSignal(incident=incident.model_copy(update={"version": 100 + v, "title": f"title {v}"})),
        )
    view = await eventually(lambda: _view_if(handle, lambda v: v.runs >= 2 and v.incident.title == "title 29"))
    assert view.room.chat_id == room.chat_id and view.room.state is RoomState.ACTIVE
    # The same click again after continue-as-new: still recognised as a duplicate.
    await handle.signal(IncidentWarRoom.room_action, click)
    await asyncio.sleep(0.5)
    await eventually(lambda: _card(sandbox, room.chat_id)["title"] == "title 29")
    kinds = _kinds(store, incident.id)
    assert kinds.count("action.acknowledge") == 1 and kinds.count("action.refused") == 0
    assert kinds.count("room.created") == 1 and kinds.count("card.posted") == 1
    seqs = [e.seq for e in store.timeline.list(incident.id)]
    assert seqs == list(range(1, len(seqs) + 1))  # timeline numbering continues across runs


async def test_faulty_platform_still_yields_exactly_one_of_everything(dev_env, tmp_path):
    """30 % of sandbox calls fail (rate limits, 503s, timeouts after the effect): retries must
    converge to one room, one join per member, one card, and the right final state."""
    from workers.main import build_worker

    settings = Settings(
        WARROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'faulty.db'}",
        WARROOM_TASK_QUEUE=f"tq-{uuid.uuid4().hex[:8]}",
        WARROOM_SANDBOX_FAULT_RATE=0.3,
        WARROOM_SANDBOX_SIGNING_SECRET="s",
        _env_file=None,
    )
    store = Store(settings.database_url)
    worker, im = build_worker(dev_env.client, store, settings)
    async with worker:
        svc = WarRoomService(dev_env.client, store, settings, wait=60)
        sandbox = SandboxPlatform(store.db)
        ids = []
        for n in range(4):
            incident, _ = await svc.upsert_incident(
                IncidentIn(title=f"flaky {n}", responders=[Responder(email=ANN), Responder(email=BOB)]),
                actor=ANN,
                source=Source.API,
            )
            ids.append(incident.id)
        rooms = await asyncio.gather(*(svc.create_room(i, platform=None, actor=ANN, source=Source.API) for i in ids))
        for i in ids:
            await svc.act(i, Action.ACKNOWLEDGE, actor=ANN, source=Source.API)
            await svc.act(i, Action.CLOSE, actor=ANN, source=Source.API)
            await svc.dismiss_room(i, actor=ANN, source=Source.API)
        for i, out in zip(ids, rooms, strict=True):
            assert [r.chat_id for r in sandbox.rooms() if r.incident_id == i] == [out.value.chat_id]
            room = sandbox.room(out.value.chat_id)
            assert room.state == "dismissed"
            assert sorted(m.email for m in room.members) == [ANN, BOB] and all(m.joins == 1 for m in room.members)
            cards = [m for m in room.messages if m.card]
            assert len(cards) == 1 and cards[0].card["status"] == "closed"
            kinds = _kinds(store, i)
            assert kinds.count("room.created") == 1 and kinds.count("room.dismissed") == 1
        faults = (
            store.db.engine.connect()
            .exec_driver_sql("select count(*) from sandbox_calls where fault is not null")
            .scalar()
        )
        assert faults > 0
    await im.aclose()
    store.close()


async def test_a_room_removed_by_hand_is_recorded_and_ends_the_run(client, worker, store, settings):
    svc = WarRoomService(client, store, settings)
    incident, _ = await svc.upsert_incident(
        IncidentIn(title="Hand-made mess", responders=[Responder(email=ANN)]), actor=ANN, source=Source.API
    )
    room = (await svc.create_room(incident.id, platform=None, actor=ANN, source=Source.API)).value
    handle = svc.handle(incident.id)
    gone = RoomGoneSignal(event_id="g-2", platform="sandbox", chat_id="some-other-chat", im_user_id="U1")
    await handle.signal(IncidentWarRoom.room_gone, gone)  # not this incident's room: ignored
    await handle.signal(IncidentWarRoom.room_gone, gone.model_copy(update={"chat_id": room.chat_id}))
    await handle.signal(IncidentWarRoom.room_gone, gone.model_copy(update={"chat_id": room.chat_id}))  # duplicate
    assert (await handle.query(IncidentWarRoom.view)).room.state is RoomState.DISMISSED
    view = await handle.result()
    assert view.room.state is RoomState.DISMISSED
    entries = [e for e in store.timeline.list(incident.id) if e.kind == "room.dismissed"]
    assert len(entries) == 1 and entries[0].actor == "U1" and "removed the room" in entries[0].detail
    assert store.rooms.current(incident.id).state is RoomState.DISMISSED
    # a new room can be opened for the incident afterwards (a new workflow run, numbering continues)
    again = (await svc.create_room(incident.id, platform=None, actor=ANN, source=Source.API)).value
    assert again.chat_id != room.chat_id and again.generation == room.generation + 1
    created = [e.detail for e in store.timeline.list(incident.id) if e.kind == "room.created"]
    assert len(created) == 2 and "new room" not in created[0] and "a new room (number 2)" in created[1]
    seqs = [e.seq for e in store.timeline.list(incident.id)]
    assert seqs == list(range(1, len(seqs) + 1))
