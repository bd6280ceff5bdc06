"""Record workflow histories for the replay test (tests/test_replay.py).

Run after a workflow change (behind `workflow.patched`) to add the new shapes of history, under a
new name so that the recordings of the older shapes stay:

    .venv/bin/python -m tests.histories.record --as <change-id> [scenario ...]

Each scenario runs on the time-skipping test server (so snooze timers fire at once) with a real
worker, the sandbox IM and a throwaway SQLite store, and writes `<scenario>[-<change-id>].json`
next to this file (with `-<n>` for the runs it continued as new into). An existing recording is
never replaced: it proves that runs of its shape still replay. Together the scenarios take every
path of the workflow: the room (opened, members, card), actions (applied, refused from the room
and from the API), a snooze that expires, the assistant (answers, impact, runbooks, reviews),
continue-as-new with work handed over, dismissal, a room removed by hand and opened again, roles
given from the room, rooms on two platforms for one incident, and a source refusing an action.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from starters.service import WarRoomService
from tests.fakes.openai_api import API_KEY, MODEL, FakeOpenAI, running_fake_openai
from tests.fakes.slack_api import SIGNING_SECRET as SLACK_SIGNING
from tests.fakes.slack_api import TOKEN as SLACK_TOKEN
from tests.fakes.slack_api import running_fake_slack
from warroom.enums import Role
from warroom.im.base import ActionClicked, MessageReceived, RoomGone
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
    SourceDelivery,
)
from warroom.models import Action, Alert, IncidentIn, IncidentStatus, Responder, Severity, Source
from warroom.settings import Settings
from warroom.sources.rules import Match, Reminders, RoomChoice, Rule, RulesFile
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


async def ai_streamed(env: WorkflowEnvironment, svc: WarRoomService) -> list[WorkflowHandle]:
    """With a model that streams (the fake OpenAI server): questions answered by streaming into
    a "thinking…" message edited in place, a bare command, close and dismissal."""
    body = IncidentIn(
        title="Checkout returns 500 errors after the deploy",
        responders=[Responder(email=ANN)],
        labels={"service": "checkout", "region": "eu-west-1"},
    )
    incident, _ = await svc.upsert_incident(body, actor=ANN, source=Source.API)
    handle = svc.handle(incident.id)
    room = await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox", actor=ANN))
    chat = room.chat_id or ""
    sandbox = SandboxPlatform(svc.store.db)
    ann = sandbox.lookup_user(email=ANN, phone=None, now=datetime.now(UTC))
    for n, text in enumerate(("@warroom what changed before it started?", "@warroom impact", "@warroom more")):
        mid = str(sandbox.post(chat, author=ann, text=text, key=None, now=datetime.now(UTC)))
        event = MessageReceived(
            event_id=f"msg-{mid}", chat_id=chat, message_id=mid, im_user_id=ann, text=text, mentions_bot=True
        )
        assert await svc.dispatch("sandbox", [event]) == []
        while len([e for e in svc.store.timeline.list(incident.id) if e.kind in ("ai.answer", "ai.impact")]) < n + 2:
            await asyncio.sleep(0.05)
    await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.CLOSE, actor=ANN))
    await handle.execute_update(IncidentWarRoom.dismiss_room, DismissRoomRequest(actor=ANN))
    await handle.result()
    return [handle]


async def room_gone(env: WorkflowEnvironment, svc: WarRoomService) -> list[WorkflowHandle]:
    """A room removed by hand on the platform (the workflow ends with it), then a second room for
    the same incident (a new workflow, started with the update), an action the API asks for that
    is refused, a responder taken off the incident, close, dismissal."""
    incident, _ = await svc.upsert_incident(
        IncidentIn(title="Search latency", responders=[Responder(email=ANN), Responder(email=BOB)]),
        actor=ANN,
        source=Source.API,
    )
    handle = svc.handle(incident.id)
    first = await handle.describe()
    room = await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox", actor=ANN))
    sandbox = SandboxPlatform(svc.store.db)
    ann = sandbox.lookup_user(email=ANN, phone=None, now=datetime.now(UTC))
    sandbox.dismiss_room(room.chat_id or "", datetime.now(UTC))
    gone = RoomGone(event_id="gone-1", chat_id=room.chat_id or "", im_user_id=ann)
    assert await svc.dispatch("sandbox", [gone]) == []
    await handle.result()
    again = await svc.create_room(incident.id, platform="sandbox", actor=ANN, source=Source.API)
    assert again.done and again.value is not None and again.value.generation == 2
    second = await handle.describe()
    try:
        await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.REOPEN, actor=ANN))
        raise AssertionError("an open incident cannot be reopened")
    except WorkflowUpdateFailedError:
        pass
    await svc.set_responders(incident.id, [Responder(email=ANN)], actor=ANN, source=Source.API)
    await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.CLOSE, actor=ANN))
    await handle.execute_update(IncidentWarRoom.dismiss_room, DismissRoomRequest(actor=ANN))
    await handle.result()
    return [svc.client.get_workflow_handle(handle.id, run_id=r.run_id) for r in (first, second)]


async def join(env: WorkflowEnvironment, svc: WarRoomService) -> list[WorkflowHandle]:
    """Someone asks to be added to the room (View War Room where the platform has no link), once
    more (the same member), someone the platform does not know; then close and dismissal."""
    incident, _ = await svc.upsert_incident(
        IncidentIn(title="Queue backlog", responders=[Responder(email=ANN)]), actor=ANN, source=Source.API
    )
    await svc.create_room(incident.id, platform="sandbox", actor=ANN, source=Source.API)
    for email in (BOB, BOB, "nobody@unknown.invalid"):
        out = await svc.join_room(incident.id, Responder(email=email), actor=email, source=Source.API)
        assert out.done, out
    handle = svc.handle(incident.id)
    await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.CLOSE, actor=ANN))
    await handle.execute_update(IncidentWarRoom.dismiss_room, DismissRoomRequest(actor=ANN))
    await handle.result()
    return [handle]


async def handover(env: WorkflowEnvironment, svc: WarRoomService) -> list[WorkflowHandle]:
    """Continue-as-new in the middle of a burst of clicks and mentions: what is still waiting
    (clicks, questions, timeline entries, our posts for the transcript) travels in the carried
    state and is done by the next run; then close and dismissal."""
    svc.settings.max_signals_per_run = 10
    incident, _ = await svc.upsert_incident(
        IncidentIn(title="Payments timeouts", responders=[Responder(email=ANN), Responder(email=BOB)]),
        actor=ANN,
        source=Source.API,
    )
    handle = svc.handle(incident.id)
    first = await handle.describe()
    room = await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox", actor=ANN))
    chat = room.chat_id or ""
    sandbox = SandboxPlatform(svc.store.db)
    ann = sandbox.lookup_user(email=ANN, phone=None, now=datetime.now(UTC))
    bob = sandbox.lookup_user(email=BOB, phone=None, now=datetime.now(UTC))

    def mention(n: int) -> MessageReceived:
        text = f"@warroom what changed in payments? ({n})"
        mid = str(sandbox.post(chat, author=bob, text=text, key=None, now=datetime.now(UTC)))
        return MessageReceived(
            event_id=f"msg-{mid}", chat_id=chat, message_id=mid, im_user_id=bob, text=text, mentions_bot=True
        )

    def click(n: int, action: Action) -> ActionClicked:
        minutes = 30 if action is Action.SNOOZE else None
        return ActionClicked(event_id=f"click-{n}", chat_id=chat, im_user_id=ann, action=action, minutes=minutes)

    burst = [[click(n, Action.ACKNOWLEDGE if n % 2 else Action.SNOOZE), mention(n)] for n in range(12)]
    await asyncio.gather(*(svc.dispatch("sandbox", events) for events in burst))
    while (await handle.query(IncidentWarRoom.view)).runs < 2:
        await asyncio.sleep(0.05)
    await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.CLOSE, actor=ANN))
    await handle.execute_update(IncidentWarRoom.dismiss_room, DismissRoomRequest(actor=ANN))
    await handle.result()
    return await _runs(svc, handle.id, first.run_id or "")


async def source_life(env: WorkflowEnvironment, svc: WarRoomService) -> list[WorkflowHandle]:
    """An incident from Alertmanager: deliveries that create it, change nothing, are sent twice,
    or arrive together (coalesced), then resolve it; each one a `source.alertmanager` entry."""
    am = Source("alertmanager")
    body = IncidentIn(
        id="am-recorded", title="Checkout 5xx", severity=Severity.CRITICAL, responders=[Responder(email=ANN)]
    )
    incident, _ = await svc.upsert_incident(
        body, actor="alertmanager", source=am, delivery=SourceDelivery(key="d1", summary="firing: 1 firing, 0 resolved")
    )
    handle = svc.handle(incident.id)
    await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox", actor="system"))
    same = SnapshotSignal(
        incident=incident,
        actor="alertmanager",
        source=am,
        deliveries=[SourceDelivery(key="d2", summary="firing: 1 firing, 0 resolved")],
    )
    await handle.signal(IncidentWarRoom.snapshot, same)
    await handle.signal(IncidentWarRoom.snapshot, same)  # sent again: recorded once
    closed = incident.model_copy(update={"version": incident.version + 1, "status": IncidentStatus.CLOSED})
    both = [
        SourceDelivery(key="d3", summary="firing: 2 firing, 0 resolved"),
        SourceDelivery(key="d4", summary="resolved"),
    ]
    await handle.signal(
        IncidentWarRoom.snapshot, SnapshotSignal(incident=closed, actor="alertmanager", source=am, deliveries=both)
    )
    await handle.execute_update(IncidentWarRoom.dismiss_room, DismissRoomRequest(actor=ANN))
    await handle.result()
    return [handle]


async def rule_life(env: WorkflowEnvironment, svc: WarRoomService) -> list[WorkflowHandle]:
    """Rules on every snapshot: no room while the incident is low; raised, the rule's room opens
    with its extra person; nobody acknowledges (a nudge); closed, the room is dismissed later."""
    svc.rules = RulesFile(
        rules=[
            Rule(
                name="high gets a room",
                match=Match(severity_at_least=Severity.HIGH),
                room=RoomChoice(platform="sandbox", invite=[BOB]),
                reminders=Reminders(unacknowledged_after_minutes=5),
                dismiss_after_close_minutes=10,
            )
        ]
    )
    body = IncidentIn(
        id="rule-recorded", title="Disk filling", severity=Severity.LOW, responders=[Responder(email=ANN)]
    )
    incident, _ = await svc.upsert_incident(body, actor=ANN, source=Source.API)
    handle = svc.handle(incident.id)
    raised = body.model_copy(update={"severity": Severity.CRITICAL})
    await svc.upsert_incident(raised, actor=ANN, source=Source.API)
    while (await handle.query(IncidentWarRoom.view)).room.state.value != "active":
        await asyncio.sleep(0.05)
    await env.sleep(timedelta(minutes=6))
    await svc.upsert_incident(raised.model_copy(update={"status": IncidentStatus.CLOSED}), actor=ANN, source=Source.API)
    await env.sleep(timedelta(minutes=11))
    await handle.result()
    return [handle]


async def source_refused(env: WorkflowEnvironment, svc: WarRoomService) -> list[WorkflowHandle]:
    """A PagerDuty incident acted on while War Room cannot reach PagerDuty (no API token): the
    acknowledge is refused (from the API and from the room) and nothing changes; then PagerDuty
    resolves it and the room is dismissed."""
    pd = Source("pagerduty")
    body = IncidentIn(id="pd-recorded", title="Login errors", severity=Severity.HIGH, responders=[Responder(email=ANN)])
    incident, _ = await svc.upsert_incident(
        body, actor="pagerduty", source=pd, delivery=SourceDelivery(key="w1", summary="incident.triggered")
    )
    now = datetime.now(UTC)
    svc.store.sources.claim("pagerduty", "w1", "PRECORD", incident.id, now, "https://pd.example/PRECORD", now)
    handle = svc.handle(incident.id)
    room = await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox", actor=ANN))
    with contextlib.suppress(WorkflowUpdateFailedError):
        await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.ACKNOWLEDGE, actor=ANN))
    ann = SandboxPlatform(svc.store.db).lookup_user(email=ANN, phone=None, now=now)
    click = RoomActionSignal(
        event_id="pd-click", platform="sandbox", chat_id=room.chat_id or "", im_user_id=ann, action=Action.ACKNOWLEDGE
    )
    await handle.signal(IncidentWarRoom.room_action, click)
    resolved = incident.model_copy(update={"version": incident.version + 1, "status": IncidentStatus.CLOSED})
    await handle.signal(
        IncidentWarRoom.snapshot,
        SnapshotSignal(
            incident=resolved, actor="pagerduty", source=pd,
            deliveries=[SourceDelivery(key="w2", summary="incident.resolved")],
        ),
    )  # fmt: skip
    await handle.execute_update(IncidentWarRoom.dismiss_room, DismissRoomRequest(actor=ANN))
    await handle.result()
    return [handle]


async def several_rooms(env: WorkflowEnvironment, svc: WarRoomService) -> list[WorkflowHandle]:
    """A sandbox room and a Slack room for one incident: both opened, a click in the Slack room,
    a responder added to both, a reminder posted in both, closed and both dismissed."""
    svc.rules = RulesFile(
        rules=[
            Rule(
                name="every incident in both",
                room=RoomChoice(platforms=["sandbox", "slack"]),
                reminders=Reminders(update_every_minutes=30),
            )
        ]
    )
    body = IncidentIn(id="rooms-recorded", title="Queue backlog", responders=[Responder(email=ANN)])
    incident, _ = await svc.upsert_incident(body, actor=ANN, source=Source.API)
    handle = svc.handle(incident.id)

    async def up() -> list:
        view = await handle.query(IncidentWarRoom.view)
        return [r for r in (view.room, *view.more_rooms) if r.state.value == "active" and r.card_handle]

    while len(rooms := await up()) < 2:
        await asyncio.sleep(0.05)
    slack = rooms[1]
    ann = next(m.im_user_id for m in slack.members if m.email == ANN)
    await handle.signal(
        IncidentWarRoom.room_action,
        RoomActionSignal(
            event_id="slack-click-1", platform="slack", chat_id=slack.chat_id or "", im_user_id=ann or "",
            action=Action.ACKNOWLEDGE,
        ),
    )  # fmt: skip
    await svc.set_responders(incident.id, [Responder(email=ANN), Responder(email=BOB)], actor=ANN, source=Source.API)
    await env.sleep(timedelta(minutes=31))
    await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.CLOSE, actor=ANN))
    await handle.execute_update(IncidentWarRoom.dismiss_room, DismissRoomRequest(actor=ANN))
    await handle.result()
    return [handle]


async def roles_room(env: WorkflowEnvironment, svc: WarRoomService) -> list[WorkflowHandle]:
    """Roles given from the room (patch roles-from-room): `lead me`, a scribe by name, a holder
    that could ping (refused), someone who is no linked responder (refused, told alone), who holds
    the lead, a role given through the update beside them; then close and dismissal."""
    incident, _ = await svc.upsert_incident(
        IncidentIn(title="Cache misses", responders=[Responder(email=ANN), Responder(email=BOB)]),
        actor=ANN,
        source=Source.API,
    )
    handle = svc.handle(incident.id)
    room = await handle.execute_update(IncidentWarRoom.create_room, CreateRoomRequest(platform="sandbox", actor=ANN))
    chat = room.chat_id or ""
    sandbox = SandboxPlatform(svc.store.db)
    ann = sandbox.lookup_user(email=ANN, phone=None, now=datetime.now(UTC))
    bob = sandbox.lookup_user(email=BOB, phone=None, now=datetime.now(UTC))
    eve = sandbox.lookup_user(email="eve@example.com", phone=None, now=datetime.now(UTC))
    for user, text in (
        (ann, "@warroom lead me"),
        (bob, "@warroom scribe Bob Example"),
        (ann, "@warroom comms <!here>"),
        (eve, "@warroom lead me"),
        (bob, "@warroom lead"),
    ):
        mid = str(sandbox.post(chat, author=user, text=text, key=None, now=datetime.now(UTC)))
        event = MessageReceived(
            event_id=f"msg-{mid}", chat_id=chat, message_id=mid, im_user_id=user, text=text, mentions_bot=True
        )
        assert await svc.dispatch("sandbox", [event]) == []
    while not [m for m in sandbox.messages(chat) if "Give it with" in (m.text or "")]:
        await asyncio.sleep(0.05)
    await svc.set_role(incident.id, Role.COMMS, "Cy", actor=ANN, source=Source.API)
    await handle.execute_update(IncidentWarRoom.act, ActRequest(action=Action.CLOSE, actor=ANN))
    await handle.execute_update(IncidentWarRoom.dismiss_room, DismissRoomRequest(actor=ANN))
    await handle.result()
    return [handle]


async def _runs(svc: WarRoomService, workflow_id: str, run_id: str) -> list[WorkflowHandle]:
    """Every run of a workflow from `run_id` on, following its continue-as-new chain."""
    handles = []
    while run_id:
        handle = svc.client.get_workflow_handle(workflow_id, run_id=run_id)
        handles.append(handle)
        last = (await handle.fetch_history()).events[-1]
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return handles


MODEL_SCENARIOS = {"ai_streamed"}  # recorded with a model (the fake OpenAI server) that streams
SLACK_SCENARIOS = {"several_rooms"}  # recorded with Slack (the fake Slack Web API) beside the sandbox
SCENARIOS: dict[str, Scenario] = {
    "full_life": full_life,
    "continue_as_new": continue_as_new,
    "link_users": link_users,
    "ai_life": ai_life,
    "ai_streamed": ai_streamed,
    "room_gone": room_gone,
    "handover": handover,
    "join": join,
    "source_life": source_life,
    "rule_life": rule_life,
    "several_rooms": several_rooms,
    "source_refused": source_refused,
    "roles_room": roles_room,
}


async def record(names: list[str], suffix: str = "") -> None:
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
            async with contextlib.AsyncExitStack() as stack:
                with tempfile.TemporaryDirectory() as tmp:
                    extra_env: dict[str, object] = {}
                    if name in MODEL_SCENARIOS:
                        fake = await stack.enter_async_context(running_fake_openai(FakeOpenAI(chunk_delay=0.02)))
                        extra_env = {
                            "OPENAI_BASE_URL": fake.url,
                            "OPENAI_API_KEY": API_KEY,
                            "WARROOM_AI_MODEL": MODEL,
                            "WARROOM_AI_STREAM": True,
                        }
                    if name in SLACK_SCENARIOS:
                        slack = await stack.enter_async_context(running_fake_slack())
                        for email, who in ((ANN, "Ann"), (BOB, "Bob")):
                            slack.add_user(email, who)
                        extra_env = {"SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_SIGNING_SECRET": SLACK_SIGNING,
                                 "SLACK_API_BASE_URL": slack.url}  # fmt: skip
                    settings = Settings(
                        WARROOM_DATABASE_URL=f"sqlite:///{tmp}/record.db",
                        WARROOM_TASK_QUEUE=f"record-{uuid.uuid4().hex[:8]}",
                        WARROOM_SANDBOX_SIGNING_SECRET="record",
                        _env_file=None,
                        **extra_env,  # type: ignore[arg-type]
                    )
                    store = Store(settings.database_url)
                    worker, im = build_worker(env.client, store, settings)
                    async with worker:
                        handles = await SCENARIOS[name](env, WarRoomService(env.client, store, settings))
                        for n, handle in enumerate(handles):
                            history = await handle.fetch_history()
                            stem = f"{name}-{suffix}" if suffix else name
                            path = HERE / (f"{stem}.json" if n == 0 else f"{stem}-{n}.json")
                            if path.exists():
                                raise SystemExit(f"{path.name} exists: record the new shape with --as <change-id>")
                            path.write_text(history.to_json())
                            print(f"{path.name}: {len(history.events)} events")
                    await im.aclose()
                    store.close()
    finally:
        await env.shutdown()


if __name__ == "__main__":
    args = sys.argv[1:]
    suffix = ""
    if "--as" in args:
        at = args.index("--as")
        suffix, args = args[at + 1], args[:at] + args[at + 2 :]
    asyncio.run(record(args or list(SCENARIOS), suffix))
