"""The one path from the outside world (HTTP API, CLI, IM callbacks) into the workflows.

Incidents are written to the built-in source first and then sent to their workflow as a full
snapshot with signal-with-start, so nothing is lost when the workflow is not running yet.
Requests that need an answer (create room, dismiss, act) are updates-with-start: a finished
incident workflow is started again from the store's state when someone needs it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from starters.coalesce import Snapshot, SnapshotCoalescer
from warroom.ai import transcript
from warroom.enums import SOURCE_KINDS, Role
from warroom.errors import Conflict
from warroom.im.base import ActionClicked, InboundEvent, MessageReceived, RoomGone
from warroom.im.plugins import get_plugin, platform_names
from warroom.messages import (
    ActRequest,
    AiReviewResult,
    CreateRoomRequest,
    DismissRoomRequest,
    JoinRoomRequest,
    LinkProgress,
    LinkUsersInput,
    LinkUsersResult,
    PeopleLinkedSignal,
    Person,
    ReviewRequest,
    RoomActionSignal,
    RoomGoneSignal,
    RoomMessageSignal,
    RoomPolicy,
    RuleDecision,
    SetRoleRequest,
    SnapshotSignal,
    SourceDelivery,
    WarRoomConfig,
    WarRoomInput,
    WorkflowView,
    workflow_id,
)
from warroom.models import (
    Action,
    Incident,
    IncidentIn,
    IncidentStatus,
    MemberState,
    Responder,
    RoomState,
    Source,
    WarRoom,
)
from warroom.settings import Settings
from warroom.sources.rules import EMPTY as EMPTY_RULES
from warroom.sources.rules import RulesFile
from warroom.store import Store
from workflows.incident import (
    IM_PLATFORM,
    INCIDENT_ID,
    INCIDENT_SEVERITY,
    INCIDENT_STATUS,
    WAR_ROOM_STATE,
    IncidentWarRoom,
)
from workflows.link_users import LinkUsers

# How long an HTTP request waits for the workflow before answering 202 "still applying".
ANSWER_WITHIN_SECONDS = 15.0
# How long the answer of a 202 waits for the workflow's view before taking the store's.
QUERY_WITHIN = 0.5


T = TypeVar("T")


def streaming_platforms(settings: Settings) -> list[str]:
    """Where a model's answers stream into the room: a model is configured and streams
    (`WARROOM_AI_STREAM`), and the platform can edit our messages."""
    if not (settings.ai_model and settings.ai_stream):
        return []
    return [name for name in platform_names() if get_plugin(name).capabilities.edit_message]


class SharedRequests:
    """Requests for the same operation on an incident (open its room, dismiss it) share one
    update while it is unanswered: a client asking again, or many asking at once, add no second
    update. Temporal admits 10 unanswered updates per workflow, and each new one arriving with a
    workflow task that a lost worker left to retry has met an SDK bug (a nondeterminism error on
    replay; see the README's Reliability section). One per process, like the snapshot coalescer."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], asyncio.Future[Any]] = {}

    def get(self, key: tuple[str, str]) -> asyncio.Future[Any] | None:
        answer = self._answers.get(key)
        return answer if answer is not None and not answer.done() else None

    def add(self, key: tuple[str, str], answer: asyncio.Future[Any]) -> None:
        self._answers[key] = answer
        answer.add_done_callback(lambda a: self._answers.pop(key, None) if self._answers.get(key) is a else None)


@dataclass
class Answer(Generic[T]):
    value: T
    done: bool  # False: not answered within the wait, still being applied (HTTP 202)


class WarRoomService:
    def __init__(
        self,
        client: Client,
        store: Store,
        settings: Settings,
        *,
        wait: float = ANSWER_WITHIN_SECONDS,
        snapshots: SnapshotCoalescer | None = None,
        shared: SharedRequests | None = None,
        rules: RulesFile | None = None,
    ):
        self.client = client
        self.store = store
        self.settings = settings
        self.wait = wait
        self.snapshots = snapshots or SnapshotCoalescer()  # share one per process (the API does)
        self.shared = shared or SharedRequests()  # likewise
        self.rules = rules or EMPTY_RULES  # which incidents get a room on their own (the rules file)

    # ------------------------------------------------------------------ config
    def config(self) -> WarRoomConfig:
        return WarRoomConfig(
            public_url=self.settings.public_url,
            default_platform=self.settings.im_platform,
            snooze_choices_minutes=self.settings.snooze_choices_minutes,
            max_signals_per_run=self.settings.max_signals_per_run,
            remove_members=self.settings.remove_departed_members,
            ai_answers_per_minute=self.settings.ai_answers_per_minute,
            # Platforms bound to a region (WARROOM_PLATFORM_REGIONS) call their IM on `<queue>-<region>`.
            im_task_queues=self.settings.im_task_queues(),
            ai_stream_platforms=streaming_platforms(self.settings),
            ai_card_impact_platforms=[n for n in platform_names() if get_plugin(n).capabilities.card_impact],
        )

    def _start_input(
        self, incident: Incident, *, opened_by: str | None = None, source: Source = Source.API
    ) -> WarRoomInput:
        """The input of a first run; ignored by Temporal when the incident's workflow is running."""
        room, more = self.store.rooms.all_of(incident.id)
        return WarRoomInput(
            incident=incident,
            config=self.config(),
            room=room,
            more_rooms=more if room else [],  # none without a first
            last_seq=self.store.timeline.last_seq(incident.id),
            opened_by=opened_by,
            opened_source=source,
        )

    def _search_attributes(self, incident: Incident, room: WarRoom | None) -> TypedSearchAttributes:
        return TypedSearchAttributes(
            [
                SearchAttributePair(INCIDENT_ID, incident.id),
                SearchAttributePair(INCIDENT_STATUS, incident.status.value),
                SearchAttributePair(INCIDENT_SEVERITY, incident.severity.value),
                SearchAttributePair(WAR_ROOM_STATE, room.state.value if room else "none"),
                SearchAttributePair(IM_PLATFORM, room.platform if room else self.settings.im_platform),
            ]
        )

    # ------------------------------------------------------------------ incidents
    async def upsert_incident(
        self, body: IncidentIn, *, actor: str, source: Source, delivery: SourceDelivery | None = None
    ) -> tuple[Incident, bool]:
        """Store the incident and tell its workflow; `delivery` is the source's delivery behind it,
        for the timeline (shown even when it changed nothing)."""
        incident, created = await asyncio.to_thread(self.store.incidents.upsert, body, _now())
        deliveries = [delivery] if delivery else []
        await self._send_snapshot(incident, actor=actor, source=source, opened=created, deliveries=deliveries)
        return incident, created

    async def set_responders(
        self, incident_id: str, responders: list[Responder], *, actor: str, source: Source
    ) -> Incident:
        incident = await asyncio.to_thread(self.store.incidents.set_responders, incident_id, responders, _now())
        await self._send_snapshot(incident, actor=actor, source=source)
        return incident

    async def _send_snapshot(
        self,
        incident: Incident,
        *,
        actor: str,
        source: Source,
        opened: bool = False,
        deliveries: list[SourceDelivery] | None = None,
    ) -> None:
        await self.snapshots.send(Snapshot(incident, actor, source, opened, deliveries or []), self._deliver)

    async def _deliver(self, snap: Snapshot) -> None:
        """Signal-with-start: the first snapshot starts the incident's workflow."""
        opened_by = snap.actor if snap.opened else None
        inp = await asyncio.to_thread(self._start_input, snap.incident, opened_by=opened_by, source=snap.source)
        rule = await asyncio.to_thread(self._rule_for, snap.incident, snap.source) if self.rules.rules else None
        await self.client.start_workflow(
            IncidentWarRoom.run,
            inp,
            id=workflow_id(snap.incident.id),
            task_queue=self.settings.task_queue,
            start_signal="snapshot",
            start_signal_args=[
                SnapshotSignal(
                    incident=snap.incident, actor=snap.actor, source=snap.source, deliveries=snap.deliveries, rule=rule
                )
            ],
            search_attributes=self._search_attributes(snap.incident, inp.room),
        )

    def _rule_for(self, incident: Incident, source: Source) -> RuleDecision | None:
        """The first rule matching the incident as it is now. A rule's `source` is where the
        incident came from (its incident source, else where this change came from)."""
        origin = source.value
        if origin not in SOURCE_KINDS:
            link = self.store.sources.of_incident(incident.id)
            origin = link.source.partition(":")[0] if link else origin
        rule = self.rules.first_match(origin, incident)
        if rule is None:
            return None
        reminders = rule.reminders
        policy = RoomPolicy(
            rule=rule.name,
            unacknowledged_after_minutes=reminders.unacknowledged_after_minutes if reminders else None,
            update_every_minutes=reminders.update_every_minutes if reminders else None,
            dismiss_after_close_minutes=rule.dismiss_after_close_minutes,
            remove_departed=None if rule.room is None or rule.room.members is None else rule.room.members == "remove",
        )
        if rule.room is None:
            return RuleDecision(policy=policy)
        first, *also = rule.room.where(self.settings.im_platform)
        invite = self.rules.invitees(rule)
        return RuleDecision(policy=policy, room=first, also=also, invite=invite, name=rule.room.name or "")

    # ------------------------------------------------------------------ requests that need an answer
    async def _update(self, incident_id: str, update, arg, *, request_id: str | None, share: str | None = None):  # type: ignore[no-untyped-def]
        """Send `update` to the incident's workflow and wait (up to `self.wait`) for its answer.

        A running workflow gets it directly; only when none is running is it started from the
        store's state with the update (the store reads are on the path of every request
        otherwise: a few milliseconds of every acknowledge → card). With `share` (what makes two
        requests the same, beside the update: "" for none), a request while the same one is
        unanswered waits for that one's answer (`SharedRequests`)."""
        key = (incident_id, f"{update.__name__}:{share}")
        answer = self.shared.get(key) if share is not None else None
        if answer is None:
            update_id = request_id or str(uuid.uuid4())
            answer = asyncio.ensure_future(self._send(incident_id, update, arg, update_id))
            answer.add_done_callback(lambda a: a.cancelled() or a.exception())  # retrieved, if nobody waits
            if share is not None:
                self.shared.add(key, answer)
        try:
            return Answer(await asyncio.wait_for(asyncio.shield(answer), self.wait), True)
        except WorkflowUpdateFailedError as e:
            raise Conflict(_reason(e)) from e
        except TimeoutError:
            return Answer(None, False)

    async def _send(self, incident_id: str, update, arg, update_id: str):  # type: ignore[no-untyped-def]
        """The update's answer, asked for in the request that sends it: one round trip to
        Temporal when the workflow answers within the server's long poll (the SDK polls after).
        The caller bounds it by `self.wait`: a workflow task can take seconds to complete (it
        opens a room in a local activity first, or a worker is busy or lost), and a request is
        answered 202 then whatever holds it up (its update, sent, is answered all the same)."""
        try:
            handle = await self.handle(incident_id).start_update(
                update, arg, id=update_id, wait_for_stage=WorkflowUpdateStage.COMPLETED
            )
        except WorkflowUpdateFailedError as e:
            raise Conflict(_reason(e)) from e
        except RPCError as e:
            if e.status is not RPCStatusCode.NOT_FOUND:
                raise
            # Not running (never started, or finished): start it from the store with the update.
            handle = await self._start_with(incident_id, update, arg, update_id)
        return await handle.result()

    async def _start_with(self, incident_id: str, update, arg, update_id: str):  # type: ignore[no-untyped-def]
        incident = await asyncio.to_thread(self.store.incidents.get, incident_id)
        inp = await asyncio.to_thread(self._start_input, incident)
        op = WithStartWorkflowOperation(
            IncidentWarRoom.run,
            inp,
            id=workflow_id(incident_id),
            task_queue=self.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=self._search_attributes(incident, inp.room),
        )
        try:
            handle = await self.client.start_update_with_start_workflow(
                update,
                arg,
                start_workflow_operation=op,
                wait_for_stage=WorkflowUpdateStage.COMPLETED,
                id=update_id,
            )
        except WorkflowUpdateFailedError as e:
            raise Conflict(_reason(e)) from e
        return handle

    async def act(
        self,
        incident_id: str,
        action: Action,
        *,
        actor: str,
        source: Source,
        minutes: int | None = None,
        request_id: str | None = None,
    ) -> Answer[Incident]:
        out = await self._update(
            incident_id,
            IncidentWarRoom.act,
            ActRequest(action=action, actor=actor, source=source, minutes=minutes),
            request_id=request_id,
        )
        if not out.done:
            out.value = await asyncio.to_thread(self.store.incidents.get, incident_id)
        return out

    async def create_room(
        self, incident_id: str, *, platform: str | None, actor: str, source: Source
    ) -> Answer[WarRoom]:
        req = CreateRoomRequest(platform=platform or self.settings.im_platform, actor=actor, source=source)
        out = await self._update(incident_id, IncidentWarRoom.create_room, req, request_id=None, share=req.platform)
        if not out.done:
            out.value = await self.room_now(incident_id, req.platform)
        return out

    async def dismiss_room(self, incident_id: str, *, actor: str, source: Source) -> Answer[WarRoom]:
        req = DismissRoomRequest(actor=actor, source=source)
        out = await self._update(incident_id, IncidentWarRoom.dismiss_room, req, request_id=None, share="")
        if not out.done:
            out.value = await self.room_now(incident_id)
        return out

    async def join_room(self, incident_id: str, person: Responder, *, actor: str, source: Source) -> Answer[WarRoom]:
        """Add `person` to the room through the incident's workflow (platforms without a join link)."""
        req = JoinRoomRequest(person=person, actor=actor, source=source)
        out = await self._update(incident_id, IncidentWarRoom.join_room, req, request_id=None)
        if not out.done:
            out.value = await self.room_now(incident_id)
        return out

    async def set_role(
        self, incident_id: str, role: Role, person: str, *, actor: str, source: Source
    ) -> Answer[dict[str, str]]:
        """Give `role` to `person` (empty: nobody) through the incident's workflow, which records
        it; answered with every role as it now is."""
        req = SetRoleRequest(role=role, person=person, actor=actor, source=source)
        return await self._update(incident_id, IncidentWarRoom.set_role, req, request_id=None)

    async def generate_review(self, incident_id: str, *, actor: str, source: Source) -> Answer[AiReviewResult | None]:
        """(Re)generate the post-incident review through the incident's workflow (started again
        from the store when it has finished), so that it lands in the timeline as `ai.review`."""
        req = ReviewRequest(actor=actor, source=source)
        return await self._update(incident_id, IncidentWarRoom.review, req, request_id=None)

    async def room_now(self, incident_id: str, platform: str | None = None) -> WarRoom:
        """The room (on `platform`, else the first) as the workflow sees it this instant, falling
        back to the store's read model (also when the query is not answered within
        `QUERY_WITHIN`: a query waits for the workflow task in progress, which may be opening a
        room in a local activity)."""
        try:
            handle = self.client.get_workflow_handle(workflow_id(incident_id))
            view = await asyncio.wait_for(handle.query(IncidentWarRoom.view), QUERY_WITHIN)
            room = room_on(view.room, view.more_rooms, platform) if platform else view.room
        except (RPCError, TimeoutError):
            room = await asyncio.to_thread(self.stored_room, incident_id, platform)
        return room or WarRoom(platform=platform or self.settings.im_platform)

    def stored_room(self, incident_id: str, platform: str | None = None) -> WarRoom | None:
        """The room (on `platform`, else the first) as the rooms read model has it."""
        if not platform:
            return self.store.rooms.current(incident_id)
        first, more = self.store.rooms.all_of(incident_id)
        return first if first is None else room_on(first, more, platform)

    def handle(self, incident_id: str) -> WorkflowHandle[IncidentWarRoom, WorkflowView]:
        return self.client.get_workflow_handle_for(IncidentWarRoom.run, workflow_id(incident_id))

    # ------------------------------------------------------------------ IM callbacks
    async def dispatch(self, platform: str, events: list[InboundEvent]) -> list[str]:
        """Route verified events to their incident's workflow; returns what was not routable."""
        problems = []
        for event in events:
            incident_id = await asyncio.to_thread(self.store.rooms.incident_for_chat, platform, event.chat_id)
            if incident_id is None:
                problems.append(f"chat {event.chat_id} is not a war room")
                continue
            if isinstance(event, ActionClicked):
                await self.handle(incident_id).signal(
                    IncidentWarRoom.room_action,
                    RoomActionSignal(
                        event_id=f"{platform}:{event.event_id}",
                        platform=platform,
                        chat_id=event.chat_id,
                        im_user_id=event.im_user_id,
                        action=event.action,
                        minutes=event.minutes,
                        card_version=event.card_version,
                    ),
                )
            elif isinstance(event, MessageReceived):
                # The transcript first (the assistant's memory, also after the workflow is gone),
                # then the workflow: a mention is a question, any message may match a runbook.
                message = transcript.from_event(event, incident_id=incident_id, platform=platform, at=_now())
                await asyncio.to_thread(self.store.transcript.add, [message])
                await self.handle(incident_id).signal(
                    IncidentWarRoom.room_message,
                    RoomMessageSignal(
                        event_id=f"{platform}:{event.event_id}",
                        platform=platform,
                        chat_id=event.chat_id,
                        message_id=event.message_id,
                        im_user_id=event.im_user_id,
                        mentions_bot=event.mentions_bot,
                    ),
                )
            elif isinstance(event, RoomGone):
                await self.handle(incident_id).signal(
                    IncidentWarRoom.room_gone,
                    RoomGoneSignal(
                        event_id=f"{platform}:{event.event_id}",
                        platform=platform,
                        chat_id=event.chat_id,
                        im_user_id=event.im_user_id,
                    ),
                )
        return problems

    # ------------------------------------------------------------------ user linking
    async def link_users(self, platform: str | None = None) -> LinkUsersResult:
        """Resolve every responder of every open incident on `platform`, store the links, and have
        the open rooms invite whoever was found."""
        platform = platform or self.settings.im_platform
        workflow_id, people = await self.start_link_users(platform)
        return await self.link_users_done(platform, workflow_id, people)

    async def start_link_users(self, platform: str) -> tuple[str, list[Person]]:
        """Start One-click Link (`LinkUsers`) on `platform`: (its workflow id, the people it resolves)."""
        people: dict[str, Person] = {}
        cursor = None
        while True:
            page, cursor = await asyncio.to_thread(self.store.incidents.list, limit=200, cursor=cursor)
            for incident in page:
                if incident.status is IncidentStatus.CLOSED:
                    continue
                for r in incident.responders:
                    people.setdefault(r.contact, Person(responder_id=r.id, name=r.name, email=r.email, phone=r.phone))
            if not cursor:
                break
        workflow_id = f"link-users-{platform}-{uuid.uuid4().hex[:8]}"
        await self.client.start_workflow(
            LinkUsers.run,
            args=[LinkUsersInput(platform=platform, people=list(people.values())), self.config()],
            id=workflow_id,
            task_queue=self.settings.task_queue,
        )
        return workflow_id, list(people.values())

    async def link_users_done(self, platform: str, workflow_id: str, people: list[Person]) -> LinkUsersResult:
        """Wait for a One-click Link, then have the open rooms invite whoever it found."""
        result: LinkUsersResult = await self.client.get_workflow_handle(
            workflow_id, result_type=LinkUsersResult
        ).result()
        by_id = {p.responder_id: p for p in people}
        found = [by_id[o.responder_id] for o in result.linked if o.responder_id in by_id]
        await self.people_linked(platform, [c for p in found for c in (p.email, p.phone) if c])
        return result

    async def link_progress(self, workflow_id: str) -> tuple[LinkProgress | None, LinkUsersResult | None]:
        """(how far a One-click Link got while it runs, its result once done); (None, None) when
        there is no such run."""
        handle = self.client.get_workflow_handle(workflow_id, result_type=LinkUsersResult)
        try:
            desc = await handle.describe()
        except RPCError as e:
            if e.status is RPCStatusCode.NOT_FOUND:
                return None, None
            raise
        if desc.status == WorkflowExecutionStatus.COMPLETED:
            return None, await handle.result()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            raise Conflict(f"One-click Link {workflow_id} ended without a result ({desc.status.name.lower()})")
        progress = LinkProgress()
        for pending in desc.raw_description.pending_activities:
            if pending.heartbeat_details.payloads:
                (progress,) = await self.client.data_converter.decode(
                    pending.heartbeat_details.payloads, [LinkProgress]
                )
        return progress, None

    async def set_policy(self, incident_id: str, policy: RoomPolicy) -> None:
        """Hand the incident's workflow the reminders and dismissal its rule asks for (a run that
        ended has nothing left to remind)."""
        try:
            await self.handle(incident_id).signal(IncidentWarRoom.set_policy, policy)
        except RPCError as e:
            if e.status is not RPCStatusCode.NOT_FOUND:
                raise

    async def people_linked(self, platform: str, contacts: list[str]) -> int:
        """Tell every open incident whose room on `platform` has one of these people unlinked, so
        it invites them now; returns how many incidents were told."""
        wanted = {c.lower() for c in contacts if c}
        told = 0
        for incident_id, matched in await asyncio.to_thread(self._waiting_for, platform, wanted):
            try:
                signal = PeopleLinkedSignal(platform=platform, contacts=matched)
                await self.handle(incident_id).signal(IncidentWarRoom.people_linked, signal)
                told += 1
            except RPCError as e:
                if e.status is not RPCStatusCode.NOT_FOUND:
                    raise  # the incident's run ended meanwhile: nobody left to invite
        return told

    def _waiting_for(self, platform: str, wanted: set[str]) -> list[tuple[str, list[str]]]:
        """(incident id, the wanted contacts unlinked in its room) for every open incident."""
        out: list[tuple[str, list[str]]] = []
        cursor = None
        while wanted:
            page, cursor = self.store.incidents.list(limit=200, cursor=cursor)
            open_ids = [i.id for i in page if i.status is not IncidentStatus.CLOSED]
            first, more = self.store.rooms.current_many(open_ids), self.store.rooms.more_many(open_ids)
            for incident_id in open_ids:
                rooms = [r for r in (first.get(incident_id), *more.get(incident_id, [])) if r is not None]
                room = next((r for r in rooms if r.platform == platform and r.state is RoomState.ACTIVE), None)
                if room is None:
                    continue
                unlinked = [m for m in room.members if m.state is MemberState.UNLINKED]
                matched = sorted({c for m in unlinked for c in ((m.email or "").lower(), m.phone or "")} & wanted)
                if matched:
                    out.append((incident_id, matched))
            if not cursor:
                break
        return out


def _now() -> datetime:
    return datetime.now(UTC)


def _reason(e: WorkflowUpdateFailedError) -> str:
    cause = e.cause
    while getattr(cause, "cause", None) is not None:
        cause = cause.cause  # type: ignore[union-attr]
    return str(getattr(cause, "message", None) or cause or e)


def room_on(first: WarRoom | None, more: list[WarRoom], platform: str) -> WarRoom | None:
    """Which of an incident's rooms a request for a room on `platform` is about: the first room
    when it is on that platform or not up (a new first room would be opened), else the incident's
    other room there (None: there is none yet)."""
    if first is None or first.platform == platform or first.state not in (RoomState.ACTIVE, RoomState.CREATING):
        return first
    return next((r for r in more if r.platform == platform), None)
