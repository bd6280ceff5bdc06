from __future__ import annotations

from starters.service import WarRoomService
from warroom.im.sandbox.platform import SandboxPlatform
from warroom.models import Action, IncidentIn, Responder, RoomState, Source

from .conftest import eventually


async def test_room_lifecycle(client, worker, store, settings):
    svc = WarRoomService(client, store, settings)
    inc, created = await svc.upsert_incident(
        IncidentIn(title="DB down", responders=[Responder(email="ann@example.com"), Responder(name="Bob")]),
        actor="ann@example.com",
        source=Source.API,
    )
    assert created
    out = await svc.create_room(inc.id, platform=None, actor="ann@example.com", source=Source.API)
    assert out.done and out.value.state is RoomState.ACTIVE
    sandbox = SandboxPlatform(store.db)
    room = sandbox.room(out.value.chat_id)
    print(room)
    ack = await svc.act(inc.id, Action.ACKNOWLEDGE, actor="ann@example.com", source=Source.API)
    print(ack)
    await eventually(lambda: sandbox.room(out.value.chat_id).messages[0].card["status"] == "acknowledged")
    print(store.timeline.list(inc.id))
