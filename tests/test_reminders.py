"""Reminders by rule are durable timers: on the time-skipping test server hours pass in a moment.
What the room shows is read from the sandbox's own records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from starters.service import WarRoomService
from warroom.enums import Role
from warroom.errors import Conflict
from warroom.im.sandbox.platform import SandboxPlatform
from warroom.messages import ActRequest, CreateRoomRequest, RoomPolicy
from warroom.models import Action, IncidentIn, IncidentStatus, Responder, RoomState, Source
from warroom.settings import Settings
from warroom.store import Store
from workers.main import build_worker
from workflows.incident import IncidentWarRoom

from .conftest import eventually

ANN = "ann@example.com"


def _said(store: Store, chat_id: str, words: str) -> list[str]:
    return [m.text for m in SandboxPlatform(store.db).messages(chat_id) if words in (m.text or "")]


def _kinds(store: Store, incident_id: str, kind: str) -> list[str]:
    return [e.detail for e in store.timeline.list(incident_id) if e.kind == kind]


async def test_nudge_update_reminder_and_dismissal_after_close(
    skip_env: WorkflowEnvironment, store: Store, settings: Settings
):
    worker, im = build_worker(skip_env.client, store, settings)
    async with worker:
        svc = WarRoomService(skip_env.client, store, settings)
        incident, _ = await svc.upsert_incident(
            IncidentIn(title="Queue backlog", responders=[Responder(email=ANN)]), actor="alertmanager",
            source=Source("alertmanager"),
        )  # fmt: skip
        handle = svc.handle(incident.id)
        room = await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox"))
        policy = RoomPolicy(rule="paging", unacknowledged_after_minutes=10, update_every_minutes=30,
                            dismiss_after_close_minutes=60)  # fmt: skip
        await svc.set_policy(incident.id, policy)
        await svc.set_policy(incident.id, policy)  # every delivery sends it again: nothing twice

        await skip_env.sleep(timedelta(minutes=9))
        assert not _said(store, room.chat_id, "Nobody has acknowledged")
        await skip_env.sleep(timedelta(minutes=2))
        nudge = await eventually(lambda: _said(store, room.chat_id, "Nobody has acknowledged"), timeout=30)
        assert len(nudge) == 1 and "@" not in nudge[0]
        await eventually(lambda: _kinds(store, incident.id, "reminder.unacknowledged"))

        await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.ACKNOWLEDGE, actor=ANN))
        await skip_env.sleep(timedelta(minutes=29))
        assert not _said(store, room.chat_id, "No update here")
        await skip_env.sleep(timedelta(minutes=2))
        await eventually(lambda: _said(store, room.chat_id, "No update here"), timeout=30)
        await skip_env.sleep(timedelta(minutes=31))  # still nobody: reminded again, once per stretch
        await eventually(lambda: len(_said(store, room.chat_id, "No update here")) == 2, timeout=30)
        assert len(_said(store, room.chat_id, "Nobody has acknowledged")) == 1  # acknowledged since

        await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.CLOSE, actor=ANN))
        heads_up = await eventually(lambda: _said(store, room.chat_id, "will be dismissed in 60 min"), timeout=30)
        assert len(heads_up) == 1
        await skip_env.sleep(timedelta(minutes=45))
        assert (await handle.query(IncidentWarRoom.view)).room.state is RoomState.ACTIVE
        assert len(_said(store, room.chat_id, "No update here")) == 2  # no reminder survives a close
        await skip_env.sleep(timedelta(minutes=20))
        view = await handle.result()  # dismissed: the run ends
        assert view.room.state is RoomState.DISMISSED and view.incident.status is IncidentStatus.CLOSED
        dismissed = await eventually(lambda: [e for e in store.timeline.list(incident.id)
                                              if e.kind == "room.dismissed"])  # fmt: skip
        assert dismissed[0].actor == "system"
        assert len(_kinds(store, incident.id, "reminder.dismissal")) == 1
    await im.aclose()


async def test_a_reopen_calls_the_dismissal_off(skip_env: WorkflowEnvironment, store: Store, settings: Settings):
    worker, im = build_worker(skip_env.client, store, settings)
    async with worker:
        svc = WarRoomService(skip_env.client, store, settings)
        incident, _ = await svc.upsert_incident(
            IncidentIn(title="Disk full", responders=[Responder(email=ANN)]), actor=ANN, source=Source.API
        )
        handle = svc.handle(incident.id)
        room = await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox"))
        await svc.set_policy(incident.id, RoomPolicy(rule="r", dismiss_after_close_minutes=30))
        await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.CLOSE, actor=ANN))
        await eventually(lambda: _said(store, room.chat_id, "will be dismissed in 30 min"), timeout=30)
        await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.REOPEN, actor=ANN))
        await skip_env.sleep(timedelta(minutes=40))
        view = await handle.query(IncidentWarRoom.view)
        assert view.room.state is RoomState.ACTIVE and view.incident.status is IncidentStatus.TRIGGERED
        assert not _said(store, room.chat_id, "Nobody has acknowledged")  # no nudge was asked for
    await im.aclose()


async def test_the_update_reminder_names_the_incident_lead(
    skip_env: WorkflowEnvironment, store: Store, settings: Settings
):
    """Roles are the incident's own (lead, scribe, comms): given from the console, the API or the
    CLI, each change in the timeline; the status-update reminder asks the lead by name."""
    worker, im = build_worker(skip_env.client, store, settings)
    async with worker:
        svc = WarRoomService(skip_env.client, store, settings)
        incident, _ = await svc.upsert_incident(
            IncidentIn(title="Payments slow", responders=[Responder(email=ANN)]), actor=ANN, source=Source.API
        )
        handle = svc.handle(incident.id)
        room = await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox"))
        await svc.set_policy(incident.id, RoomPolicy(rule="r", update_every_minutes=30))
        first = await svc.set_role(incident.id, Role.LEAD, "Bob Example", actor=ANN, source=Source.CLI)
        assert first.done and first.value == {"lead": "Bob Example"}
        now = await svc.set_role(incident.id, Role.LEAD, ANN, actor=ANN, source=Source.WEB)
        assert now.value == {"lead": ANN}
        assert (await svc.set_role(incident.id, Role.COMMS, "Cy", actor=ANN, source=Source.API)).value == {
            "lead": ANN,
            "comms": "Cy",
        }
        for hostile in ("<!channel>", "@here", "[x](https://evil.example)"):
            with pytest.raises(Conflict, match="by email or by name"):
                await svc.set_role(incident.id, Role.LEAD, hostile, actor=ANN, source=Source.API)
        await svc.set_role(incident.id, Role.COMMS, "", actor=ANN, source=Source.API)  # nobody now
        assert _kinds(store, incident.id, "role.assigned") == [
            "lead: Bob Example",
            f"lead: {ANN} (was Bob Example)",
            "comms: Cy",
            "comms: (none) (was Cy)",
        ]
        await skip_env.sleep(timedelta(minutes=31))
        [reminder] = await eventually(lambda: _said(store, room.chat_id, "No update here"), timeout=30)
        assert reminder.endswith(f"Incident lead: {ANN}.")
        # Its reminders keep their timers: skip_env terminates the workflow after the test.
    await im.aclose()
