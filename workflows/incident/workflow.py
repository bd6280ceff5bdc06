"""IncidentWarRoom: one long-lived workflow per incident, level-triggered.

Handlers only record intent (a newer snapshot, a wanted room, an action to apply) and wake the
main loop; the main loop alone calls activities, in order, comparing the desired state with the
actual one. A burst of ten status changes during a slow card update therefore costs one more
update, and the history reads as an ordered audit trail. Each part of the story has its module:
the action queue (`actions`), the snooze timer (`snooze`), the incident's rooms (`rooms`: its first
and one on each other platform asked for, each a reconciler, `room`, with its `members` and
`card`), the roles (`roles`), the reminders (`reminders`), the assistant (`assistant`) and the
timeline recorder (`timeline`).

History baseline 1.0: no shape older than it is kept. Every change since to the commands this
workflow issues is behind a patch, asked for through `patches.patched` (a run started since the
bundle records one marker for all the changes it gathers), and the recordings in
tests/histories/ stay.
"""

from __future__ import annotations

from typing import NoReturn

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.incident.actions import ActionQueue
from workflows.incident.assistant import Assistant
from workflows.incident.patches import patched
from workflows.incident.reminders import Reminders
from workflows.incident.roles import RoleBook
from workflows.incident.rooms import Rooms
from workflows.incident.search import SearchAttributes
from workflows.incident.snapshot import take_snapshot
from workflows.incident.snooze import SnoozeTimer
from workflows.incident.timeline import TimelineRecorder

with workflow.unsafe.imports_passed_through():
    from warroom.enums import SOURCE_KINDS, TimelineKind
    from warroom.messages import (
        WORKFLOW_TYPE,
        ActRequest,
        AiReviewResult,
        CarriedState,
        CreateRoomRequest,
        DismissRoomRequest,
        JoinRoomRequest,
        PeopleLinkedSignal,
        ReviewRequest,
        RoomActionSignal,
        RoomGoneSignal,
        RoomMessageSignal,
        RoomPolicy,
        RoomSlot,
        RuleDecision,
        SetRoleRequest,
        SnapshotSignal,
        WarRoomInput,
        WorkflowView,
    )
    from warroom.models import Action, Incident, IncidentStatus, Responder, RoomState, WarRoom
    from warroom.names import REFUSED, REVIEW_FAILED
    from warroom.roles import checked_role_holder

HISTORY_EVENTS_PER_RUN = 3500  # continue as new from here on
SEEN_KEEP = 1000  # dedup window for event and update ids carried across continue-as-new


@workflow.defn(name=WORKFLOW_TYPE)
class IncidentWarRoom:
    @workflow.init
    def __init__(self, inp: WarRoomInput) -> None:
        self.cfg = inp.config
        if inp.state is not None:
            self.s = inp.state  # continued-as-new: everything carried over
        else:
            room = inp.room or WarRoom(platform=self.cfg.default_platform)
            self.s = CarriedState(
                incident=inp.incident,
                room=room,
                room_wanted=room.state in (RoomState.ACTIVE, RoomState.CREATING),
                seq=inp.last_seq,
                # started again from the store: the other rooms still up are kept
                more_rooms=[RoomSlot(room=r, room_wanted=True) for r in inp.more_rooms if r.state is RoomState.ACTIVE],
            )
        self._messages_this_run = 0
        self._handing_over = False  # continue-as-new is due: the run ends once every handler is answered
        self.timeline = TimelineRecorder(self.s)
        self.search = SearchAttributes(self.s)
        self.rooms = Rooms(self.s, self.cfg, self.timeline, self.search)
        first = self.rooms.first
        self.actions = ActionQueue(self.s, self.timeline, self.rooms)
        self.snooze = SnoozeTimer(self.s, self.timeline)
        self.roles = RoleBook(self.s, self.timeline, first.chat)
        self.assistant = Assistant(self.s, self.cfg, self.timeline, first.card, first.chat, self.roles)
        self.reminders = Reminders(self.s, self.timeline, self.rooms)
        if inp.state is None and inp.opened_by is not None:
            i = inp.incident
            detail = f"opened: [{i.severity.value}] {i.title} ({i.status.value})"
            self.timeline.log(TimelineKind.INCIDENT_CREATED, inp.opened_by, inp.opened_source, detail)

    # ---------------------------------------------------------------- the story
    @workflow.run
    async def run(self, inp: WarRoomInput) -> WorkflowView:
        """One pass of the incident's story each time something happens; the timeline is written
        beside it, so nothing in it waits for the audit trail."""
        self.timeline.start()
        self.search.upsert()
        while True:
            await self._something_to_do()
            self.timeline.raise_if_failed()
            await self.actions.apply_pending()  # what people did, in order
            if self.snooze.due():
                await self.snooze.end()  # a snooze that is over ends at the source
            await self.rooms.reconcile(hold_dismissal=self.assistant.busy)  # first: people wait on the room
            await self.assistant.catch_up()
            await self.reminders.catch_up()  # a nudge, a status-update reminder, a dismissal by rule
            self.search.upsert()
            if self._over():
                break
            if self._time_to_continue_as_new():
                await self._hand_over()
        await self.timeline.all_recorded()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self.timeline.all_recorded()
        return self.view()

    async def _something_to_do(self) -> None:
        if self._handing_over:  # no new timer: the run ends as soon as every handler is answered
            await workflow.wait_condition(lambda: self._pending_work() or workflow.all_handlers_finished())
        else:
            planned = self.reminders.next_at()
            # A reminder that became due sooner than the timer (a policy set or changed while
            # idle) ends the wait, so its timer is set then rather than at the next event.
            replan = patched("reminders-replan")
            await self.snooze.wait(
                lambda: self._has_work() or (replan and self.reminders.sooner_than(planned)),
                also_until=planned,
            )

    def _has_work(self) -> bool:
        done = self._finished() and workflow.all_handlers_finished()
        return self._pending_work() or done or self._should_continue_as_new()

    def _pending_work(self) -> bool:
        """Something for a pass to do; it becomes false once the pass has done it."""
        return (
            self.actions.waiting()
            or self.timeline.failed()  # the pass raises its error
            or self.snooze.due()
            or self.rooms.needs_work()
            or self.assistant.pending()
            or self.reminders.due()
        )

    def _finished(self) -> bool:
        if self.assistant.busy() or self.actions.waiting() or self.rooms.opening():
            return False
        if not self.rooms.none_left():
            return False
        return self.s.room.state is RoomState.DISMISSED or self.s.incident.status is IncidentStatus.CLOSED

    def _over(self) -> bool:
        return not self._handing_over and self._finished() and workflow.all_handlers_finished()

    def _should_continue_as_new(self) -> bool:
        """Before the server suggests it (4096 events by default), so no run outgrows that: the
        handover itself takes a few events more."""
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= HISTORY_EVENTS_PER_RUN
            or self._messages_this_run >= self.cfg.max_signals_per_run
        )

    def _time_to_continue_as_new(self) -> bool:
        """Once continue-as-new is due, the run keeps going until every handler has its answer (a
        create-room update waits for the room); what is still to do then travels in the carried
        state, so a steady stream of signals cannot keep the run from ending."""
        self._handing_over = self._handing_over or self._should_continue_as_new()
        return self._handing_over and workflow.all_handlers_finished()

    async def _hand_over(self) -> NoReturn:
        await self.timeline.hand_over()
        self.s.clicks = self.actions.clicks()
        self.assistant.hand_over()
        self.s.runs += 1
        workflow.continue_as_new(WarRoomInput(incident=self.s.incident, config=self.cfg, state=self.s))

    # ---------------------------------------------------------------- signals
    @workflow.signal
    def snapshot(self, sig: SnapshotSignal) -> None:
        """A full incident snapshot from the source; only a newer version changes anything."""
        self._messages_this_run += 1
        deliveries = None
        if sig.deliveries and sig.source in SOURCE_KINDS and patched("source-timeline"):
            # every delivery once, though a snapshot signal may be sent again
            deliveries = [d for d in sig.deliveries if not self._seen("delivery:" + d.key)]
        take_snapshot(self.s, self.timeline, sig.incident, sig.actor, sig.source, deliveries=deliveries)
        current = sig.incident.version == self.s.incident.version  # not overtaken by a newer one
        if sig.rule is not None and current and patched("rules-in-snapshot"):
            self._follow(sig.rule)

    def _follow(self, rule: RuleDecision) -> None:
        """What the matching rule asks: its reminders, its extra people, and its rooms while the
        incident is open and has none there (the first, or one after a reopen)."""
        self.reminders.set_policy(rule.policy)
        self.s.room_name = rule.name
        no_room = (RoomState.NONE, RoomState.FAILED, RoomState.DISMISSED)
        if self.s.incident.status is not IncidentStatus.CLOSED:
            if rule.room and self.s.room.state in no_room:
                self.rooms.ask_for(rule.room)
            for platform in rule.also:
                if platform == self.s.room.platform and self.s.room.state not in no_room:
                    continue  # that one is the first room
                there = self.rooms.on(platform)
                if (there is None or there.state in no_room) and self.rooms.can_add(platform) is None:
                    self.rooms.ask_for(platform)
        for email in rule.invite:
            for room in self.rooms.all():
                room.members.add_guest(Responder(email=email))

    @workflow.signal
    def room_action(self, sig: RoomActionSignal) -> None:
        """A verified button click; authorization happens in the main loop, in order."""
        self._messages_this_run += 1
        if not self._seen(sig.event_id):
            self.actions.click(sig)
            self.reminders.heard()

    @workflow.signal
    def room_gone(self, sig: RoomGoneSignal) -> None:
        """Someone disbanded or archived the room by hand: record it; a new room can be requested."""
        self._messages_this_run += 1
        # Not an older generation's room, nor one already gone.
        current = self.rooms.of(sig.platform, sig.chat_id, RoomState.ACTIVE, RoomState.DISMISSING)
        if current is not None and not self._seen(sig.event_id):
            current.gone(sig)

    @workflow.signal
    def set_policy(self, policy: RoomPolicy) -> None:
        """The rule that matched the incident: its reminders and its dismissal after close."""
        self._messages_this_run += 1
        self.reminders.set_policy(policy)

    @workflow.signal
    def people_linked(self, sig: PeopleLinkedSignal) -> None:
        """People were linked on a platform since their invite found them unlinked: invite them."""
        self._messages_this_run += 1
        self.rooms.linked(sig.platform, sig.contacts)

    @workflow.signal
    def room_message(self, sig: RoomMessageSignal) -> None:
        """A message in the room (its text is in the transcript store), for the assistant."""
        self._messages_this_run += 1
        if not self.rooms.first.is_current(sig.platform, sig.chat_id, RoomState.ACTIVE):
            if self.rooms.of(sig.platform, sig.chat_id, RoomState.ACTIVE) is not None:
                self.reminders.heard()  # people talk in another room: the assistant is in the first
            return
        # A platform may deliver a message twice, once seen as a mention (Slack's message and
        # app_mention events): the mention must still count as a question.
        if not self._seen(sig.event_id + (":mention" if sig.mentions_bot else "")):
            self.assistant.heard(sig)
            self.reminders.heard()

    def _seen(self, key: str) -> bool:
        if key in self.s.seen:
            return True
        self.s.seen.append(key)
        del self.s.seen[:-SEEN_KEEP]
        return False

    # ---------------------------------------------------------------- updates
    @workflow.update
    async def create_room(self, req: CreateRoomRequest) -> WarRoom:
        """Create the room once; concurrent or repeated requests all get the same room. Asked on
        another platform than the incident's room, it is one more room, on that platform."""
        self._messages_this_run += 1
        room = self.rooms.ask_for(req.platform)
        await workflow.wait_condition(room.settled)
        await self.timeline.recorded(room=True)
        return room.room

    @create_room.validator
    def _validate_create(self, req: CreateRoomRequest) -> None:
        if self.s.incident.status is IncidentStatus.CLOSED:
            raise ValueError("the incident is closed; reopen it before opening a war room")
        if (why := self.rooms.can_add(req.platform)) is not None:
            raise ValueError(why)

    @workflow.update
    async def join_room(self, req: JoinRoomRequest) -> WarRoom:
        """Add someone to the room (where the platform has no link to join it); answered once
        their invite went out or was refused, with the room as it then is."""
        self._messages_this_run += 1
        who = req.person.email or req.person.name
        members = self.rooms.first.members
        member_id = members.add_guest(req.person)
        self.timeline.log(TimelineKind.MEMBER_JOINED, req.actor, req.source, f"{who} asked to be added to the room")
        await workflow.wait_condition(lambda: members.settled(member_id))
        await self.timeline.recorded(room=True)
        return self.s.room

    @join_room.validator
    def _validate_join(self, req: JoinRoomRequest) -> None:
        if self.s.room.state is not RoomState.ACTIVE:
            raise ValueError(f"the war room is {self.s.room.state.value}: there is no room to join")
        if not (req.person.email or req.person.phone):
            raise ValueError("an email or phone is needed to find the person on the platform")

    @workflow.update
    async def set_role(self, req: SetRoleRequest) -> dict[str, str]:
        """Give a role to someone (or leave it unheld); answered with every role as it now is."""
        self._messages_this_run += 1
        if self.roles.assign(req.role, req.person.strip(), req.actor, req.source):
            self.reminders.heard()
        await self.timeline.recorded()
        return dict(self.s.roles)

    @set_role.validator
    def _validate_role(self, req: SetRoleRequest) -> None:
        checked_role_holder(req.person)

    @workflow.update
    async def dismiss_room(self, req: DismissRoomRequest) -> WarRoom:
        self._messages_this_run += 1
        self.rooms.ask_dismissal(req.actor, req.source)
        await workflow.wait_condition(self.rooms.dismissal_settled)
        await self.timeline.recorded(room=True)
        return self.s.room

    @dismiss_room.validator
    def _validate_dismiss(self, req: DismissRoomRequest) -> None:
        # Closed, or a close accepted and still being applied (the caller may already have been
        # told "accepted" and the source may already say closed): a dismissal can follow it.
        if self.s.incident.status is not IncidentStatus.CLOSED and not self.actions.closing():
            raise ValueError(f"the incident is {self.s.incident.status.value}; close it before dismissing its room")
        if self.rooms.none_left() and self.s.room.state is not RoomState.DISMISSED:
            raise ValueError("the incident has no war room to dismiss")

    @workflow.update
    async def act(self, req: ActRequest) -> Incident:
        """An action from the API or CLI, answered once it is applied at the source."""
        self._messages_this_run += 1
        info = workflow.current_update_info()
        key = info.id if info else str(workflow.uuid4())
        if self._seen(key):
            return self.s.incident
        pending = self.actions.request(key, req)
        self.reminders.heard()
        await workflow.wait_condition(lambda: pending.done)
        await self.timeline.recorded()
        if pending.error:
            raise ApplicationError(pending.error, type=REFUSED, non_retryable=True)
        return self.s.incident

    @act.validator
    def _validate_act(self, req: ActRequest) -> None:
        # Only malformed requests are rejected here (rejections leave no trace in the history);
        # an action the incident's state forbids is refused in the main loop, where it is audited.
        if req.action is Action.UNSNOOZE:
            raise ValueError("unsnooze is applied by the snooze timer, not by people")

    @workflow.update
    async def review(self, req: ReviewRequest) -> AiReviewResult:
        """(Re)generate the post-incident review; answered once it is stored (and linked in the room)."""
        self._messages_this_run += 1
        ask = self.assistant.ask_review(req.actor, req.source)
        await workflow.wait_condition(lambda: ask.done)
        await self.timeline.recorded()
        if ask.error or ask.result is None:
            raise ApplicationError(ask.error or "no review", type=REVIEW_FAILED, non_retryable=True)
        return ask.result

    # ---------------------------------------------------------------- queries
    @workflow.query
    def view(self) -> WorkflowView:
        return WorkflowView(
            incident=self.s.incident,
            room=self.s.room,
            more_rooms=[slot.room for slot in self.s.more_rooms],
            last_action=self.s.last_action,
            runs=self.s.runs,
        )
