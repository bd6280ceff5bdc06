"""IncidentWarRoom: one long-lived workflow per incident, level-triggered.

Handlers only record intent (a newer snapshot, a wanted room, an action to apply) and wake
the main loop; the main loop alone calls activities, in order, comparing the desired state
with the actual one. A burst of ten status changes during a slow card update therefore costs
one more update, and the history reads as an ordered audit trail.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.errors import NON_RETRYABLE
    from warroom import lifecycle
    from warroom.card import card_content, render_card
    from warroom.im.base import RoomRef, RoomSpec, StatusCard
    from warroom.messages import (
        WORKFLOW_TYPE,
        ActRequest,
        AiAnswer,
        AiAnswerInput,
        AiCaptureInput,
        AiImpact,
        AiImpactInput,
        AiKnowledgeInput,
        AiKnowledgePush,
        AiReviewInput,
        AiReviewResult,
        ApplyActionInput,
        CapturedMessage,
        CarriedState,
        CreateRoomInput,
        CreateRoomRequest,
        DismissInput,
        DismissRoomRequest,
        InviteMembersInput,
        MemberOutcome,
        OpenedRoom,
        OpenRoomInput,
        Person,
        PostCardInput,
        PostMessageInput,
        PostNoticeInput,
        RecordInput,
        RemoveMembersInput,
        ReviewRequest,
        RoomActionSignal,
        RoomGoneSignal,
        RoomMessageSignal,
        SnapshotSignal,
        SweepInput,
        UpdateCardInput,
        WarRoomInput,
        WorkflowView,
    )
    from warroom.models import (
        Action,
        Incident,
        IncidentStatus,
        Member,
        MemberState,
        Outcome,
        RoomState,
        Source,
        TimelineEntry,
        WarRoom,
    )

INCIDENT_ID = SearchAttributeKey.for_keyword("IncidentId")
INCIDENT_STATUS = SearchAttributeKey.for_keyword("IncidentStatus")
INCIDENT_SEVERITY = SearchAttributeKey.for_keyword("IncidentSeverity")
WAR_ROOM_STATE = SearchAttributeKey.for_keyword("WarRoomState")
IM_PLATFORM = SearchAttributeKey.for_keyword("ImPlatform")
SEARCH_ATTRIBUTES = [INCIDENT_ID, INCIDENT_STATUS, INCIDENT_SEVERITY, WAR_ROOM_STATE, IM_PLATFORM]

HISTORY_EVENTS_PER_RUN = 3500  # continue as new from here on
SEEN_KEEP = 1000  # dedup window for action ids carried across continue-as-new
# Someone waits on each IM call (the room, the card): retried every 10 s at most. A rate limit
# waits as long as the platform says, whatever this cap (the adapters set next_retry_delay).
IM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=NON_RETRYABLE,
)
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=NON_RETRYABLE,
)
IM_HEARTBEAT = timedelta(seconds=10)  # workers.heartbeat beats for the calls while they run
SETTLED = (RoomState.ACTIVE, RoomState.FAILED, RoomState.DISMISSED)
# The assistant: two attempts (activities/ai.py answers offline on the last one), then give up.
AI_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=2,
    non_retryable_error_types=[*NON_RETRYABLE, "AiPermanent"],
)
MAX_PENDING_QUESTIONS = 20
# Automatic assistant work (impact on status change, runbook push, review on close) happens on
# existing code paths: runs that began before this code existed replay without it.
AI_PATCH = "ai-assistant"
# A new room opens in one activity (create while looking people up, then invites and card).
OPEN_ROOM_PATCH = "open-room-in-one"
# The timeline is written before the assistant's work, so updates are answered without waiting for it.
TIMELINE_FIRST_PATCH = "timeline-before-assistant"
# The timeline is written by a coroutine of its own beside the main loop: rooms, cards and answers
# never wait for the audit trail (a room asked for with its incident waited for two writes).
RECORDER_PATCH = "recorder-beside-loop"
# Actions are applied at the source in a local activity: the card's edit follows in the same task.
LOCAL_APPLY_PATCH = "apply-action-locally"
# Runs begun by code that has every patch above record this one marker instead of one per patch:
# each patch marker also costs a search-attribute upsert (TemporalChangeVersion), a visibility
# write on the server, and a new room's run took three of them. Older runs replay their own markers.
BASELINE_PATCH = "baseline-2026-12"
STORE_TIMEOUT = timedelta(seconds=30)


class _Pending:
    """An action waiting for the main loop: from a room click (signal) or the API (update)."""

    def __init__(
        self,
        key: str,
        action: Action,
        actor: str,
        source: Source,
        minutes: int | None,
        im_user_id: str | None = None,
        card_version: int | None = None,
        click: RoomActionSignal | None = None,
    ) -> None:
        self.key, self.action, self.actor, self.source, self.minutes = key, action, actor, source, minutes
        self.im_user_id, self.card_version = im_user_id, card_version
        self.click = click  # the signal it came from: carried over continue-as-new if still waiting
        self.done = False
        self.error: str | None = None


class _ReviewAsk:
    """A review requested through the API (an update waits for it) or in the room."""

    def __init__(self, actor: str, source: Source) -> None:
        self.actor, self.source = actor, source
        self.done = False
        self.error: str | None = None
        self.result: AiReviewResult | None = None


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
            )
        self._recorded_seq = self.s.seq  # entries up to here are in the timeline read model
        self._inbox: list[_Pending] = []
        self._applying: _Pending | None = None
        self._entries: list[TimelineEntry] = []
        self._room_dirty = False
        self._messages_this_run = 0
        self._search: dict[str, str] = {}
        self._dismiss_by: tuple[str, Source] = ("system", Source.SYSTEM)
        # Members whose invite failed permanently: not retried until their contact changes.
        self._failed_members: set[tuple[str, str | None, str | None]] = set()
        # The assistant: mentions to answer, reviews asked for, our posts for the transcript.
        self._questions: list[RoomMessageSignal] = []
        self._review_asks: list[_ReviewAsk] = []
        self._captured: list[CapturedMessage] = []
        self._baseline = False  # set by run(): this run began with every patch (BASELINE_PATCH)
        self._ai_auto = False  # set by run(): automatic assistant work only in runs of this code
        self._recorder: asyncio.Task[None] | None = None  # set by run() in runs of this code
        self._recording = False  # a `record` activity is in flight
        self._room_writes_begun = self._room_writes_done = 0  # `record`s that carried the room
        self._handing_over = False  # continue-as-new is near: the recorder starts no new write
        # Work handed over by the previous run (see `_prepare_handover`).
        self._entries, self.s.unrecorded = self.s.unrecorded, []
        self._room_dirty = self._room_dirty or self.s.room_dirty
        self.s.room_dirty = False
        for click in self.s.clicks:
            self._queue_click(click)
        self._questions += self.s.questions
        self._captured += self.s.captured
        self.s.clicks, self.s.questions, self.s.captured = [], [], []
        if inp.state is None and inp.opened_by is not None:
            i = inp.incident
            detail = f"opened: [{i.severity.value}] {i.title} ({i.status.value})"
            self._log("incident.created", inp.opened_by, inp.opened_source, detail)

    # ---------------------------------------------------------------- messages in
    @workflow.signal
    def snapshot(self, sig: SnapshotSignal) -> None:
        """A full incident snapshot from the source; only a newer version changes anything."""
        self._messages_this_run += 1
        self._take_snapshot(sig.incident, sig.actor, sig.source)

    @workflow.signal
    def room_action(self, sig: RoomActionSignal) -> None:
        """A verified button click; authorization happens in the main loop, in order."""
        self._messages_this_run += 1
        if self._seen(sig.event_id):
            return
        self._queue_click(sig)

    def _queue_click(self, sig: RoomActionSignal) -> None:
        self._inbox.append(
            _Pending(
                sig.event_id,
                sig.action,
                sig.im_user_id,
                _source(sig.platform),
                sig.minutes,
                im_user_id=sig.im_user_id,
                card_version=sig.card_version,
                click=sig,
            )
        )

    @workflow.signal
    def room_gone(self, sig: RoomGoneSignal) -> None:
        """Someone disbanded or archived the room by hand: record it; a new room can be requested."""
        self._messages_this_run += 1
        room = self.s.room
        if (sig.platform, sig.chat_id) != (room.platform, room.chat_id) or room.state not in (
            RoomState.ACTIVE,
            RoomState.DISMISSING,
        ):
            return  # an older generation's room, or already gone
        if self._seen(sig.event_id):
            return
        room.state = RoomState.DISMISSED
        self.s.dismiss_wanted = self.s.room_wanted = False
        by = sig.im_user_id or "someone"
        self._log(
            "room.dismissed",
            sig.im_user_id or "system",
            _source(sig.platform),
            f"{by} removed the room on {sig.platform}",
        )
        self._room_dirty = True

    @workflow.signal
    def room_message(self, sig: RoomMessageSignal) -> None:
        """A message in the room (its text is in the transcript store): a mention is a question for
        the assistant; any message counts towards the next runbook check."""
        self._messages_this_run += 1
        room = self.s.room
        if (sig.platform, sig.chat_id) != (room.platform, room.chat_id) or room.state is not RoomState.ACTIVE:
            return
        # A platform may deliver a message twice, once seen as a mention (Slack's message and
        # app_mention events): the mention must still count as a question.
        if self._seen(sig.event_id + (":mention" if sig.mentions_bot else "")):
            return
        self.s.ai.chat_new += 1
        if sig.mentions_bot and len(self._questions) < MAX_PENDING_QUESTIONS:
            self._questions.append(sig)

    @workflow.update
    async def review(self, req: ReviewRequest) -> AiReviewResult:
        """(Re)generate the post-incident review; answered once it is stored (and linked in the room)."""
        self._messages_this_run += 1
        ask = _ReviewAsk(req.actor, req.source)
        self._review_asks.append(ask)
        await workflow.wait_condition(lambda: ask.done)
        await self._recorded()
        if ask.error or ask.result is None:
            raise ApplicationError(ask.error or "no review", type="ReviewFailed", non_retryable=True)
        return ask.result

    @workflow.update
    async def create_room(self, req: CreateRoomRequest) -> WarRoom:
        """Create the room once; concurrent or repeated requests all get the same room."""
        self._messages_this_run += 1
        room = self.s.room
        if not self.s.room_wanted or room.state in (RoomState.FAILED, RoomState.DISMISSED):
            self.s.room_wanted = True
            if room.state in (RoomState.NONE, RoomState.FAILED, RoomState.DISMISSED):
                self.s.room = WarRoom(platform=req.platform, generation=room.generation + 1)
                self.s.card_shown, self.s.card_failed = None, False
                self._room_dirty = True
        await workflow.wait_condition(self._room_settled)
        await self._recorded(room=True)
        return self.s.room

    @create_room.validator
    def _validate_create(self, req: CreateRoomRequest) -> None:
        if self.s.incident.status is IncidentStatus.CLOSED:
            raise ValueError("the incident is closed; reopen it before opening a war room")
        if self.s.room.state in (RoomState.ACTIVE, RoomState.CREATING) and self.s.room.platform != req.platform:
            raise ValueError(f"the incident already has a {self.s.room.platform} war room")

    @workflow.update
    async def dismiss_room(self, req: DismissRoomRequest) -> WarRoom:
        self._messages_this_run += 1
        if self.s.room.state is not RoomState.DISMISSED:
            self.s.dismiss_wanted = True
            self._dismiss_by = (req.actor, req.source)
        await workflow.wait_condition(
            lambda: self.s.room.state in (RoomState.DISMISSED, RoomState.FAILED) or not self.s.dismiss_wanted
        )
        await self._recorded(room=True)
        return self.s.room

    @dismiss_room.validator
    def _validate_dismiss(self, req: DismissRoomRequest) -> None:
        if not self._closed_or_closing():
            raise ValueError(f"the incident is {self.s.incident.status.value}; close it before dismissing its room")
        if self.s.room.state in (RoomState.NONE, RoomState.FAILED):
            raise ValueError("the incident has no war room to dismiss")

    @workflow.update
    async def act(self, req: ActRequest) -> Incident:
        """An action from the API or CLI, answered once it is applied at the source."""
        self._messages_this_run += 1
        info = workflow.current_update_info()
        key = info.id if info else str(workflow.uuid4())
        if self._seen(key):
            return self.s.incident
        pending = _Pending(key, req.action, req.actor, req.source, req.minutes)
        self._inbox.append(pending)
        await workflow.wait_condition(lambda: pending.done)
        await self._recorded()
        if pending.error:
            raise ApplicationError(pending.error, type="Refused", non_retryable=True)
        return self.s.incident

    @act.validator
    def _validate_act(self, req: ActRequest) -> None:
        # Only malformed requests are rejected here (rejections leave no trace in the history);
        # an action the incident's state forbids is refused in the main loop, where it is audited.
        if req.action is Action.UNSNOOZE:
            raise ValueError("unsnooze is applied by the snooze timer, not by people")

    async def _recorded(self, *, room: bool = False) -> None:
        """Wait until what happened so far is in the timeline read model, so that whoever gets an
        answer from an update and then reads the timeline sees the entries it caused; with `room`,
        the room as it is now in the rooms read model too (for answers about the room)."""
        target = self.s.seq
        room_goal = 0
        if room and self._recorder is not None:  # the write in flight, and the next one if it changed since
            room_goal = self._room_writes_begun + (1 if self._room_dirty else 0)
        await workflow.wait_condition(lambda: self._recorded_seq >= target and self._room_writes_done >= room_goal)

    async def _record_continuously(self) -> None:
        """The timeline writer: one `record` at a time, each taking everything logged while the
        previous one ran, so entries reach the read model in order and in few writes, and nothing
        else waits for them (updates that answer with their entries wait in `_recorded`)."""
        while True:
            await workflow.wait_condition(lambda: self._unrecorded() and not self._handing_over)
            self._recording = True
            try:
                await self._flush()
            finally:
                self._recording = False

    def _unrecorded(self) -> bool:
        return bool(self._entries) or self._room_to_record()

    def _room_to_record(self) -> bool:
        """The room changed since its last write and is worth writing now. With the recorder, not
        while a new room has no chat yet: the open-room activity registers it as soon as the
        platform made it, and a write before that only competed with the opening for the database."""
        if not self._room_dirty:
            return False
        room = self.s.room
        return self._recorder is None or room.state is not RoomState.CREATING or room.chat_id is not None

    async def _all_recorded(self) -> None:
        """Wait until the read models hold everything logged so far (timeline and room)."""
        await (self._flush() if self._recorder is None else self._recorded(room=True))

    @workflow.query
    def view(self) -> WorkflowView:
        return WorkflowView(
            incident=self.s.incident, room=self.s.room, last_action=self.s.last_action, runs=self.s.runs
        )

    # ---------------------------------------------------------------- main loop
    @workflow.run
    async def run(self, inp: WarRoomInput) -> WorkflowView:
        self._baseline = workflow.patched(BASELINE_PATCH)
        self._ai_auto = self._patched(AI_PATCH)
        if self._patched(RECORDER_PATCH):
            self._recorder = asyncio.create_task(self._record_continuously())
        self._upsert_search()
        while True:
            with contextlib.suppress(TimeoutError):  # the snooze timer fired: `_step` ends the snooze
                await workflow.wait_condition(self._has_work, timeout=self._snooze_remaining())
            await self._step()
            if self._finished() and workflow.all_handlers_finished():
                break
            if self._should_continue_as_new():
                await self._prepare_handover()
                self.s.runs += 1
                workflow.continue_as_new(WarRoomInput(incident=self.s.incident, config=self.cfg, state=self.s))
        await self._all_recorded()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._all_recorded()
        return self.view()

    def _patched(self, patch_id: str) -> bool:
        """Whether this run takes the path of `patch_id`: always in runs of the baseline (one
        marker for all), otherwise as the run's history says."""
        return self._baseline or workflow.patched(patch_id)

    async def _prepare_handover(self) -> None:
        """Get ready to continue as new. Handlers may wait on the loop (a create-room update waits
        for the room), so step until every handler has its answer; what is still to do then
        (unrecorded entries, clicks, questions) travels in the carried state, so a steady stream
        of signals cannot keep the run from ending before the server's per-run limits."""
        if not self._patched("handover-carries-work"):
            while not workflow.all_handlers_finished() or self._pending_work():
                await workflow.wait_condition(lambda: self._pending_work() or workflow.all_handlers_finished())
                await self._step()
            return
        while not workflow.all_handlers_finished():
            await workflow.wait_condition(lambda: self._pending_work() or workflow.all_handlers_finished())
            await self._step()
        self._handing_over = True  # a write begun now would be cut off: its entries travel instead
        await workflow.wait_condition(lambda: not self._recording)
        self.s.unrecorded, self._entries = self._entries, []
        self.s.room_dirty = self._room_dirty
        self.s.clicks = [p.click for p in self._inbox if p.click is not None]
        self.s.questions = list(self._questions)
        self.s.captured = list(self._captured)

    def _has_work(self) -> bool:
        done = self._finished() and workflow.all_handlers_finished()
        return self._pending_work() or done or self._should_continue_as_new()

    def _pending_work(self) -> bool:
        """Something for `_step` to do; it becomes false once `_step` has done it."""
        return bool(
            self._inbox
            or (self._recorder is None and self._unrecorded())
            or (self._recorder is not None and self._recorder.done())  # it failed: `_step` raises
            or self._snooze_due()
            or self._needs_room_work()
            or self._ai_pending()
        )

    def _closed_or_closing(self) -> bool:
        """Closed, or a close accepted and still being applied (the caller may already have been
        told "accepted" and the source may already say closed): a dismissal can follow it."""
        queued = [*self._inbox, *([self._applying] if self._applying else [])]
        return self.s.incident.status is IncidentStatus.CLOSED or any(p.action is Action.CLOSE for p in queued)

    async def _step(self) -> None:
        if self._recorder is not None and self._recorder.done():
            self._recorder.result()  # a write that failed for good fails the workflow task, as before
        while self._inbox:
            self._applying = self._inbox.pop(0)
            await self._apply(self._applying)
            self._applying = None
        if self._snooze_due():
            await self._unsnooze()
        await self._reconcile_room()  # first: people wait on the card and the invites, not on the assistant
        if self._recorder is None and self._patched(TIMELINE_FIRST_PATCH):
            await self._flush()  # nor for the answer to their update
        await self._ai_step()
        self._upsert_search()
        if self._recorder is None:
            await self._flush()

    def _finished(self) -> bool:
        if self._ai_blocking():
            return False
        if self._inbox or (self.s.room_wanted and self.s.room.state in (RoomState.NONE, RoomState.CREATING)):
            return False
        if self.s.room.state is RoomState.DISMISSED:
            return True
        return self.s.incident.status is IncidentStatus.CLOSED and self.s.room.state in (
            RoomState.NONE,
            RoomState.FAILED,
        )

    def _should_continue_as_new(self) -> bool:
        """Before the server suggests it (4096 events by default), so no run outgrows that: the
        handover itself takes a few events more."""
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= HISTORY_EVENTS_PER_RUN
            or self._messages_this_run >= self.cfg.max_signals_per_run
        )

    # ---------------------------------------------------------------- actions
    async def _apply(self, p: _Pending) -> None:
        actor, source = p.actor, p.source
        if p.im_user_id is not None:
            member = next(
                (m for m in self.s.room.members if m.im_user_id == p.im_user_id and m.state is MemberState.INVITED),
                None,
            )
            if member is None:
                await self._refuse(p, p.im_user_id, "is not a linked responder of this incident")
                return
            actor = member.email or member.phone or member.responder_id
            if p.card_version is not None and p.card_version < self.s.status_card_version:
                await self._refuse(p, actor, "clicked a card that is out of date: the status changed, look again")
                return
        reason = lifecycle.refusal(self.s.incident, p.action, p.minutes)
        if reason:
            await self._refuse(p, actor, reason)
            return
        try:
            incident = await self._apply_at_source(
                ApplyActionInput(
                    incident_id=self.s.incident.id,
                    action=p.action,
                    actor=actor,
                    key=f"{self.s.incident.id}:{p.key}",
                    at=workflow.now(),
                    minutes=p.minutes,
                )
            )
        except ActivityError as e:
            await self._refuse(p, actor, _cause(e))
            return
        suggested = self.s.ai.suggested.pop(p.action.value, None)
        self._take_snapshot(incident, actor, source, log=False)
        detail = f"snoozed for {p.minutes} min" if p.action is Action.SNOOZE else ""
        if suggested:
            detail = (detail + "; " if detail else "") + f"suggested by AI ({suggested}), done by {actor}"
        self._log(f"action.{p.action.value}", actor, source, detail)
        snoozed = p.action is Action.SNOOZE and p.minutes
        self.s.last_action = f"{actor} {_past(p.action)}" + (f" for {p.minutes} min" if snoozed else "")
        p.done = True

    async def _refuse(self, p: _Pending, actor: str, reason: str) -> None:
        entry = self._log("action.refused", actor, p.source, f"{p.action.value}: {reason}", Outcome.REFUSED)
        p.error, p.done = f"{p.action.value} refused: {reason}", True
        if p.im_user_id is not None and self.s.room.state is RoomState.ACTIVE:
            if self._patched("refusal-as-notice"):
                await self._notice(p.im_user_id, f"{p.action.value} refused: {reason}.", key=entry.id)
            else:
                await self._post(f"<{p.im_user_id}> {p.action.value} refused: {reason}.", key=entry.id)

    async def _unsnooze(self) -> None:
        until = self.s.incident.snoozed_until
        assert until is not None
        try:
            incident = await self._apply_at_source(
                ApplyActionInput(
                    incident_id=self.s.incident.id,
                    action=Action.UNSNOOZE,
                    actor="system",
                    key=f"{self.s.incident.id}:unsnooze:{until.isoformat()}",
                    at=workflow.now(),
                )
            )
        except ActivityError as e:
            # The source moved on (someone acknowledged meanwhile); its next snapshot tells us.
            self._log("action.unsnooze", "system", Source.SYSTEM, _cause(e), Outcome.FAILED)
            self.s.incident = self.s.incident.model_copy(update={"snoozed_until": None})
            return
        self._take_snapshot(incident, "system", Source.SYSTEM, log=False)
        self._log("action.unsnooze", "system", Source.SYSTEM, f"snooze ended; back to {incident.status.value}")
        self.s.last_action = f"snooze ended, back to {incident.status.value}"

    def _snooze_due(self) -> bool:
        until = self.s.incident.snoozed_until
        return self.s.incident.status is IncidentStatus.SNOOZED and until is not None and workflow.now() >= until

    def _snooze_remaining(self) -> timedelta | None:
        until = self.s.incident.snoozed_until
        if self.s.incident.status is not IncidentStatus.SNOOZED or until is None:
            return None
        return max(until - workflow.now(), timedelta(milliseconds=1))

    # ---------------------------------------------------------------- room reconciliation
    def _room_settled(self) -> bool:
        room = self.s.room
        return room.state in (RoomState.FAILED, RoomState.DISMISSED) or (
            room.state is RoomState.ACTIVE and (room.card_message_id is not None or self.s.card_failed)
        )

    def _needs_room_work(self) -> bool:
        room = self.s.room
        if self.s.dismiss_wanted and room.state is RoomState.ACTIVE:
            return True
        if self.s.room_wanted and room.state in (RoomState.NONE, RoomState.CREATING):
            return True
        if room.state is not RoomState.ACTIVE:
            return False
        invite, gone = self._member_work()
        return bool(invite or gone or self._card_stale())

    async def _reconcile_room(self) -> None:
        room = self.s.room
        if self.s.room_wanted and room.state in (RoomState.NONE, RoomState.CREATING):
            await (self._open() if self._patched(OPEN_ROOM_PATCH) else self._create())
        if self.s.room.state is RoomState.ACTIVE:
            closed = self.s.incident.status is IncidentStatus.CLOSED
            # The assistant links its review in the room first: then the next step dismisses.
            if self.s.dismiss_wanted and closed and not self._ai_blocking():
                if self._card_stale() and self._patched("card-before-dismiss"):
                    await self._sync_card()  # the archived room shows the final state
                await self._dismiss()
                return
            if not closed:
                self.s.dismiss_wanted = False
            await asyncio.gather(self._sync_members(), self._sync_card())
            if self._card_stale():  # members changed while the card was posted
                await self._sync_card()

    def _room_spec(self) -> RoomSpec:
        room, i = self.s.room, self.s.incident
        room.state, room.generation = RoomState.CREATING, max(room.generation, 1)
        self._upsert_search()
        return RoomSpec(
            incident_id=i.id,
            idempotency_key=f"{workflow.info().workflow_id}:room:{room.generation}",
            name=f"inc-{i.id} {i.title}"[:80],
            topic=f"[{i.severity.value}] {i.title} — {self.cfg.public_url}/api/v1/incidents/{i.id}",
            url=f"{self.cfg.public_url}/api/v1/incidents/{i.id}",
            generation=room.generation,
        )

    async def _open(self) -> None:
        """Open a new room in one activity: the room is created while the responders are looked
        up, then they are invited while the card is posted. The room is ready two platform round
        trips after the request, with one activity dispatch and no workflow task in between (the
        card's refresh with the members' final states follows in the next step)."""
        room, spec = self.s.room, self._room_spec()
        invite, _ = self._member_work()
        self._mark_pending(invite)
        version = room.card_version + 1
        # The card goes out beside the invites: in runs of the baseline it shows them as done, and
        # is edited in the next step only if one did not go through (a room's card edit fewer).
        card = self._card(version, expecting=invite if self._baseline else [])
        try:
            opened = await workflow.execute_activity(
                "im_open_room",
                OpenRoomInput(
                    platform=room.platform,
                    spec=spec,
                    people=invite,
                    card=card,
                    card_key=f"{workflow.info().workflow_id}:card:{room.generation}",
                ),
                result_type=OpenedRoom,
                **self._im_options(),
            )
        except ActivityError as e:
            room.members = []
            self._room_failed(_cause(e))
            return
        self._room_created(opened.room)
        self._take_outcomes(opened.members)
        if opened.card_message_id is None:
            self._card_refused(card, "card.posted", opened.card_error)
        else:
            room.card_message_id = opened.card_message_id
            self._card_shown(card, "card.posted")

    async def _create(self) -> None:
        room, spec = self.s.room, self._room_spec()
        try:
            ref = await workflow.execute_activity(
                "im_create_room",
                CreateRoomInput(platform=room.platform, spec=spec),
                result_type=RoomRef,
                **self._im_options(),
            )
        except ActivityError as e:
            self._room_failed(_cause(e))
            return
        self._room_created(ref)

    def _room_failed(self, why: str) -> None:
        room = self.s.room
        room.state, room.detail = RoomState.FAILED, why
        self._log("room.failed", "system", Source.SYSTEM, why, Outcome.FAILED)
        self._room_dirty = True

    def _room_created(self, ref: RoomRef) -> None:
        room = self.s.room
        room.state, room.chat_id, room.name, room.join_url = RoomState.ACTIVE, ref.chat_id, ref.name, ref.join_url
        self._log("room.created", "system", Source.SYSTEM, f"{room.platform} room {ref.name!r} ({ref.chat_id})")
        self._room_dirty = True

    def _member_work(self) -> tuple[list[Person], list[Member]]:
        """(people to resolve and invite, members to mark removed)."""
        room = self.s.room
        invite = []
        for r in self.s.incident.responders:
            m = room.member(r.id)
            changed = m is None or (m.email, m.phone) != (r.email, r.phone)
            retry = m is not None and m.state in (MemberState.PENDING, MemberState.REMOVED)
            if (changed or retry) and (r.id, r.email, r.phone) not in self._failed_members:
                invite.append(Person(responder_id=r.id, name=r.name, email=r.email, phone=r.phone))
        current = {r.id for r in self.s.incident.responders}
        gone = [m for m in room.members if m.responder_id not in current and m.state is not MemberState.REMOVED]
        return invite, gone

    def _mark_pending(self, invite: list[Person]) -> None:
        """The people about to be invited, as pending members with their current contact."""
        room = self.s.room
        responders = {r.id: r for r in self.s.incident.responders}
        for p in invite:
            r = responders[p.responder_id]
            m = room.member(p.responder_id)
            if m is None:
                room.members.append(Member(responder_id=r.id, name=r.name, email=r.email, phone=r.phone))
            else:
                m.name, m.email, m.phone, m.state = r.name, r.email, r.phone, MemberState.PENDING

    async def _sync_members(self) -> None:
        invite, gone = self._member_work()
        room = self.s.room
        self._mark_pending(invite)
        if invite:
            await self._invite(invite)
        for m in gone:
            if self.cfg.remove_members and m.im_user_id and m.state is MemberState.INVITED:
                try:
                    await workflow.execute_activity(
                        "im_remove_members",
                        RemoveMembersInput(
                            platform=room.platform, chat_id=room.chat_id or "", im_user_ids=[m.im_user_id]
                        ),
                        **self._im_options(),
                    )
                except ActivityError as e:
                    self._log("member.removed", "system", Source.SYSTEM, f"{_who(m)}: {_cause(e)}", Outcome.FAILED)
                    continue
                detail = f"{_who(m)} removed from the room"
            else:
                detail = f"{_who(m)} is no longer a responder (kept in the room)"
            m.state = MemberState.REMOVED
            self._log("member.removed", "system", Source.SYSTEM, detail)
            self._room_dirty = True

    async def _invite(self, people: list[Person]) -> None:
        room = self.s.room
        try:
            outcomes = await workflow.execute_activity(
                "im_invite_members",
                InviteMembersInput(platform=room.platform, chat_id=room.chat_id or "", people=people),
                result_type=list[MemberOutcome],
                **self._im_options(),
            )
        except ActivityError as e:
            outcomes = [
                MemberOutcome(responder_id=p.responder_id, im_user_id=None, state=MemberState.FAILED, detail=_cause(e))
                for p in people
            ]
        self._take_outcomes(outcomes)

    def _take_outcomes(self, outcomes: list[MemberOutcome]) -> None:
        room = self.s.room
        for o in outcomes:
            m = room.member(o.responder_id)
            if m is None:  # the responder was removed while the call ran
                continue
            m.im_user_id, m.state, m.detail = o.im_user_id, o.state, o.detail
            if o.state is MemberState.INVITED:
                self._log("member.invited", "system", Source.SYSTEM, f"{_who(m)} as {o.im_user_id} ({o.detail})")
            elif o.state is MemberState.UNLINKED:
                self._log("member.unlinked", "system", Source.SYSTEM, f"{_who(m)}: {o.detail}", Outcome.FAILED)
            else:
                self._failed_members.add((m.responder_id, m.email, m.phone))
                self._log("member.invited", "system", Source.SYSTEM, f"{_who(m)}: {o.detail}", Outcome.FAILED)
        self._room_dirty = True

    def _card(self, version: int, *, expecting: Sequence[Person] = ()) -> StatusCard:
        """The card for the current state; `expecting`: people shown as invited already (their
        invites go out with the card)."""
        room = self.s.room
        if expecting:
            room = room.model_copy(deep=True)
            for p in expecting:
                if (m := room.member(p.responder_id)) is not None:
                    m.state = MemberState.INVITED
        return render_card(
            self.s.incident,
            room,
            last_action=self.s.last_action,
            version=version,
            public_url=self.cfg.public_url,
            snooze_choices=self.cfg.snooze_choices_minutes,
        )

    def _card_stale(self) -> bool:
        if self.s.room.state is not RoomState.ACTIVE:
            return False
        if self.s.card_failed and self.s.room.card_message_id is None:
            return False
        return card_content(self._card(0)) != self.s.card_shown

    async def _sync_card(self) -> None:
        if not self._card_stale():
            return
        room = self.s.room
        version = room.card_version + 1
        card = self._card(version)
        try:
            if room.card_message_id is None:
                room.card_message_id = await workflow.execute_activity(
                    "im_post_card",
                    PostCardInput(
                        platform=room.platform,
                        chat_id=room.chat_id or "",
                        card=card,
                        key=f"{workflow.info().workflow_id}:card:{room.generation}",
                    ),
                    result_type=str,
                    **self._im_options(),
                )
                kind = "card.posted"
            else:
                await workflow.execute_activity(
                    "im_update_card",
                    UpdateCardInput(
                        platform=room.platform, chat_id=room.chat_id or "", message_id=room.card_message_id, card=card
                    ),
                    **self._im_options(),
                )
                kind = "card.updated"
        except ActivityError as e:
            self._card_refused(card, "card.posted" if room.card_message_id is None else "card.updated", _cause(e))
            return
        self._card_shown(card, kind)

    def _card_shown(self, card: StatusCard, kind: str) -> None:
        """The room shows `card` now: a click on an older card with another status is refused."""
        if (self.s.card_shown or {}).get("status") != card.status.value:
            self.s.status_card_version = card.version
        self.s.room.card_version = card.version
        self.s.card_shown, self.s.card_failed = card_content(card), False
        self._log(kind, "system", Source.SYSTEM, f"v{card.version}: {card.status.value}")
        self._room_dirty = True

    def _card_refused(self, card: StatusCard, kind: str, why: str) -> None:
        self.s.card_failed = True
        self.s.card_shown = card_content(card)  # do not retry the same content forever
        self._log(kind, "system", Source.SYSTEM, why, Outcome.FAILED)

    async def _dismiss(self) -> None:
        room = self.s.room
        actor, source = self._dismiss_by
        room.state = RoomState.DISMISSING
        await self._post("The incident is closed; this war room is being dismissed.", key="dismiss")
        try:
            await workflow.execute_activity(
                "im_dismiss_room",
                DismissInput(platform=room.platform, chat_id=room.chat_id or ""),
                **self._im_options(),
            )
        except ActivityError as e:
            room.state = RoomState.ACTIVE
            self.s.dismiss_wanted = False
            self._log("room.dismissed", actor, source, _cause(e), Outcome.FAILED)
            self._room_dirty = True
            return
        room.state = RoomState.DISMISSED
        self.s.dismiss_wanted = self.s.room_wanted = False
        self._log("room.dismissed", actor, source, f"{room.platform} room {room.chat_id}")
        self._room_dirty = True

    async def _post(self, text: str, *, key: str) -> str | None:
        """Post in the room once per key; the message id, or None when it failed (logged)."""
        room = self.s.room
        try:
            return await workflow.execute_activity(
                "im_post_message",
                PostMessageInput(
                    platform=room.platform,
                    chat_id=room.chat_id or "",
                    text=text,
                    key=f"{workflow.info().workflow_id}:msg:{room.generation}:{key}",
                ),
                result_type=str,
                **self._im_options(),
            )
        except ActivityError as e:
            workflow.logger.warning("could not post to the room: %s", _cause(e))
            return None

    async def _notice(self, im_user_id: str, text: str, *, key: str) -> None:
        room = self.s.room
        try:
            await workflow.execute_activity(
                "im_post_notice",
                PostNoticeInput(
                    platform=room.platform,
                    chat_id=room.chat_id or "",
                    im_user_id=im_user_id,
                    text=text,
                    key=f"{workflow.info().workflow_id}:notice:{room.generation}:{key}",
                ),
                **self._im_options(),
            )
        except ActivityError as e:
            workflow.logger.warning("could not tell %s in the room: %s", im_user_id, _cause(e))

    def _im_options(self) -> dict:
        return {
            "task_queue": self.cfg.im_task_queues.get(self.s.room.platform) or workflow.info().task_queue,
            "start_to_close_timeout": timedelta(seconds=30),
            "schedule_to_close_timeout": timedelta(hours=2),
            "heartbeat_timeout": IM_HEARTBEAT,  # a call on a lost worker is retried within seconds
            "retry_policy": IM_RETRY,
        }

    # ---------------------------------------------------------------- the assistant
    # It reads (activities build answers from the store) and posts; it never changes the incident:
    # an action it suggests is only carried out when a person clicks it, and then audited as such.
    def _room_active(self) -> bool:
        return self.s.room.state is RoomState.ACTIVE and bool(self.s.room.chat_id)

    def _review_due(self) -> bool:
        return self.s.ai.closes > self.s.ai.closes_reviewed

    def _impact_key(self) -> str:
        return f"{self.s.incident.severity.value}|{self.s.incident.status.value}"

    def _impact_due(self) -> bool:
        open_ = self.s.incident.status is not IncidentStatus.CLOSED
        return open_ and self._room_active() and self.s.ai.impact_for != self._impact_key()

    def _knowledge_key(self) -> str:
        i = self.s.incident
        alerts = [(a.title, a.service, a.description) for a in i.alerts]
        text = repr((i.title, i.description, sorted(i.labels.items()), alerts))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _knowledge_due(self) -> bool:
        if self.s.incident.status is IncidentStatus.CLOSED or not self._room_active():
            return False
        ai = self.s.ai
        return ai.knowledge_for != self._knowledge_key() or ai.chat_new >= self.cfg.ai_knowledge_every

    def _ai_blocking(self) -> bool:
        """Assistant work that must happen before the workflow may finish."""
        return bool(self._questions or self._review_asks or (self._ai_auto and self._review_due()))

    def _ai_pending(self) -> bool:
        if self._questions or self._review_asks or self._captured:
            return True
        return self._ai_auto and (self._review_due() or self._impact_due() or self._knowledge_due())

    async def _ai_step(self) -> None:
        while self._questions:
            await self._answer(self._questions.pop(0))
        if self._review_asks or (self._ai_auto and self._review_due()):
            await self._review()
        if self._ai_auto and self._impact_due():
            await self._impact()
        if self._ai_auto and self._knowledge_due():
            await self._knowledge()
        if self._captured:
            await self._capture()

    def _ai_options(self, seconds: int = 120) -> dict:
        return {
            "start_to_close_timeout": timedelta(seconds=seconds),
            "schedule_to_close_timeout": timedelta(seconds=seconds * 3),
            "heartbeat_timeout": timedelta(seconds=10),  # a lost worker is noticed in seconds
            "retry_policy": AI_RETRY,
        }

    def _person(self, im_user_id: str) -> str:
        m = next((m for m in self.s.room.members if m.im_user_id == im_user_id), None)
        return (m.email or m.phone or m.responder_id) if m else im_user_id

    async def _answer(self, q: RoomMessageSignal) -> None:
        if not self._room_active():
            return
        ai, now, limit = self.s.ai, workflow.now(), self.cfg.ai_answers_per_minute
        asker, source = self._person(q.im_user_id), _source(q.platform)
        ai.answered_at = [t for t in ai.answered_at if now - t < timedelta(minutes=1)]
        if len(ai.answered_at) >= limit:
            detail = f"not answered: message {q.message_id} from {asker} (limit {limit} answers a minute)"
            self._log("ai.answer", "ai", Source.AI, detail, Outcome.REFUSED)
            if ai.rate_noticed_at is None or now - ai.rate_noticed_at >= timedelta(minutes=1):
                ai.rate_noticed_at = now
                text = f"I answer at most {limit} questions a minute in this room; ask again in a minute."
                await self._ai_post(text, key=f"ai-rate-{q.message_id}")
            return
        ai.answered_at.append(now)
        await self._all_recorded()  # the answer may cite what has just happened
        try:
            ans = await workflow.execute_activity(
                "ai_answer",
                AiAnswerInput(
                    incident=self.s.incident, room=self.s.room, message_id=q.message_id, im_user_id=q.im_user_id
                ),
                result_type=AiAnswer,
                **self._ai_options(),
            )
        except ActivityError as e:
            detail = f"no answer to message {q.message_id} from {asker}: {_cause(e)}"
            self._log("ai.answer", "ai", Source.AI, detail, Outcome.FAILED)
            return
        if ans.intent == "impact":
            await self._impact(requested_by=asker, key=q.message_id)
            return
        if ans.intent == "review":
            self._review_asks.append(_ReviewAsk(asker, source))
            return
        posted = await self._ai_post(ans.text, key=f"ai-answer-{q.message_id}")
        cites = ", ".join(ans.citations) or "none"
        detail = f"to {asker} (message M:{q.message_id}, {ans.mode}, {ans.intent}); cites {cites}"
        if ans.suggestion is not None:
            detail += f"; suggested {ans.suggestion.value} (a person must click it)"
        detail += ": " + ans.text[:600]
        entry = self._log("ai.answer", "ai", Source.AI, detail, Outcome.OK if posted else Outcome.FAILED)
        if ans.suggestion is not None:
            ai.suggested[ans.suggestion.value] = entry.id

    async def _impact(self, *, requested_by: str = "", key: str = "") -> None:
        ai = self.s.ai
        for_key = self._impact_key()
        try:
            imp = await workflow.execute_activity(
                "ai_impact",
                AiImpactInput(incident=self.s.incident, room=self.s.room, requested=bool(requested_by)),
                result_type=AiImpact,
                **self._ai_options(),
            )
        except ActivityError as e:
            ai.impact_for = for_key
            self._log("ai.impact", "ai", Source.AI, _cause(e), Outcome.FAILED)
            return
        ai.impact_for = for_key
        if not requested_by and (imp.fingerprint == ai.impact_shown or not imp.known):
            return  # same facts (refreshed, not repeated), or nothing known yet (asked for, it says so)
        posted = await self._ai_post(imp.text, key=f"ai-impact-{key or imp.fingerprint}")
        ai.impact_shown = imp.fingerprint
        why = f"asked by {requested_by}" if requested_by else f"severity/status {for_key}"
        self._log(
            "ai.impact",
            "ai",
            Source.AI,
            f"impact assessment ({why}, {imp.mode}, facts {imp.fingerprint}): {imp.text[:600]}",
            Outcome.OK if posted else Outcome.FAILED,
        )

    async def _knowledge(self) -> None:
        ai = self.s.ai
        key = self._knowledge_key()
        try:
            pushes = await workflow.execute_activity(
                "ai_knowledge",
                AiKnowledgeInput(incident=self.s.incident, room=self.s.room, pushed=list(ai.pushed)),
                result_type=list[AiKnowledgePush],
                **self._ai_options(),
            )
        except ActivityError as e:
            pushes = []
            self._log("ai.knowledge", "ai", Source.AI, _cause(e), Outcome.FAILED)
        ai.knowledge_for, ai.chat_new = key, 0
        for push in pushes:
            if push.runbook in ai.pushed:
                continue
            ai.pushed.append(push.runbook)
            posted = await self._ai_post(push.text, key=f"ai-runbook-{push.runbook}")
            detail = f"runbook R:{push.runbook} ({push.title}) pushed; matched: {', '.join(push.terms) or '-'}"
            self._log("ai.knowledge", "ai", Source.AI, detail, Outcome.OK if posted else Outcome.FAILED)

    async def _review(self) -> None:
        asks, self._review_asks = self._review_asks, []
        ai = self.s.ai
        on_close = self._ai_auto and self._review_due()
        ai.closes_reviewed = ai.closes  # a close during generation asks for another one
        if self._room_active():
            await self._sync_card()  # the room shows the final status before a dismissal can follow
        await self._all_recorded()  # the review reads the timeline from the store
        room = self.s.room
        if room.chat_id and room.state is RoomState.ACTIVE:
            try:
                await workflow.execute_activity(
                    "ai_sweep_transcript",
                    SweepInput(incident_id=self.s.incident.id, platform=room.platform, chat_id=room.chat_id),
                    result_type=int,
                    **(self._im_options() | {"schedule_to_close_timeout": timedelta(minutes=2)}),
                )
            except ActivityError as e:
                workflow.logger.warning("transcript sweep failed: %s", _cause(e))
        ai.reviews += 1
        info = workflow.info()
        requested_by = asks[0].actor if asks else "system"
        try:
            result = await workflow.execute_activity(
                "ai_review",
                AiReviewInput(
                    incident=self.s.incident,
                    room=room,
                    key=f"{info.workflow_id}:{info.run_id}:review:{ai.reviews}",
                    requested_by=requested_by,
                ),
                result_type=AiReviewResult,
                **self._ai_options(300),
            )
        except ActivityError as e:
            self._log("ai.review", "ai", Source.AI, f"the review could not be generated: {_cause(e)}", Outcome.FAILED)
            for a in asks:
                a.error, a.done = f"the review could not be generated: {_cause(e)}", True
            return
        why = "on close" if on_close and not asks else f"requested by {requested_by}"
        detail = (
            f"review v{result.version} ({why}, {result.generator}): {result.url}; "
            f"{result.citations} sources cited, {result.uncited} claims without a source"
        )
        self._log("ai.review", "ai", Source.AI, detail)
        text = (
            f"📝 Post-incident review draft v{result.version} ({why}): {result.url}\n"
            "Summary, Impact, Timeline, Root cause, Key decisions, Action items, Lessons learned — every claim "
            "cites the timeline or this room's messages. Regenerate it with `@warroom review` or POST to that URL."
        )
        await self._ai_post(text, key=f"ai-review-{info.run_id}-{ai.reviews}")
        for a in asks:
            a.result, a.done = result, True

    async def _ai_post(self, text: str, *, key: str) -> str | None:
        """Post in the room and keep our own message for the transcript; None when it failed."""
        room = self.s.room
        if not self._room_active():
            return None
        message_id = await self._post(text, key=key)
        if message_id is None:
            return None
        self._captured.append(
            CapturedMessage(
                incident_id=self.s.incident.id,
                platform=room.platform,
                chat_id=room.chat_id or "",
                message_id=message_id,
                text=text,
                at=workflow.now(),
            )
        )
        return message_id

    async def _capture(self) -> None:
        messages, self._captured = self._captured, []
        try:
            await workflow.execute_activity(
                "ai_capture",
                AiCaptureInput(messages=messages),
                result_type=int,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=STORE_RETRY,
            )
        except ActivityError as e:
            workflow.logger.warning("could not store our posts in the transcript: %s", _cause(e))

    # ---------------------------------------------------------------- state and audit
    def _take_snapshot(self, incident: Incident, actor: str, source: Source, *, log: bool = True) -> None:
        before = self.s.incident
        if incident.id != before.id or incident.version <= before.version:
            return
        self.s.incident = incident
        if before.status is not incident.status:
            self.s.ai.suggested.clear()  # a suggestion is about the state it was made in
            if incident.status is IncidentStatus.CLOSED:
                self.s.ai.closes += 1
        if log:
            self._log("incident.updated", actor, source, _describe_change(before, incident))

    def _seen(self, key: str) -> bool:
        if key in self.s.seen:
            return True
        self.s.seen.append(key)
        del self.s.seen[:-SEEN_KEEP]
        return False

    def _log(
        self, kind: str, actor: str, source: Source, detail: str = "", outcome: Outcome = Outcome.OK
    ) -> TimelineEntry:
        self.s.seq += 1
        entry = TimelineEntry(
            id=f"{self.s.incident.id}-{self.s.seq}",
            incident_id=self.s.incident.id,
            seq=self.s.seq,
            at=workflow.now(),
            actor=actor,
            source=source,
            kind=kind,
            detail=detail,
            outcome=outcome,
        )
        self._entries.append(entry)
        return entry

    async def _flush(self) -> None:
        if not self._unrecorded():
            return
        entries, self._entries = self._entries, []
        room = self.s.room.model_copy(deep=True) if self._room_to_record() else None
        if room is not None:
            self._room_dirty = False
        self._room_writes_begun += room is not None
        await self._store("record", RecordInput(incident_id=self.s.incident.id, entries=entries, room=room))
        self._room_writes_done += room is not None
        if entries:
            self._recorded_seq = max(self._recorded_seq, entries[-1].seq)

    async def _apply_at_source(self, inp: ApplyActionInput) -> Incident:
        """Apply an action at the incident source (once per key). A local activity in runs of this
        code: the card's edit is scheduled in the same workflow task, a task and a dispatch
        sooner. Actions are people's clicks, few and far between, unlike the timeline writes
        that `_store` keeps off local activities."""
        if self._patched(LOCAL_APPLY_PATCH):
            return await workflow.execute_local_activity(
                "apply_action",
                inp,
                result_type=Incident,
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=STORE_RETRY,
            )
        return await self._store("apply_action", inp, Incident)

    async def _store(self, activity: str, arg: object, result_type: type | None = None) -> Any:
        """A write to our own database (idempotent: stable ids and keys). A regular activity, not a
        local one: measured at 1,000 open rooms, local store writes queued behind SQLite's single
        writer held their workflow tasks open for seconds (p99 status → card 14 s)."""
        return await workflow.execute_activity(
            activity, arg, result_type=result_type, start_to_close_timeout=STORE_TIMEOUT, retry_policy=STORE_RETRY
        )

    def _upsert_search(self) -> None:
        values = {
            "IncidentId": self.s.incident.id,
            "IncidentStatus": self.s.incident.status.value,
            "IncidentSeverity": self.s.incident.severity.value,
            "WarRoomState": self.s.room.state.value,
            "ImPlatform": self.s.room.platform,
        }
        if values == self._search:
            return
        keys = {k.name: k for k in SEARCH_ATTRIBUTES}
        workflow.upsert_search_attributes([keys[k].value_set(v) for k, v in values.items() if self._search.get(k) != v])
        self._search = values


def _cause(e: BaseException) -> str:
    """The innermost message of an activity failure: what a person needs to read."""
    while e.__cause__ is not None:
        e = e.__cause__
    return str(e) or type(e).__name__


def _source(platform: str) -> Source:
    try:
        return Source(platform)  # a platform's name is a source of its own
    except ValueError:
        return Source.SYSTEM


def _who(m: Member) -> str:
    return m.email or m.phone or m.name or m.responder_id


def _past(action: Action) -> str:
    return {
        "acknowledge": "acknowledged",
        "snooze": "snoozed",
        "close": "closed",
        "reopen": "reopened",
        "unsnooze": "ended the snooze",
    }[action.value]


def _describe_change(before: Incident, after: Incident) -> str:
    parts = []
    for field in ("title", "severity", "status", "description"):
        a, b = getattr(before, field), getattr(after, field)
        if a != b:
            parts.append(
                f"{field}: {getattr(a, 'value', a)} → {getattr(b, 'value', b)}"
                if field != "description"
                else "description changed"
            )
    ra = {r.id: r for r in before.responders}
    rb = {r.id: r for r in after.responders}
    added = [r.contact for k, r in rb.items() if k not in ra]
    removed = [r.contact for k, r in ra.items() if k not in rb]
    if added:
        parts.append("responders added: " + ", ".join(added))
    if removed:
        parts.append("responders removed: " + ", ".join(removed))
    if before.labels != after.labels:
        parts.append("labels changed")
    if before.alerts != after.alerts:
        parts.append(f"alerts: {len(after.alerts)}")
    return "; ".join(parts) or f"version {after.version}"
