"""A streamed answer never leaves "🤖 thinking…" behind (issue 20): the answer activity itself,
run by Temporal's activity test environment as a worker runs it (attempt number, timeouts,
cancellation), with the real slack-sdk client against the fake Slack Web API and the real
`openai` client against the fake model server. What the room shows is read from the fake
Slack's own record of the message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ai import NO_ANSWER, AiActivities
from activities.im import ImActivities
from warroom.messages import AiAnswerInput
from warroom.models import Incident, RoomState, WarRoom
from warroom.settings import Settings
from warroom.store import Store
from warroom.store.transcript import TranscriptMessage

from .fakes.openai_api import API_KEY, MODEL, FakeOpenAI, Reply, running_fake_openai
from .fakes.slack_api import BOT_USER_ID, SIGNING_SECRET, SPEC_PATH, TOKEN, FakeSlack, running_fake_slack
from .test_lark import spec

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason=f"Slack's OpenAPI spec not found at {SPEC_PATH}")

ANSWER = "Rolled back."  # one chunk of the fake's stream: exactly one draft edit before the final one
QUESTION = "@warroom what broke checkout?"


@dataclasses.dataclass
class Room:
    ai: AiActivities
    slack: FakeSlack
    model: FakeOpenAI
    inp: AiAnswerInput

    async def answer(self, attempt: int, *, cancel_after: float | None = None):  # type: ignore[no-untyped-def]
        """One attempt of the activity, as the worker runs attempt number `attempt` of two."""
        env = ActivityEnvironment()
        env.info = dataclasses.replace(
            env.info,
            attempt=attempt,
            started_time=datetime.now(UTC),
            start_to_close_timeout=timedelta(seconds=120),
            schedule_to_close_timeout=timedelta(seconds=360),
        )
        run = asyncio.ensure_future(env.run(self.ai.answer, self.inp))
        if cancel_after is not None:
            await asyncio.sleep(cancel_after)
            env.cancel()
        return await run

    def bot_texts(self) -> list[str]:
        """The bot's messages in the room but the question, as the channel holds them now."""
        channel = self.slack.channels[self.inp.room.chat_id or ""]
        return [m["text"] for m in channel.messages if m.get("user") == BOT_USER_ID and not m.get("subtype")]


@pytest_asyncio.fixture(loop_scope="session")
async def room(tmp_path: Path) -> AsyncIterator[Room]:
    async with running_fake_slack() as slack, running_fake_openai(FakeOpenAI(chunk_delay=0.05)) as model:
        settings = Settings(
            WARROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'warroom.db'}",
            WARROOM_IM_PLATFORM="slack",
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_BASE_URL=slack.url,
            WARROOM_SLACK_TIMEOUT=1.5,
            OPENAI_BASE_URL=model.url,
            OPENAI_API_KEY=API_KEY,
            WARROOM_AI_MODEL=MODEL,
            WARROOM_AI_TIMEOUT=5,
            WARROOM_AI_STREAM=True,
            _env_file=None,
        )
        store = Store(settings.database_url)
        im = ImActivities(store, settings)
        ai = AiActivities(store, settings, im)
        try:
            iid = f"i{uuid.uuid4().hex[:6]}"
            ref = await im.platform_adapter("slack").create_room(spec(iid))
            now = datetime.now(UTC)
            incident = Incident(id=iid, title="Checkout is down", created_at=now, updated_at=now)
            store.transcript.add(
                [
                    TranscriptMessage(
                        incident_id=iid, platform="slack", chat_id=ref.chat_id, message_id="1", author="U1",
                        text=QUESTION, at=now,
                    )
                ]
            )  # fmt: skip
            war_room = WarRoom(state=RoomState.ACTIVE, platform="slack", chat_id=ref.chat_id, generation=1)
            inp = AiAnswerInput(incident=incident, room=war_room, message_id="1", im_user_id="U1", stream_key="k1")
            yield Room(ai, slack, model, inp)
        finally:
            await ai.aclose()
            await im.aclose()
            store.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_final_edit_that_meets_503s_is_repeated_in_place(room: Room) -> None:
    """The draft edit and the final edit's first two tries get 503: the answer still replaces
    "thinking…" in the same message, in the same attempt."""
    room.model.queue(Reply(text=ANSWER))
    room.slack.inject("chat.update", "server_error", times=3)
    ans = await room.answer(attempt=1)
    assert ans.posted_as and ans.mode == f"model:{MODEL}"
    [shown] = room.bot_texts()
    assert ANSWER in shown and "thinking" not in shown
    assert room.slack.count("chat.update", outcome=None) == 4  # draft 503, final 503, 503, ok
    assert room.slack.count("chat.postMessage") == 1


@pytest.mark.asyncio(loop_scope="session")
async def test_a_stream_broken_off_is_tried_again_then_answered_offline_in_the_same_message(room: Room) -> None:
    """A model stream cut short by garbage is a transient failure: the first attempt leaves the
    draft for the next one, which (the last) answers offline in the same message."""
    room.model.queue(Reply(text=ANSWER * 8, broken_after=2), Reply(text=ANSWER * 8, broken_after=2))
    with pytest.raises(ApplicationError) as failed:
        await room.answer(attempt=1)
    assert not failed.value.non_retryable and "broken off" in failed.value.message
    [draft] = room.bot_texts()
    assert "thinking" in draft or ANSWER in draft  # the next attempt edits it
    ans = await room.answer(attempt=2)
    assert ans.mode == "offline" and ans.posted_as
    [shown] = room.bot_texts()
    assert "thinking" not in shown and "…" not in shown.rstrip("\u2063")[-3:]
    assert room.slack.count("chat.postMessage") == 1


@pytest.mark.asyncio(loop_scope="session")
async def test_the_last_attempt_cancelled_mid_answer_says_so_in_place_of_thinking(room: Room) -> None:
    """Nothing follows the last attempt: cancelled while the model writes (its worker shutting
    down, the workflow giving up), it turns "thinking…" into a plain "no answer" line."""
    room.model.queue(Reply(text=ANSWER * 40))  # 30 chunks, 1.5 s of writing
    with pytest.raises(asyncio.CancelledError):
        await room.answer(attempt=2, cancel_after=0.6)
    [shown] = room.bot_texts()
    assert NO_ANSWER in shown and "thinking" not in shown
