"""What one war room costs, counted on the real stack, and what one worker process sustains.

    .venv/bin/python -m bench.cost --rooms 20 [--json]

The stack is bench/run.py's (dev server, `workers.main` as its own process, the API in this
process, the sandbox IM at L per call), with the worker wrapped by bench.count_writes so that its
store writes are counted. N incidents with 5 responders each get a room at once (the burst), then
each goes through a life: acknowledge, one responder added, close, room dismissed. Then, per room:

- workflow tasks, activities by type, local activities (MarkerRecorded) and history events, read
  from the history of every workflow on the queue (the incidents' and any LinkUsers);
- store writes (INSERT/UPDATE/DELETE statements) by the worker (counted in its process) and by the
  API (counted in this process), the sandbox IM's own tables apart: they stand in for the platform;
- IM calls by method (the sandbox's call records);
- worker CPU seconds (utime + stime from /proc/<pid>/stat) and RSS growth per cached incident.

Counts are exact. Rates, CPU and RSS are from a shared 2-core machine: noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from bench.count_writes import WriteCounter
from bench.run import Stack, _room_ready_at, _until, cpu_seconds, running_stack
from warroom.im.sandbox.tables import SandboxCallRow, SandboxRoomRow
from warroom.store.tables import TimelineRow

console = Console(width=max(Console().width, 140))


def writes(path: Path) -> dict[str, dict[str, int]]:
    return json.loads(path.read_text()) if path.exists() else {"statements": {}}


def diff(after: dict[str, int], before: dict[str, int]) -> Counter[str]:
    return Counter({k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)})


async def _calls(stack: Stack) -> Counter[str]:
    with stack.store.db.session() as s:
        rows = s.execute(
            select(SandboxCallRow.method, func.count())
            .where(SandboxCallRow.fault.is_(None))
            .group_by(SandboxCallRow.method)
        ).all()
    return Counter({m: n for m, n in rows})


async def _open(stack: Stack, responders: int) -> str:
    tag = uuid.uuid4().hex[:8]
    body = {
        "title": f"cost {tag}",
        "severity": "high",
        "responders": [{"email": f"r{n}-{tag}@cost.bench.example"} for n in range(responders)],
    }
    r = await stack.api.post("/api/v1/incidents", json=body)
    r.raise_for_status()
    return r.json()["id"]


async def _quiet(stack: Stack, path: Path, settle: float = 2.0) -> None:
    """Until the worker has written nothing and the sandbox taken no call for `settle` seconds."""
    last: Any = None
    since = time.monotonic()
    while time.monotonic() - since < settle:
        now = (writes(path), await _calls(stack))
        if now != last:
            last, since = now, time.monotonic()
        await asyncio.sleep(0.25)


async def _history(stack: Stack) -> dict[str, Any]:
    """Event counts over every workflow (all runs) on this stack's queue, by workflow type."""
    client = stack.env.client
    out: dict[str, Any] = {"workflows": Counter(), "events": 0, "workflow_tasks": 0}
    activities: Counter[str] = Counter()
    markers: Counter[str] = Counter()  # core_local_activity (a local activity) or core_patch
    local: Counter[str] = Counter()  # local activities by type
    async for wf in client.list_workflows(f'TaskQueue="{stack.settings.task_queue}"'):
        out["workflows"][wf.workflow_type] += 1
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        for e in history.events:
            out["events"] += 1
            if e.HasField("workflow_task_completed_event_attributes"):
                out["workflow_tasks"] += 1
            elif e.HasField("marker_recorded_event_attributes"):
                marker = e.marker_recorded_event_attributes
                markers[marker.marker_name] += 1
                if marker.marker_name == "core_local_activity":
                    local[json.loads(marker.details["data"].payloads[0].data)["activity_type"]] += 1
            elif e.HasField("activity_task_scheduled_event_attributes"):
                activities[e.activity_task_scheduled_event_attributes.activity_type.name] += 1
    out["activities"] = activities
    out["markers"] = markers
    out["local_activities"] = local
    return out


async def measure(stack: Stack, rooms: int, responders: int, concurrency: int) -> dict[str, Any]:
    path = Path(tempfile.mkdtemp(prefix="warroom-cost-")) / "writes.json"
    stack.start_worker(module="bench.count_writes", WARROOM_BENCH_WRITES=str(path))
    assert stack.worker is not None
    await _until(path.exists, timeout=120)
    await asyncio.sleep(3)  # the worker's start (migrations, adapters) is over
    api = WriteCounter()
    api.install()  # this process: the API's writes; the bench itself only reads
    w0, a0, calls0 = writes(path), api.snapshot(), await _calls(stack)
    cpu0, rss0 = cpu_seconds(stack.worker.pid), stack.worker_rss_mb()

    sem = asyncio.Semaphore(concurrency)

    async def one() -> str:
        async with sem:
            incident_id = await _open(stack, responders)
            (await stack.api.post(f"/api/v1/incidents/{incident_id}/war-room", json={})).raise_for_status()
            return incident_id

    t0 = time.time()
    ids = await asyncio.gather(*(one() for _ in range(rooms)))

    def all_ready() -> float | None:
        ready = [_room_ready_at(stack, i, responders) for i in ids]
        return max(ready) if all(r is not None for r in ready) else None  # type: ignore[type-var]

    burst = await _until(all_ready, timeout=1800, every=0.25) - t0
    await _quiet(stack, path)
    cpu_open = cpu_seconds(stack.worker.pid) - cpu0
    rss_open = stack.worker_rss_mb()

    async def life(incident_id: str) -> None:
        async with sem:
            act = f"/api/v1/incidents/{incident_id}/actions"
            r = await stack.api.post(act, json={"action": "acknowledge", "actor": "bench@cost.bench.example"})
            r.raise_for_status()
            incident = (await stack.api.get(f"/api/v1/incidents/{incident_id}")).json()["incident"]
            people = [{"email": p["email"]} for p in incident["responders"]]
            people.append({"email": f"late-{uuid.uuid4().hex[:8]}@cost.bench.example"})
            r = await stack.api.put(f"/api/v1/incidents/{incident_id}/responders", json={"responders": people})
            r.raise_for_status()
            r = await stack.api.post(act, json={"action": "close", "actor": "bench@cost.bench.example"})
            r.raise_for_status()

            async def dismissed() -> bool:
                r = await stack.api.delete(f"/api/v1/incidents/{incident_id}/war-room")
                return r.status_code == 200

            await _until(dismissed, timeout=300, every=0.5)

    t1 = time.time()
    await asyncio.gather(*(life(i) for i in ids))
    with stack.store.db.session() as s:
        gone = s.scalar(
            select(func.count())
            .select_from(SandboxRoomRow)
            .where(SandboxRoomRow.incident_id.in_(ids), SandboxRoomRow.state == "dismissed")
        )
    lives = time.time() - t1
    await _quiet(stack, path)
    cpu_all = cpu_seconds(stack.worker.pid) - cpu0
    w1, a1, calls1 = writes(path), api.snapshot(), await _calls(stack)
    hist = await _history(stack)
    with stack.store.db.session() as s:
        timeline = s.scalar(select(func.count()).select_from(TimelineRow).where(TimelineRow.incident_id.in_(ids)))
    return {
        "rooms": rooms,
        "responders": responders,
        "latency_ms": stack.settings.platform("sandbox").latency_ms,
        "dismissed": gone,
        "history": hist,
        "worker_writes": diff(w1["statements"], w0["statements"]),
        "timeline_rows": timeline,
        "api_writes": diff(a1["statements"], a0["statements"]),
        "im_calls": diff(dict(calls1), dict(calls0)),
        "burst_seconds": burst,
        "lives_seconds": lives,
        "worker_cpu_open": cpu_open,
        "worker_cpu_all": cpu_all,
        "rss_before_mb": rss0,
        "rss_open_mb": rss_open,
    }


def _split(c: Counter[str]) -> tuple[int, int]:
    """(store writes, sandbox-IM writes): the sandbox's tables stand in for the platform."""
    im = sum(v for k, v in c.items() if k.split()[1].startswith("sandbox_"))
    return sum(c.values()) - im, im


def _by(c: Counter[str], n: int) -> str:
    return ", ".join(f"{k} {v / n:.1f}" for k, v in c.most_common())


def report(m: dict[str, Any]) -> list[tuple[str, str, str]]:
    n = m["rooms"]
    h = m["history"]
    acts = h["activities"]
    w_store, w_im = _split(m["worker_writes"])
    a_store, _ = _split(m["api_writes"])
    store_only = Counter({k: v for k, v in m["worker_writes"].items() if not k.split()[1].startswith("sandbox_")})
    api_only = Counter({k: v for k, v in m["api_writes"].items() if not k.split()[1].startswith("sandbox_")})
    return [
        ("workflows", f"{sum(h['workflows'].values()) / n:.2f}", _by(h["workflows"], n)),
        ("history events", f"{h['events'] / n:.1f}", "all runs of every workflow on the queue"),
        ("workflow tasks", f"{h['workflow_tasks'] / n:.1f}", "WorkflowTaskCompleted"),
        ("activities", f"{sum(acts.values()) / n:.1f}", _by(acts, n)),
        (
            "local activities",
            f"{h['markers'].get('core_local_activity', 0) / n:.1f}",
            _by(h["local_activities"], n) + "; MarkerRecorded: " + _by(h["markers"], n),
        ),
        (
            "store writes, worker",
            f"{w_store / n:.1f}",
            _by(store_only, n) + f"; {m['timeline_rows'] / n:.1f} timeline rows; sandbox IM tables {w_im / n:.1f} more",
        ),
        ("store writes, API", f"{a_store / n:.1f}", _by(api_only, n) or "none"),
        ("IM calls", f"{sum(m['im_calls'].values()) / n:.1f}", _by(m["im_calls"], n)),
        (
            "burst: rooms ready",
            f"{n / m['burst_seconds']:.1f} rooms/s",
            f"{n} rooms ({m['responders']} new responders each) ready {m['burst_seconds']:.1f} s after the first"
            " request",
        ),
        (
            "worker CPU per room",
            f"{m['worker_cpu_all'] / n * 1000:.0f} ms",
            f"{m['worker_cpu_open'] / n * 1000:.0f} ms of it to open the room; the lives took"
            f" {m['lives_seconds']:.1f} s",
        ),
        (
            "worker RSS per cached incident",
            f"{(m['rss_open_mb'] - m['rss_before_mb']) / n * 1024:.0f} KB",
            f"{m['rss_before_mb']:.0f} MB idle → {m['rss_open_mb']:.0f} MB with {n} rooms open",
        ),
    ]


async def main(args: argparse.Namespace) -> None:
    async with running_stack("benchcost", args.latency_ms, args.database_url) as stack:
        console.print(f"cost of {args.rooms} rooms …")
        m = await measure(stack, args.rooms, args.responders, args.concurrency)
    table = Table(
        title=f"War Room: cost per room ({m['rooms']} rooms, {m['responders']} responders, "
        f"L = {args.latency_ms:g} ms, {os.cpu_count()} cores; counts exact, rates noisy)"
    )
    for col in ("per room", "measured", "detail"):
        table.add_column(col)
    for row in report(m):
        table.add_row(*row)
    console.print(table)
    if m["dismissed"] != m["rooms"]:
        console.print(f"[red]only {m['dismissed']} of {m['rooms']} rooms were dismissed[/]")
    if args.json:
        print(json.dumps(m, indent=2, default=dict))


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rooms", type=int, default=20)
    p.add_argument("--responders", type=int, default=5)
    p.add_argument("--latency-ms", type=float, default=25.0)
    p.add_argument("--concurrency", type=int, default=64, help="API requests in flight at once")
    p.add_argument("--database-url", default="", help="e.g. postgresql+psycopg://127.0.0.1/test")
    p.add_argument("--json", action="store_true", help="also print the measurements as JSON")
    asyncio.run(main(p.parse_args()))


if __name__ == "__main__":
    cli()
