"""Room ready and click → card per platform, each on its own fake, against the floor of that
platform's critical path and against the engine's naive reference, measured in the same run.

    .venv/bin/python -m bench.platforms --platform all --samples 10            # L = 25 ms
    .venv/bin/python -m bench.platforms --platform all --latency-ms 100
    .venv/bin/python -m bench.platforms --platform dingtalk                    # one platform

For each platform, the real stack as `bench.run` has it (a dev server, `python -m workers.main` as
its own process, the API in this process), with the real SDK pointed at the platform's fake, which
holds every HTTP request L before handling it (DingTalk and Lark: `fake.faults.latency`; Slack:
`fake.latency`; WeCom: `latency_seconds`; the sandbox: `WARROOM_SANDBOX_LATENCY_MS`). The fakes
served by uvicorn get TCP_NODELAY from asyncio; WeCom's threaded server sets it itself (Nagle's
algorithm once cost 44 ms a call). Times come from the fake's own records of when each call
took effect, never from polling the API.

The core opens a room in one activity (`activities.im.ImActivities.open_room`): the room is
created while the people are looked up, then the invites, the card and the join link go out
together. What each adapter does inside those steps sets the floor (calls in series, times L):
- sandbox: 2 L: create ∥ lookups, then invites ∥ card.
- Slack: 4 L: conversations.create, then conversations.setPurpose (the idempotency marker, inside
  create_room), then conversations.invite ∥ (conversations.history, the duplicate check, then
  chat.postMessage). users.lookupByEmail runs beside create; the topic sync
  (conversations.info → setTopic) follows the card and is not counted in "ready".
- Feishu/Lark: 2 L: chat.create ∥ user.batch_get_id, then members.add ∥ message.create ∥ chat.link.
- DingTalk: 2 L: the scene group is created while the new responders are looked up by phone,
  then the members are added while the card is delivered.
- WeCom: 3 L: the lookups ∥ appchat/get (an earlier attempt's group), appchat/create, then the
  status message beside every card (`bench.run.wecom`).
Ready = the later of the card's delivery and the last member added, from the request that opens
the room. Click → card (floor 1 L): DingTalk a card click over Stream → card update; WeCom a
callback click → appchat/send; sandbox, Slack and Lark an acknowledge through the API → the card's
one edit (chat.update / message.patch), the cheap path to the same update.
The engine alone (`bench.noop`: an update running one activity lasting that platform's floor, on
a workflow just started) is printed beside each, with its ratio to the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench import run as bench_run
from bench.run import (
    BIN,
    SETTLE,
    Figure,
    Stack,
    _ms,
    _pct,
    _until,
    console,
    engine_room_ready,
    running_stack,
    wecom_fake,
)
from starters.api.app import create_app
from tests.fakes.dingtalk_api import FakeDingTalk
from tests.fakes.lark_api import FakeLark
from tests.fakes.slack_api import SIGNING_SECRET as SLACK_SECRET
from tests.fakes.slack_api import TOKEN as SLACK_TOKEN
from tests.fakes.slack_api import FakeSlack, running_fake_slack
from tests.serving import serving
from warroom.im.dingtalk.stream import CARD_TOPIC
from warroom.settings import Settings
from warroom.store import Store
from workflows.incident import SEARCH_ATTRIBUTES


@contextlib.asynccontextmanager
async def dingtalk_stack(latency_ms: float) -> AsyncIterator[tuple[Stack, FakeDingTalk]]:
    tmp = Path(tempfile.mkdtemp(prefix="warroom-bench-dingtalk-"))
    with FakeDingTalk(late_seconds=1.0) as fake:
        fake.faults.latency = latency_ms / 1000
        owner = fake.add_user("Owner", mobile="13800000009")
        platform = {k: str(v) for k, v in fake.settings(owner, DINGTALK_TIMEOUT_SECONDS=10).items()}
        settings = Settings(
            WARROOM_DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
            WARROOM_TASK_QUEUE="bench-dingtalk",
            WARROOM_IM_PLATFORM="dingtalk",
            WARROOM_SANDBOX_LATENCY_MS=latency_ms,  # the engine reference's activity lasts 2 L
            WARROOM_PUBLIC_URL="https://warroom.example.com",
            _env_file=None,
            **platform,
        )
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(BIN / "temporal"),
            data_converter=pydantic_data_converter,
            search_attributes=SEARCH_ATTRIBUTES,
            ui=False,
        )
        store = Store(settings.database_url)
        app = create_app(settings, client=env.client, store=store)
        try:
            async with serving(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=120) as api:
                stack = Stack(env, settings, store, api, env.client.service_client.config.target_host)
                stack.start_worker(WARROOM_IM_PLATFORM="dingtalk", WARROOM_PUBLIC_URL=settings.public_url, **platform)
                try:
                    await _until(lambda: fake.open_streams == 1, timeout=30)
                    yield stack, fake
                finally:
                    stack.stop_worker()
        finally:
            store.close()
            await env.shutdown()


async def _open_room(stack: Stack, fake: FakeDingTalk, responders: int) -> tuple[str, list[str], float]:
    """An incident with `responders` new people (found by phone when the room opens), its room
    requested: (incident id, their userids, when the request went out)."""
    tag = uuid.uuid4().hex[:6]
    phones = [f"139{n:02d}{int(tag, 16) % 1_000_000:06d}" for n in range(responders)]
    people = [fake.add_user(f"p{n}-{tag}", mobile=p) for n, p in enumerate(phones)]
    incident_id = f"b{tag}"
    body = {"id": incident_id, "title": "bench", "severity": "high",
            "responders": [{"name": f"p{n}", "phone": p} for n, p in enumerate(phones)]}  # fmt: skip
    (await stack.api.post("/api/v1/incidents", json=body)).raise_for_status()
    t0 = time.time()
    opened = await stack.api.post(f"/api/v1/incidents/{incident_id}/war-room", json={"platform": "dingtalk"})
    opened.raise_for_status()
    return incident_id, people, t0


def _room_ready_at(fake: FakeDingTalk, incident_id: str, people: list[str]) -> float | None:
    group = next((g for g in fake.groups.values() if incident_id in g.title), None)
    if group is None or not set(people) <= group.members:
        return None
    ocid = group.open_conversation_id
    delivered = [c.at for c in fake.ops("card.create") if ocid in str(c.body.get("openSpaceId"))]
    added = [c.at for c in fake.ops("members.add") if c.body.get("open_conversation_id") == ocid]
    if not delivered or not added:
        return None
    return max(min(delivered), max(added))


def _card_of(fake: FakeDingTalk, incident_id: str) -> str:
    group = next(g for g in fake.groups.values() if incident_id in g.title)
    return next(c.out_track_id for c in fake.cards.values() if c.open_conversation_id == group.open_conversation_id)


def _acknowledged_at(fake: FakeDingTalk, handle: str, after: float) -> float | None:
    for c in fake.ops("card.update"):
        params = (c.body.get("cardData") or {}).get("cardParamMap") or {}
        if c.body.get("outTrackId") == handle and params.get("status") == "acknowledged" and c.at > after:
            return c.at
    return None


async def room_ready(stack: Stack, fake: FakeDingTalk, latency: float, samples: int, responders: int,
                     engine: float) -> tuple[list[tuple[str, list[str]]], list[float]]:  # fmt: skip
    warm = await _open_room(stack, fake, responders)  # the worker's first room pays for imports and the token
    await _until(lambda: _room_ready_at(fake, warm[0], warm[1]))
    times, rooms = [], []
    for _ in range(samples):
        await asyncio.sleep(SETTLE)
        incident_id, people, t0 = await _open_room(stack, fake, responders)
        ready = await _until(lambda i=incident_id, p=people: _room_ready_at(fake, i, p))
        times.append(ready - t0)
        rooms.append((incident_id, people))
    floor, p50 = 2 * latency, statistics.median(times)
    stack.figures.append(Figure(
        f"DingTalk room ready ({responders} new responders, by phone)", f"p50 {_ms(p50)}, p99 {_ms(_pct(times, 99))}",
        f"{_ms(floor)} (create ∥ lookups, then members ∥ card)", p50 / floor, "≤ 1.25x at p50", p50 <= 1.25 * floor,
        f"engine alone {_ms(engine)} ({engine / floor:.2f}x)",
    ))  # fmt: skip
    return rooms, times


async def click_to_card(stack: Stack, fake: FakeDingTalk, latency: float,
                        rooms: list[tuple[str, list[str]]]) -> list[float]:  # fmt: skip
    times = []
    for incident_id, people in rooms:
        await asyncio.sleep(SETTLE)
        handle = _card_of(fake, incident_id)
        version = fake.cards[handle].params["card_version"]
        frame = fake.frame(CARD_TOPIC, fake.card_click(handle, people[0], {"action": "acknowledge",
                                                                           "card_version": version}))  # fmt: skip
        t0 = time.time()
        fake.push(frame)
        done = await _until(lambda h=handle, t=t0: _acknowledged_at(fake, h, t))
        times.append(done - t0)
    floor, p50 = latency, statistics.median(times)
    stack.figures.append(Figure(
        "DingTalk click → card (over Stream)", f"p50 {_ms(p50)}, p99 {_ms(_pct(times, 99))}",
        f"{_ms(floor)} (one update)",
        p50 / floor, "≤ floor + 40 ms", p50 <= floor + 0.040,
    ))  # fmt: skip
    return times


@dataclass
class Row:
    """One platform's line of the table: its samples and floors, all in seconds."""

    platform: str
    ready: list[float]
    floor: float
    path: str  # what the floor counts
    engine: float
    click: list[float] = field(default_factory=list)
    click_floor: float = 0.0
    click_what: str = ""


async def sandbox_row(latency_ms: float, samples: int, responders: int) -> Row:
    """The sandbox IM (`bench.run`'s stack): floor 2 L (create ∥ lookups, then invites ∥ card);
    status → card (an acknowledge through the API) 1 L."""
    latency = latency_ms / 1000
    async with running_stack("benchsandbox", latency_ms) as stack:
        engine = await engine_room_ready(stack, samples, 2 * latency)
        warm = await bench_run._open_incident(stack, responders)
        (await stack.api.post(f"/api/v1/incidents/{warm}/war-room", json={})).raise_for_status()
        await _until(lambda: bench_run._room_ready_at(stack, warm, responders))
        ready, ids = [], []
        for _ in range(samples):
            await asyncio.sleep(SETTLE)
            incident_id = await bench_run._open_incident(stack, responders)
            t0 = time.time()
            (await stack.api.post(f"/api/v1/incidents/{incident_id}/war-room", json={})).raise_for_status()
            done = await _until(lambda i=incident_id: bench_run._room_ready_at(stack, i, responders))
            ready.append(done - t0)
            ids.append(incident_id)
        click = await bench_run.acknowledge_each(
            stack, ids, lambda i, t: bench_run._card_edited(stack, i, "acknowledged", t)
        )
    return Row("sandbox", ready, 2 * latency, "create ∥ lookups → invites ∥ card", engine,
               click, latency, "ack → card edit")  # fmt: skip


async def dingtalk_row(latency_ms: float, samples: int, responders: int) -> Row:
    latency = latency_ms / 1000
    async with dingtalk_stack(latency_ms) as (stack, fake):
        engine = await engine_room_ready(stack, samples, 2 * latency)
        rooms, ready = await room_ready(stack, fake, latency, samples, responders, engine)
        click = await click_to_card(stack, fake, latency, rooms)
    return Row("DingTalk", ready, 2 * latency, "scene group ∥ lookups by phone → members ∥ card", engine,
               click, latency, "Stream click → card update")  # fmt: skip


async def wecom_row(latency_ms: float, samples: int, responders: int) -> Row:
    """WeCom through `bench.run.wecom` (its floors: room ready 3 L, click → group message 1 L)."""
    latency = latency_ms / 1000
    with wecom_fake(latency_ms) as fake:
        async with running_stack("benchwecom", latency_ms) as stack:
            engine = await engine_room_ready(stack, samples, 3 * latency)
            times = await bench_run.wecom(stack, fake, samples, responders)
    return Row("WeCom", times["ready"], 3 * latency, "lookups ∥ appchat/get → appchat/create → status ∥ cards",
               engine, times["click"], latency, "callback → appchat/send")  # fmt: skip


@contextlib.asynccontextmanager
async def slack_stack(latency_ms: float) -> AsyncIterator[tuple[Stack, FakeSlack]]:
    """The real stack with the worker's Slack SDK client pointed at the fake Slack, served in this
    process by uvicorn (asyncio sets TCP_NODELAY on its sockets: no Nagle delay on small answers)."""
    async with running_fake_slack() as fake:
        fake.latency = latency_ms / 1000
        platform = {"SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_SIGNING_SECRET": SLACK_SECRET,
                    "SLACK_API_BASE_URL": fake.url, "WARROOM_SLACK_TIMEOUT": "10",
                    # The adapter paces itself to Slack's tiers (conversations.create: 20 a minute):
                    # back-to-back samples would measure that wait, not the path.
                    "WARROOM_SLACK_RATE_SCALE": "100"}  # fmt: skip
        worker_env = {"WARROOM_IM_PLATFORM": "slack", **platform}
        async with running_stack("bench-slack", latency_ms, worker_env=worker_env, **worker_env) as stack:
            yield stack, fake


def _slack_ready_at(fake: FakeSlack, incident_id: str, people: list[str]) -> float | None:
    """When the channel had every responder and the card, by the fake's records of the calls."""
    ch = next((c for c in list(fake.channels.values()) if f"incident={incident_id} " in c.purpose), None)
    if ch is None or not set(people) <= ch.members:
        return None
    calls = [c for c in list(fake.calls) if c.outcome == "ok" and c.args.get("channel") == ch.id]
    posted = [c.at for c in calls if c.method == "chat.postMessage"]
    invited = [c.at for c in calls if c.method == "conversations.invite"]
    if not posted or not invited:
        return None
    return max(min(posted), max(invited))


def _slack_updated_at(fake: FakeSlack, incident_id: str, after: float) -> float | None:
    ch = next(c for c in list(fake.channels.values()) if f"incident={incident_id} " in c.purpose)
    return next((c.at for c in list(fake.calls) if c.method == "chat.update" and c.outcome == "ok"
                 and c.args.get("channel") == ch.id and c.at > after), None)  # fmt: skip


async def slack_row(latency_ms: float, samples: int, responders: int) -> Row:
    """Slack: floor 4 L (conversations.create → setPurpose → conversations.invite ∥
    (conversations.history → chat.postMessage)); acknowledge → chat.update 1 L."""
    latency = latency_ms / 1000
    async with slack_stack(latency_ms) as (stack, fake):
        engine = await engine_room_ready(stack, samples, 4 * latency)
        ready, ids = [], []
        for n in range(samples + 1):  # the first one warms the worker up (imports, auth.test)
            await asyncio.sleep(SETTLE)
            tag = uuid.uuid4().hex[:8]
            emails = [f"s{i}-{tag}@bench.example" for i in range(responders)]
            people = [fake.add_user(e) for e in emails]
            incident_id, _, t0 = await bench_run.open_room_for(stack, emails, "slack")
            done = await _until(lambda i=incident_id, p=people: _slack_ready_at(fake, i, p))
            if n:
                ready.append(done - t0)
                ids.append(incident_id)
        click = await bench_run.acknowledge_each(stack, ids, lambda i, t: _slack_updated_at(fake, i, t))
    return Row("Slack", ready, 4 * latency, "create → setPurpose → invite ∥ (history → postMessage)", engine,
               click, latency, "ack → chat.update")  # fmt: skip


@contextlib.asynccontextmanager
async def lark_stack(latency_ms: float) -> AsyncIterator[tuple[Stack, FakeLark]]:
    """The real stack with the worker's lark-oapi client pointed at the fake Lark (uvicorn in a
    thread of this process: asyncio sets TCP_NODELAY on its sockets)."""
    with FakeLark(reset_seconds=30) as fake:
        fake.faults.latency = latency_ms / 1000
        platform = {"LARK_APP_ID": fake.app_id, "LARK_APP_SECRET": fake.app_secret, "LARK_DOMAIN": fake.domain,
                    "LARK_ENCRYPT_KEY": "k" * 16, "LARK_VERIFICATION_TOKEN": "t",
                    "LARK_TIMEOUT_SECONDS": "10"}  # fmt: skip
        worker_env = {"WARROOM_IM_PLATFORM": "lark", **platform}
        async with running_stack("bench-lark", latency_ms, worker_env=worker_env, **worker_env) as stack:
            yield stack, fake


def _lark_ready_at(fake: FakeLark, chat_id: str, people: list[str], after: float) -> float | None:
    """When the chat had every responder and the card, by the fake's records. members.add's
    record names no chat (its path is not kept): the samples run one at a time, so it is the
    last members.add since the request."""
    chat = fake.chats.get(chat_id)
    if chat is None or not set(people) <= set(chat.members):
        return None
    calls = [c for c in list(fake.calls) if c.at > after]
    posted = [c.at for c in calls if c.op == "message.create" and (c.body or {}).get("receive_id") == chat_id]
    added = [c.at for c in calls if c.op == "members.add"]
    if not posted or not added:
        return None
    return max(min(posted), max(added))


async def lark_row(latency_ms: float, samples: int, responders: int) -> Row:
    """Feishu/Lark: floor 2 L (chat.create ∥ user.batch_get_id → members.add ∥ message.create ∥
    chat.link); acknowledge → message.patch 1 L."""
    latency = latency_ms / 1000
    async with lark_stack(latency_ms) as (stack, fake):
        engine = await engine_room_ready(stack, samples, 2 * latency)
        ready, ids = [], []
        for n in range(samples + 1):  # the first one warms the worker up (lark-oapi's import, the token)
            await asyncio.sleep(SETTLE)
            tag = uuid.uuid4().hex[:8]
            emails = [f"l{i}-{tag}@bench.example" for i in range(responders)]
            people = [fake.add_user(name=f"l{i}{tag}", email=e) for i, e in enumerate(emails)]
            incident_id, chat_id, t0 = await bench_run.open_room_for(stack, emails, "lark")
            done = await _until(lambda c=chat_id, p=people, t=t0: _lark_ready_at(fake, c, p, t))
            if n:
                ready.append(done - t0)
                ids.append(incident_id)
        click = await bench_run.acknowledge_each(
            stack,
            ids,
            lambda _, t: next((c.at for c in list(fake.calls) if c.op == "message.patch" and c.at > t), None),
        )
    return Row("Feishu/Lark", ready, 2 * latency, "chat.create ∥ batch_get_id → members.add ∥ message.create",
               engine, click, latency, "ack → message.patch")  # fmt: skip


ROWS = {"sandbox": sandbox_row, "slack": slack_row, "lark": lark_row, "dingtalk": dingtalk_row, "wecom": wecom_row}


async def main(args: argparse.Namespace) -> None:
    names = list(ROWS) if args.platform == "all" else [args.platform]
    console.print(f"[bold]War Room per platform[/] — L = {args.latency_ms:g} ms per call, {os.cpu_count()} cores")
    latency = args.latency_ms / 1000
    rows = []
    for name in names:
        console.print(f"{name} …")
        rows.append(await ROWS[name](args.latency_ms, args.samples, args.responders))
    table = Table(title=f"Room ready per platform, L = {args.latency_ms:g} ms, {args.samples} samples, "
                        f"{args.responders} new responders")  # fmt: skip
    for col in ("platform", "ready p50", "ready p90", "floor", "ratio", "engine alone", "engine ratio",
                "click → card p50", "click floor"):  # fmt: skip
        table.add_column(col)
    for r in rows:
        p50 = statistics.median(r.ready)
        click = f"{_ms(statistics.median(r.click))} ({r.click_what})" if r.click else "—"
        table.add_row(r.platform, _ms(p50), _ms(_pct(r.ready, 90)), f"{_ms(r.floor)} ({round(r.floor / latency)} L)",
                      f"{p50 / r.floor:.2f}x", _ms(r.engine), f"{r.engine / r.floor:.2f}x", click,
                      _ms(r.click_floor) if r.click else "—")  # fmt: skip
    wide = Console(width=200)
    wide.print(table)
    for r in rows:
        wide.print(f"  {r.platform} floor: {r.path}")


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--platform", choices=[*ROWS, "all"], default="all")
    p.add_argument("--latency-ms", type=float, default=25.0)
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--responders", type=int, default=5)
    asyncio.run(main(p.parse_args()))


if __name__ == "__main__":
    sys.exit(cli())
