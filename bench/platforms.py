"""Room ready and click → card on a platform's own fake, against the floor of that platform's
critical path, measured in the same run.

    .venv/bin/python -m bench.platforms --platform dingtalk             # L = 25 ms
    .venv/bin/python -m bench.platforms --platform dingtalk --latency-ms 100 --samples 10

The real stack as `bench.run` has it (a dev server, `python -m workers.main` as its own process,
the API in this process: it holds DingTalk's Stream connection), with the real SDKs pointed at the
platform's fake, which holds every HTTP request L before handling it. Times come from the fake's
own records of when each call took effect.

Floors (the calls on the critical path, times L):
- DingTalk room ready = 2 L: the scene group is created while the new responders are looked up by
  phone, then the members are added while the card is delivered. Measured from the request that
  opens the room to the later of the card's delivery and the last member added.
- DingTalk click → card = 1 L: a card click arrives over Stream, the card is updated once.
The engine alone (an update running one activity of 2 L on a workflow just started, `bench.noop`)
is printed beside room ready, as in `bench.run`.
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
from pathlib import Path

import httpx
from rich.table import Table
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.run import BIN, SETTLE, Figure, Stack, _ms, _pct, _until, console, engine_room_ready
from starters.api.app import create_app
from tests.fakes.dingtalk_api import FakeDingTalk
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
                     engine: float) -> list[tuple[str, list[str]]]:  # fmt: skip
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
    return rooms


async def click_to_card(stack: Stack, fake: FakeDingTalk, latency: float, rooms: list[tuple[str, list[str]]]) -> None:
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


async def main(args: argparse.Namespace) -> None:
    latency = args.latency_ms / 1000
    console.print(f"[bold]War Room on DingTalk's fake[/] — L = {args.latency_ms:g} ms per call, {os.cpu_count()} cores")
    async with dingtalk_stack(args.latency_ms) as (stack, fake):
        console.print("engine alone …")
        engine = await engine_room_ready(stack, args.samples)
        console.print("room ready …")
        rooms = await room_ready(stack, fake, latency, args.samples, args.responders, engine)
        console.print("click → card …")
        await click_to_card(stack, fake, latency, rooms)
    table = Table(title=f"DingTalk (fake), L = {args.latency_ms:g} ms")
    for col in ("figure", "measured", "floor", "ratio", "target", ""):
        table.add_column(col)
    for f in stack.figures:
        ok = "" if f.ok is None else ("[green]met[/]" if f.ok else "[red]missed[/]")
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}x"
        table.add_row(f.name, f.measured + (f"\n{f.note}" if f.note else ""), f.floor, ratio, f.target, ok)
    console.print(table)


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--platform", choices=["dingtalk"], default="dingtalk")
    p.add_argument("--latency-ms", type=float, default=25.0)
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--responders", type=int, default=5)
    asyncio.run(main(p.parse_args()))


if __name__ == "__main__":
    sys.exit(cli())
