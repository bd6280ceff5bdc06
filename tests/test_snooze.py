"""Snooze expiry is a durable timer: on the time-skipping test server two hours pass in a moment."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from starters.service import WarRoomService
from warroom.im.sandbox.platform import SandboxPlatform
from warroom.messages import ActRequest, CreateRoomRequest
from warroom.models import Action, IncidentIn, IncidentStatus, Responder, Source
from warroom.settings import Settings
from warroom.store import Store
from workers.main import build_worker
from workflows.incident import IncidentWarRoom

from .conftest import eventually

ANN = "ann@example.com"


async def test_snooze_expiry_returns_to_the_prior_status(
    skip_env: WorkflowEnvironment, store: Store, settings: Settings
):
    worker, im = build_worker(skip_env.client, store, settings)
    async with worker:
        svc = WarRoomService(skip_env.client, store, settings)
        incident, _ = await svc.upsert_incident(
            IncidentIn(title="Queue backlog", responders=[Responder(email=ANN)]), actor=ANN, source=Source.API
        )
        handle = svc.handle(incident.id)
        room = await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox"))
        await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.ACKNOWLEDGE, actor=ANN))
        snoozed = await handle.execute_update(
            IncidentWarRoom.act, ActRequest(action=Action.SNOOZE, actor=ANN, minutes=120)
        )
        assert snoozed.status is IncidentStatus.SNOOZED and snoozed.snoozed_until is not None
        started = await skip_env.get_current_time()

        await skip_env.sleep(timedelta(minutes=119))
        assert (await handle.query(IncidentWarRoom.view)).incident.status is IncidentStatus.SNOOZED

        await skip_env.sleep(timedelta(minutes=2))
        view = await eventually(
            lambda: _view_if(handle, lambda v: v.incident.status is IncidentStatus.ACKNOWLEDGED), timeout=30
        )
        assert view.incident.snoozed_until is None
        assert store.incidents.get(incident.id).status is IncidentStatus.ACKNOWLEDGED
        entries = await eventually(lambda: [e for e in store.timeline.list(incident.id) if e.kind == "action.unsnooze"])
        assert entries[0].actor == "system" and "acknowledged" in entries[0].detail
        assert entries[0].at - started >= timedelta(minutes=119)
        card = await eventually(lambda: _card_status(store, room.chat_id) == "acknowledged")
        assert card
    await im.aclose()


async def _view_if(handle, ok):  # type: ignore[no-untyped-def]
    view = await handle.query(IncidentWarRoom.view)
    return view if ok(view) else None


def _card_status(store: Store, chat_id: str) -> str | None:
    cards = [m.card for m in SandboxPlatform(store.db).messages(chat_id) if m.card]
    return cards[0]["status"] if cards else None


async def test_acting_during_a_snooze_cancels_its_expiry(
    skip_env: WorkflowEnvironment, store: Store, settings: Settings
):
    worker, im = build_worker(skip_env.client, store, settings)
    async with worker:
        svc = WarRoomService(skip_env.client, store, settings)
        incident, _ = await svc.upsert_incident(IncidentIn(title="Cert expiry"), actor=ANN, source=Source.API)
        handle = svc.handle(incident.id)
        await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.SNOOZE, actor=ANN, minutes=30))
        acked = await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.ACKNOWLEDGE, actor=ANN))
        assert acked.status is IncidentStatus.ACKNOWLEDGED and acked.snoozed_until is None
        await skip_env.sleep(timedelta(hours=1))
        view = await handle.query(IncidentWarRoom.view)
        assert view.incident.status is IncidentStatus.ACKNOWLEDGED
        kinds = [e.kind for e in store.timeline.list(incident.id)]
        assert "action.unsnooze" not in kinds
        assert kinds.count("action.snooze") == kinds.count("action.acknowledge") == 1
    await im.aclose()
