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
        with ai_retry_decisions():
            return await self.assistant.answer(inp, now=datetime.now(UTC), last_attempt=_last_attempt())

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
