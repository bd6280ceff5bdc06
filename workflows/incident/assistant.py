"""The assistant's steps: answer mentions, assess impact, push runbooks, draft the review.

It reads (the activities build answers from the store) and posts; it never changes the incident:
an action it suggests is carried out only when a person clicks it, and then audited as such. Its
work waits for the room's (people wait on the card and the invites, not on the assistant), and
what it posts is kept for the transcript, so a review can cite it on platforms without history.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.incident import calls, options
from workflows.incident.card import CardKeeper
from workflows.incident.chat import RoomChat
from workflows.incident.patches import patched
from workflows.incident.roles import RoleBook
from workflows.incident.timeline import TimelineRecorder
from workflows.incident.wording import cause, source_of

with workflow.unsafe.imports_passed_through():
    from warroom.enums import TimelineKind
    from warroom.im.rich import Rich, Span
    from warroom.messages import (
        AiAnswerInput,
        AiCaptureInput,
        AiImpactInput,
        AiKnowledgeInput,
        AiReviewInput,
        AiReviewResult,
        CapturedMessage,
        CarriedState,
        RoomMessageSignal,
        SweepInput,
        WarRoomConfig,
    )
    from warroom.models import IncidentStatus, Outcome, RoomState, Source, TimelineEntry

MAX_PENDING_QUESTIONS = 20


def review_link(result: AiReviewResult, why: str) -> Rich:
    """The room's notice of a review draft, formatted: a link to read it, what it holds, how to
    regenerate it."""
    doc = Rich(more_url=result.url)
    doc.add(
        Span(text=f"📝 Post-incident review draft v{result.version} ({why}): "),
        Span(text="read it", link=result.url),
    )
    sources = f"{result.citations} sources cited"
    if result.uncited:
        sources += f", {result.uncited} claims still without a source"
    doc.add("Summary, impact, timeline, root cause, decisions, action items, lessons — " + sources + ".", bullet=True)
    doc.add("Regenerate: ", Span(text="@warroom review", code=True), bullet=True)
    return doc


class ReviewAsk:
    """A review requested through the API (an update waits for it) or in the room."""

    def __init__(self, actor: str, source: Source) -> None:
        self.actor, self.source = actor, source
        self.done = False
        self.error: str | None = None
        self.result: AiReviewResult | None = None


class Assistant:
    def __init__(
        self,
        state: CarriedState,
        config: WarRoomConfig,
        timeline: TimelineRecorder,
        card: CardKeeper,
        chat: RoomChat,
        roles: RoleBook,
    ) -> None:
        self._s, self._cfg, self._timeline, self._card, self._chat = state, config, timeline, card, chat
        self._roles = roles
        # Handed over by the previous run: mentions still to answer, our posts still to keep.
        self._questions: list[RoomMessageSignal] = state.questions
        self._captured: list[CapturedMessage] = state.captured
        state.questions, state.captured = [], []
        self._review_asks: list[ReviewAsk] = []

    # ---- what it is asked (from the handlers)
    def heard(self, sig: RoomMessageSignal) -> None:
        """A message in the room: a mention is a question; any counts towards the next runbook check."""
        self._s.ai.chat_new += 1
        if sig.mentions_bot and len(self._questions) < MAX_PENDING_QUESTIONS:
            self._questions.append(sig)

    def ask_review(self, actor: str, source: Source) -> ReviewAsk:
        ask = ReviewAsk(actor, source)
        self._review_asks.append(ask)
        return ask

    def hand_over(self) -> None:
        """Put what is still to do into the carried state, for the next run."""
        self._s.questions = list(self._questions)
        self._s.captured = list(self._captured)

    # ---- where it stands
    def busy(self) -> bool:
        """Work that must be done before the room is dismissed or the workflow ends."""
        return bool(self._questions or self._review_asks or self._review_due())

    def pending(self) -> bool:
        if self._questions or self._review_asks or self._captured:
            return True
        return self._review_due() or self._impact_due() or self._knowledge_due()

    # ---- one pass
    async def catch_up(self) -> None:
        while self._questions:
            await self._answer(self._questions.pop(0))
        if self._review_asks or self._review_due():
            await self._review()
        impact, knowledge = self._impact_due(), self._knowledge_due()
        if impact and knowledge and patched("assistant-side-by-side"):
            # Both read the incident and post apart: one round of activities instead of two (a
            # new room asks for both at once).
            await asyncio.gather(self._impact(), self._knowledge())
        else:
            if impact:
                await self._impact()
            if self._knowledge_due():
                await self._knowledge()
        if self._captured:
            await self._capture()

    def _room_active(self) -> bool:
        return self._s.room.state is RoomState.ACTIVE and bool(self._s.room.chat_id)

    def _review_due(self) -> bool:
        return self._s.ai.closes > self._s.ai.closes_reviewed

    def _impact_key(self) -> str:
        return f"{self._s.incident.severity.value}|{self._s.incident.status.value}"

    def _impact_due(self) -> bool:
        open_ = self._s.incident.status is not IncidentStatus.CLOSED
        return open_ and self._room_active() and self._s.ai.impact_for != self._impact_key()

    def _knowledge_key(self) -> str:
        i = self._s.incident
        alerts = [(a.title, a.service, a.description) for a in i.alerts]
        text = repr((i.title, i.description, sorted(i.labels.items()), alerts))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _knowledge_due(self) -> bool:
        if self._s.incident.status is IncidentStatus.CLOSED or not self._room_active():
            return False
        ai = self._s.ai
        return ai.knowledge_for != self._knowledge_key() or ai.chat_new >= self._cfg.ai_knowledge_every

    def _person(self, im_user_id: str) -> str:
        m = next((m for m in self._s.room.members if m.im_user_id == im_user_id), None)
        return (m.email or m.phone or m.responder_id) if m else im_user_id

    def _log(self, kind: TimelineKind, detail: str, outcome: Outcome = Outcome.OK) -> TimelineEntry:
        return self._timeline.log(kind, "ai", Source.AI, detail, outcome)

    async def _answer(self, q: RoomMessageSignal) -> None:
        if not self._room_active():
            return
        ai, now, limit = self._s.ai, workflow.now(), self._cfg.ai_answers_per_minute
        asker, source = self._person(q.im_user_id), source_of(q.platform)
        ai.answered_at = [t for t in ai.answered_at if now - t < timedelta(minutes=1)]
        if len(ai.answered_at) >= limit:
            self._log(
                TimelineKind.AI_ANSWER,
                f"not answered: message {q.message_id} from {asker} (limit {limit} answers a minute)",
                Outcome.REFUSED,
            )
            if ai.rate_noticed_at is None or now - ai.rate_noticed_at >= timedelta(minutes=1):
                ai.rate_noticed_at = now
                text = f"I answer at most {limit} questions a minute in this room; ask again in a minute."
                await self._post(text, key=f"ai-rate-{q.message_id}")
            return
        ai.answered_at.append(now)
        await self._timeline.all_recorded()  # the answer may cite what has just happened
        # Patch ai-answer-streamed: where a model streams and the platform edits messages, the
        # activity posts "thinking…" itself and edits the answer into it as the model writes.
        stream_key = None
        if self._s.room.platform in self._cfg.ai_stream_platforms and patched("ai-answer-streamed"):
            stream_key = self._chat.key(f"ai-answer-{q.message_id}-streamed")
        try:
            ans = await calls.AI_ANSWER(
                AiAnswerInput(
                    incident=self._s.incident,
                    room=self._s.room,
                    message_id=q.message_id,
                    im_user_id=q.im_user_id,
                    stream_key=stream_key,
                ),
                options.ai(),
            )
        except ActivityError as e:
            self._log(
                TimelineKind.AI_ANSWER, f"no answer to message {q.message_id} from {asker}: {cause(e)}", Outcome.FAILED
            )
            return
        if ans.intent == "impact":
            await self._impact(requested_by=asker, key=q.message_id)
            return
        if ans.intent == "review":
            self._review_asks.append(ReviewAsk(asker, source))
            return
        # Patch roles-from-room: `@warroom lead me` gives the role (as the set_role update does)
        # and the room is told; before it, the activity's text said roles are given elsewhere.
        if ans.intent == "role" and ans.role is not None and patched("roles-from-room"):
            ai.answered_at.remove(now)  # no answer: it does not count towards the limit
            said = await self._roles.from_room(q, ans.role)
            if said:
                await self._post(said, key=f"role-{q.message_id}")
            return
        # Patch ai-rich-answers: the answer goes out formatted (links, bold, lists) where the
        # activity sent a formatted copy; histories from before it posted the plain text.
        rich = ans.rich if ans.rich is not None and patched("ai-rich-answers") else None
        if ans.posted_as:  # streamed into its own message: keep it for the transcript
            posted: str | None = ans.posted_as
            self._keep(ans.posted_as, ans.text)
        else:
            posted = await self._post(ans.text, key=f"ai-answer-{q.message_id}", rich=rich)
        cites = ", ".join(ans.citations) or "none"
        detail = f"to {asker} (message M:{q.message_id}, {ans.mode}, {ans.intent}); cites {cites}"
        if ans.suggestion is not None:
            detail += f"; suggested {ans.suggestion.value} (a person must click it)"
        detail += ": " + ans.text[:600]
        entry = self._log(TimelineKind.AI_ANSWER, detail, Outcome.OK if posted else Outcome.FAILED)
        if ans.suggestion is not None:
            ai.suggested[ans.suggestion.value] = entry.id

    async def _impact(self, *, requested_by: str = "", key: str = "") -> None:
        ai = self._s.ai
        for_key = self._impact_key()
        # Patch ai-impact-on-card: unasked, the assessment refreshes the card's impact section
        # where the card has one (the next pass edits the card); asked for, it is an answer.
        on_card = (
            not requested_by
            and self._s.room.platform in self._cfg.ai_card_impact_platforms
            and patched("ai-impact-on-card")
        )
        try:
            imp = await calls.AI_IMPACT(
                AiImpactInput(
                    incident=self._s.incident, room=self._s.room, requested=bool(requested_by), for_card=on_card
                ),
                options.ai(),
            )
        except ActivityError as e:
            ai.impact_for = for_key
            self._log(TimelineKind.AI_IMPACT, cause(e), Outcome.FAILED)
            return
        ai.impact_for = for_key
        if not requested_by and (imp.fingerprint == ai.impact_shown or not imp.known):
            return  # same facts (refreshed, not repeated), or nothing known yet (asked for, it says so)
        if on_card:
            ai.impact_shown, ai.impact_line = imp.fingerprint, imp.summary
            self._log(
                TimelineKind.AI_IMPACT,
                f"impact on the status card (severity/status {for_key}, facts {imp.fingerprint}): {imp.summary}",
            )
            return
        # Patch ai-rich-impact: the assessment goes out formatted (bullets, a linked source).
        rich = imp.rich if imp.rich is not None and patched("ai-rich-impact") else None
        posted = await self._post(imp.text, key=f"ai-impact-{key or imp.fingerprint}", rich=rich)
        ai.impact_shown = imp.fingerprint
        why = f"asked by {requested_by}" if requested_by else f"severity/status {for_key}"
        self._log(
            TimelineKind.AI_IMPACT,
            f"impact assessment ({why}, {imp.mode}, facts {imp.fingerprint}): {imp.text[:600]}",
            Outcome.OK if posted else Outcome.FAILED,
        )

    async def _knowledge(self) -> None:
        ai = self._s.ai
        key = self._knowledge_key()
        try:
            pushes = await calls.AI_KNOWLEDGE(
                AiKnowledgeInput(incident=self._s.incident, room=self._s.room, pushed=list(ai.pushed)), options.ai()
            )
        except ActivityError as e:
            pushes = []
            self._log(TimelineKind.AI_KNOWLEDGE, cause(e), Outcome.FAILED)
        ai.knowledge_for, ai.chat_new = key, 0
        for push in pushes:
            if push.runbook in ai.pushed:
                continue
            ai.pushed.append(push.runbook)
            posted = await self._post(push.text, key=f"ai-runbook-{push.runbook}")
            detail = f"runbook R:{push.runbook} ({push.title}) pushed; matched: {', '.join(push.terms) or '-'}"
            self._log(TimelineKind.AI_KNOWLEDGE, detail, Outcome.OK if posted else Outcome.FAILED)

    async def _review(self) -> None:
        asks, self._review_asks = self._review_asks, []
        ai = self._s.ai
        on_close = self._review_due()
        ai.closes_reviewed = ai.closes  # a close during generation asks for another one
        if self._room_active():
            await self._card.sync()  # the room shows the final status before a dismissal can follow
        await self._timeline.all_recorded()  # the review reads the timeline from the store
        room = self._s.room
        if room.chat_id and room.state is RoomState.ACTIVE:
            try:
                await calls.AI_SWEEP_TRANSCRIPT(
                    SweepInput(incident_id=self._s.incident.id, platform=room.platform, chat_id=room.chat_id),
                    options.im(self._cfg, room.platform).within(timedelta(minutes=2)),
                )
            except ActivityError as e:
                workflow.logger.warning("transcript sweep failed: %s", cause(e))
        ai.reviews += 1
        info = workflow.info()
        requested_by = asks[0].actor if asks else "system"
        try:
            result = await calls.AI_REVIEW(
                AiReviewInput(
                    incident=self._s.incident,
                    room=room,
                    key=f"{info.workflow_id}:{info.run_id}:review:{ai.reviews}",
                    requested_by=requested_by,
                ),
                options.ai(300),
            )
        except ActivityError as e:
            self._log(TimelineKind.AI_REVIEW, f"the review could not be generated: {cause(e)}", Outcome.FAILED)
            for a in asks:
                a.error, a.done = f"the review could not be generated: {cause(e)}", True
            return
        why = "on close" if on_close and not asks else f"requested by {requested_by}"
        self._log(
            TimelineKind.AI_REVIEW,
            f"review v{result.version} ({why}, {result.generator}): {result.url}; "
            f"{result.citations} sources cited, {result.uncited} claims without a source",
        )
        text = (
            f"📝 Post-incident review draft v{result.version} ({why}): {result.url}\n"
            "Summary, Impact, Timeline, Root cause, Key decisions, Action items, Lessons learned — every claim "
            "cites the timeline or this room's messages. Regenerate it with `@warroom review` or POST to that URL."
        )
        rich = None
        if patched("ai-rich-review-link"):  # the link as a link, the rest in two short lines
            rich = review_link(result, why)
        await self._post(text, key=f"ai-review-{info.run_id}-{ai.reviews}", rich=rich)
        for a in asks:
            a.result, a.done = result, True

    async def _post(self, text: str, *, key: str, rich: Rich | None = None) -> str | None:
        """Post in the room and keep our own message for the transcript; None when it failed."""
        if not self._room_active():
            return None
        message_id = await self._chat.post(text, key=key, rich=rich)
        if message_id is None:
            return None
        self._keep(message_id, text)
        return message_id

    def _keep(self, message_id: str, text: str) -> None:
        """Our post, for the transcript (platforms without history would lose it)."""
        room = self._s.room
        self._captured.append(
            CapturedMessage(
                incident_id=self._s.incident.id,
                platform=room.platform,
                chat_id=room.chat_id or "",
                message_id=message_id,
                text=text,
                at=workflow.now(),
            )
        )

    async def _capture(self) -> None:
        messages, self._captured = self._captured, []
        try:
            await calls.AI_CAPTURE(AiCaptureInput(messages=messages), options.CAPTURE)
        except ActivityError as e:
            workflow.logger.warning("could not store our posts in the transcript: %s", cause(e))
