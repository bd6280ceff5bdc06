"""Assistant activities: thin wrappers over `warroom.ai`, idempotent by business key.

- `ai_answer`, `ai_impact`, `ai_knowledge`: read-only; their output is posted by the workflow.
- `ai_review`: stores one review version per key (a retry returns the first).
- `ai_capture`: our own posts into the transcript (idempotent by platform message id).
- `ai_sweep_transcript`: backfill from the platform's history API (IM task queue: it calls the
  platform with this worker's credentials), and apply the transcript retention.

Model errors become retry decisions: rate limits retry after the server's delay, transient errors
back off, and on the last attempt (or a permanent error) the offline assistant answers instead,
so a question always gets an answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import brief, retry_after, retry_decisions
from activities.im import ImActivities
from warroom import names
from warroom.ai import transcript
from warroom.ai.assistant import Assistant
from warroom.ai.model import AiPermanent, AiRateLimited, AiTransient
from warroom.errors import NotFound
from warroom.im.base import ImAdapter
from warroom.im.rich import Rich
from warroom.messages import (
    AiAnswer,
    AiAnswerInput,
    AiCaptureInput,
    AiImpact,
    AiImpactInput,
    AiKnowledgeInput,
    AiKnowledgePush,
    AiReviewInput,
    AiReviewResult,
    SweepInput,
)
from warroom.settings import Settings
from warroom.store import Store
from warroom.store.transcript import TranscriptMessage

MAX_ATTEMPTS = 2  # the workflow's retry policy for AI activities: the last one falls back offline
BOT = "warroom-bot"
# In place of "thinking…" when no attempt is left to answer (the timeline entry says why).
NO_ANSWER = "I could not answer this one; ask again in a minute, or read the incident's timeline."


@contextmanager
def ai_retry_decisions() -> Iterator[None]:
    try:
        yield
    except AiRateLimited as e:
        raise retry_after(e, e.retry_after, names.AI_RATE_LIMITED) from e
    except AiTransient as e:
        raise ApplicationError(brief(e), type=names.AI_TRANSIENT) from e
    except AiPermanent as e:
        raise ApplicationError(brief(e), type=names.AI_PERMANENT, non_retryable=True) from e
    except NotFound as e:
        raise ApplicationError(brief(e), type=names.NOT_FOUND, non_retryable=True) from e


class StreamedEdits:
    """Edits of one message while an answer streams: the first words at once, then at most one
    edit per `every` seconds (platforms rate-limit edits). A failed draft only skips that draft
    (`drafts` is the adapter as it is: a draft never waits out a rate limit); the "thinking…" post
    and the final edit go through `adapter`, which repeats them in place, so a passing 503 or 429
    does not leave the room with half an answer."""

    def __init__(self, adapter: ImAdapter, drafts: ImAdapter, chat_id: str, key: str, every: float = 0.7) -> None:
        self.adapter, self.drafts, self.chat_id, self.key, self.every = adapter, drafts, chat_id, key, every
        self.message_id = ""
        self.edited = False
        self.started = time.perf_counter()
        self.last = 0.0
        self.first_visible_ms = 0.0

    async def draft(self, rich: Rich) -> None:
        """The first call posts its text ("thinking…", once per key: a retried activity finds it
        again); later calls edit it with the answer so far."""
        now = time.perf_counter()
        if self.edited and now - self.last < self.every:
            return
        try:
            if not self.message_id:
                self.message_id = (await self.adapter.post_rich(self.chat_id, rich, self.key)).message_id
                return
            await self.drafts.edit_rich(self.chat_id, self.message_id, rich)
        except Exception as e:  # a draft is not worth failing the answer for
            activity.logger.info("streamed draft not shown: %s", e)
            return
        self.edited, self.last = True, now
        if not self.first_visible_ms:
            self.first_visible_ms = (time.perf_counter() - self.started) * 1000

    async def final(self, rich: Rich) -> bool:
        """The whole answer in place; False when it could not be (the workflow then posts it)."""
        try:
            await self.adapter.edit_rich(self.chat_id, self.message_id, rich)
        except Exception as e:
            activity.logger.warning("streamed answer not edited in place: %s", e)
            return False
        if not self.first_visible_ms:
            self.first_visible_ms = (time.perf_counter() - self.started) * 1000
        return True


def _last_attempt() -> bool:
    return activity.info().attempt >= MAX_ATTEMPTS


class AiActivities:
    def __init__(self, store: Store, settings: Settings, im: ImActivities, assistant: Assistant | None = None) -> None:
        self.store = store
        self.settings = settings
        self.im = im
        self.assistant = assistant or Assistant(store, settings)

    async def aclose(self) -> None:
        await self.assistant.aclose()

    @activity.defn(name=names.AI_ANSWER)
    async def answer(self, inp: AiAnswerInput) -> AiAnswer:
        """The answer. With `stream_key` and a model answering: "🤖 thinking…" is posted at once,
        edited as the model writes and once more when it is done (`posted_as` names it)."""
        if not inp.stream_key or not inp.room.chat_id or self.assistant.model is None:
            with ai_retry_decisions():
                return await self.assistant.answer(inp, now=datetime.now(UTC), last_attempt=_last_attempt())
        platform = inp.room.platform
        stream = StreamedEdits(
            self.im.adapter(platform), self.im.platform_adapter(platform), inp.room.chat_id, inp.stream_key
        )
        try:
            with ai_retry_decisions():
                ans = await self.assistant.answer(
                    inp, now=datetime.now(UTC), last_attempt=_last_attempt(), on_draft=stream.draft
                )
        except (Exception, asyncio.CancelledError) as e:
            final = _last_attempt() or (isinstance(e, ApplicationError) and e.non_retryable)
            if stream.message_id and final:
                # No attempt follows to edit "thinking…" into an answer: say so in its place.
                await asyncio.shield(stream.final(Rich().add(f"🤖 {NO_ANSWER}")))
            raise
        if stream.message_id and await stream.final(ans.rich or Rich().add(ans.text)):
            ans.posted_as = stream.message_id
        ans.first_visible_ms = stream.first_visible_ms
        return ans

    @activity.defn(name=names.AI_IMPACT)
    async def impact(self, inp: AiImpactInput) -> AiImpact:
        with ai_retry_decisions():
            return await self.assistant.impact(inp, last_attempt=_last_attempt())

    @activity.defn(name=names.AI_KNOWLEDGE)
    async def knowledge(self, inp: AiKnowledgeInput) -> list[AiKnowledgePush]:
        with ai_retry_decisions():
            return await self.assistant.knowledge(inp, last_attempt=_last_attempt())

    @activity.defn(name=names.AI_REVIEW)
    async def review(self, inp: AiReviewInput) -> AiReviewResult:
        with ai_retry_decisions():
            return await self.assistant.review(inp, now=datetime.now(UTC), last_attempt=_last_attempt())

    @activity.defn(name=names.AI_CAPTURE)
    async def capture(self, inp: AiCaptureInput) -> int:
        rows = [
            TranscriptMessage(
                incident_id=m.incident_id,
                platform=m.platform,
                chat_id=m.chat_id,
                message_id=m.message_id,
                author=BOT,
                text=m.text,
                at=m.at,
                from_bot=True,
            )
            for m in inp.messages
        ]
        return await asyncio.to_thread(self.store.transcript.add, rows)

    @activity.defn(name=names.AI_SWEEP_TRANSCRIPT)
    async def sweep(self, inp: SweepInput) -> int:
        """Backfill the transcript from the platform's history (where it has one); returns how many
        messages were new. Also forgets messages past the retention period."""
        adapter = self.im.adapter(inp.platform)
        found = 0
        if adapter.capabilities.history:
            with retry_decisions():
                history = await adapter.fetch_history(inp.chat_id)
            rows = [transcript.from_history(m, incident_id=inp.incident_id, platform=inp.platform) for m in history]
            found = await asyncio.to_thread(self.store.transcript.add, rows)
        if self.settings.transcript_retention_days:
            cutoff = datetime.now(UTC) - timedelta(days=self.settings.transcript_retention_days)
            await asyncio.to_thread(self.store.transcript.prune, cutoff)
        return found

    def main_queue(self) -> list:
        return [self.answer, self.impact, self.knowledge, self.review, self.capture]

    def im_queue(self) -> list:
        return [self.sweep]
