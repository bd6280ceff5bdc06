"""A model's answer streamed into the room (issue 20): on a platform that edits messages, with
`WARROOM_AI_STREAM`, "🤖 thinking…" appears at once and the answer grows in place as the model
writes, instead of arriving whole after it finishes. The real stack on the sandbox, the real
`openai` client against the fake model server writing at a model's pace.

Measures the time to first visible text (the room's message first showing the model's words)
against the time to the whole answer, read from the sandbox's own records by polling.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from starters.api.app import create_app
from warroom.settings import Settings
from warroom.store import Store

from .conftest import eventually
from .fakes.openai_api import API_KEY, MODEL, FakeOpenAI, Reply, running_fake_openai
from .test_ai import ANN, BOB, RUNBOOKS, bot_messages, kinds, open_room, say
from .test_ai_model import settled

ANSWER = (
    "The checkout errors began right after the 10:02 deploy, which shortened the payment client "
    "timeout; Bob is rolling it back now and the error rate should fall within minutes of it. "
    "Nothing in the room says it is resolved yet, so keep watching the 5xx ratio."
)
FIRST_TOKEN = 0.5  # seconds the fake model takes before its first token
CHUNK_DELAY = 0.08  # per 16 characters: ~50 tokens a second, a plausible hosted model


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with running_fake_openai(FakeOpenAI(chunk_delay=CHUNK_DELAY)) as f:
        yield f


@pytest.fixture
def settings(tmp_path: Path, fake: FakeOpenAI) -> Settings:
    return Settings(
        WARROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'warroom.db'}",
        WARROOM_TASK_QUEUE=f"tq-{uuid.uuid4().hex[:8]}",
        WARROOM_SANDBOX_SIGNING_SECRET="test-secret",
        WARROOM_RUNBOOKS_DIR=str(RUNBOOKS),
        OPENAI_BASE_URL=fake.url,
        OPENAI_API_KEY=API_KEY,
        WARROOM_AI_MODEL=MODEL,
        WARROOM_AI_TIMEOUT=10,
        WARROOM_AI_STREAM=True,
        _env_file=None,
    )


@pytest_asyncio.fixture
async def http(client: Client, worker: Worker, store: Store, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=client, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60) as h:
        yield h


async def test_a_model_answer_streams_into_a_thinking_message(http: httpx.AsyncClient, fake: FakeOpenAI) -> None:
    iid, chat = await open_room(http)
    await settled(http, chat)
    await say(http, chat, BOB, "the deploy at 10:02 looks like the trigger, rolling back now")
    # The model takes a moment before its first token, as models do: "thinking…" is up meanwhile
    # (without it, a first chunk could replace it between two polls of a loaded machine).
    fake.queue(Reply(text=ANSWER, delay=FIRST_TOKEN))
    started = time.perf_counter()
    asked = await say(http, chat, ANN, "@warroom what is going on with checkout?")
    seen: dict[str, float] = {}
    texts: list[str] = []
    message_id = None
    while time.perf_counter() - started < 30:
        mine = [m for m in await bot_messages(http, chat, "🤖") if m["id"] > int(asked)]
        if mine:
            m = mine[0]
            message_id = m["id"]
            if not texts or texts[-1] != m["text"]:
                texts.append(m["text"])
            now = time.perf_counter() - started
            seen.setdefault("thinking", now)
            if "The checkout" in m["text"]:  # the first chunk the model sends
                seen.setdefault("first text", now)
            if "keep watching the 5xx ratio" in m["text"]:
                seen["whole"] = now
                break
        await asyncio.sleep(0.02)
    print(
        "\nstreamed answer: thinking… at {thinking:.2f} s, first model text at {first:.2f} s (the model's "
        "first token after {token:.2f} s), whole answer at {whole:.2f} s ({n} versions of the message)".format(
            thinking=seen["thinking"], first=seen["first text"], token=FIRST_TOKEN, whole=seen["whole"], n=len(texts)
        )
    )
    assert "thinking…" in texts[0]
    assert seen["first text"] < seen["whole"] - 0.3, "the first words show well before the whole answer"
    room = (await http.get(f"/sandbox/api/rooms/{chat}")).json()
    answers = [m for m in room["messages"] if m["author"] == "warroom-bot" and m["id"] > int(asked)]
    assert [m["id"] for m in answers] == [message_id]  # edited in place: one message, not two
    assert answers[0]["edits"] >= 2 and answers[0]["text"].endswith("\u2063")

    async def audited() -> list[dict] | None:
        return [e for e in await kinds(http, iid, "ai.answer") if f"M:{asked}" in e["detail"]] or None

    audit = await eventually(audited, timeout=30)
    assert audit[0]["outcome"] == "ok" and "model:" in audit[0]["detail"]
