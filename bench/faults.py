"""Rooms opened under IM faults: attempts and seconds per room, against the rate-limit floor.

    .venv/bin/python -m bench.faults                      # 20 rooms, 30 % faults on every call
    .venv/bin/python -m bench.faults --rooms 6 --kill-every 15

The real stack: a Temporal dev server, `python -m workers.main` as its own process (SIGKILLed
and restarted every `--kill-every` seconds when asked), and the fake Slack Web API through
slack-sdk, where a `--fault-rate` share of all calls meets a random fault (429 with Retry-After,
503, a connection dropped before or after the effect, an answer after the client's timeout).
Each incident has three responders, none of them linked yet; all rooms are asked for at once.

Per room: the attempts of its `im_open_room` activity (from the workflow history) and the
seconds from asking to the room being ready (active, card posted, everyone invited). The floor
is what Slack's Tier budgets allow for the calls the run made (a faulted call takes its token
too): for the method they bound most, its calls beyond the first half-minute's allowance at the
tier's rate (20 rooms of 3 new people make `users.lookupByEmail`, Tier 3, the bound).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console

from connection.client import connect
from starters.dev import DevOptions, TemporalDevServer
from starters.service import WarRoomService
from tests.fakes.slack_api import SIGNING_SECRET, TOKEN, running_fake_slack
from tests.serving import free_port
from warroom.im.slack.limits import METHOD_TIER, TIER_PER_MINUTE
from warroom.models import IncidentIn, Responder, RoomState, Source
from warroom.settings import Settings
from warroom.store import Store

console = Console()


def budget_floor(calls: Counter[str]) -> tuple[float, str]:
    """Seconds the Tier budgets need for the calls this run made (faulted ones included: each
    took a token), and the method that needs the longest."""
    floors = {}
    for method, n in calls.items():
        if method not in METHOD_TIER:
            continue
        per_minute = TIER_PER_MINUTE[METHOD_TIER[method]]
        floors[method] = max(n - per_minute / 2, 0) * 120 / per_minute  # half at once, then half the rate
    method = max(floors, key=floors.__getitem__)
    return floors[method], method


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.proc, self.kills = env, log, None, 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "workers.main"], env=self.env, stdout=out, stderr=out)

    def kill(self, *, counted: bool = True) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.kills += counted


async def _attempts(svc: WarRoomService, incident_id: str, causes: Counter[str]) -> int:
    """The attempts `im_open_room` took; why each earlier attempt failed goes into `causes`."""
    scheduled: set[int] = set()
    starts = 0
    async for e in svc.client.get_workflow_handle(f"incident-{incident_id}").fetch_history_events():
        scheduling = e.activity_task_scheduled_event_attributes
        if e.HasField("activity_task_scheduled_event_attributes") and scheduling.activity_type.name == "im_open_room":
            scheduled.add(e.event_id)
        elif (
            e.HasField("activity_task_started_event_attributes")
            and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
        ):
            started = e.activity_task_started_event_attributes
            starts = max(starts, started.attempt)
            if started.HasField("last_failure"):
                causes[_cause(started.last_failure.message)] += 1
    return starts


def _cause(message: str) -> str:
    """A failure message without its ids and numbers: "slack conversations.create: budget …"."""
    return re.sub(r"[0-9.]+s?\b", "N", message)[:90]


def _ready(store: Store, incident_id: str) -> bool:
    room = store.rooms.current(incident_id)
    return (
        room is not None
        and room.state is RoomState.ACTIVE
        and bool(room.card_handle)
        and len(room.members) == 3
        and all(m.state.value == "invited" for m in room.members)
    )


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="warroom-faults-"))
    async with running_fake_slack() as fake:
        settings = Settings(
            WARROOM_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
            WARROOM_DATABASE_URL=f"sqlite:///{tmp / 'warroom.db'}",
            WARROOM_TASK_QUEUE="faults",
            WARROOM_IM_PLATFORM="slack",
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_BASE_URL=fake.url,
            WARROOM_SLACK_TIMEOUT=1.5,
            _env_file=None,
        )
        port = int(settings.temporal_address.rsplit(":", 1)[1])
        server = await TemporalDevServer.start(DevOptions(data_dir=tmp, temporal_port=port, ui=False), "default")
        await server.wait_ready(settings, 60)
        store = Store(settings.database_url)
        env = os.environ | {
            "WARROOM_TEMPORAL_ADDRESS": settings.temporal_address,
            "WARROOM_DATABASE_URL": settings.database_url,
            "WARROOM_TASK_QUEUE": settings.task_queue,
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_BASE_URL": fake.url,
            "WARROOM_SLACK_TIMEOUT": "1.5",
        }
        worker = Worker(env, tmp / "worker.log")
        worker.start()
        try:
            svc = WarRoomService(await connect(settings), store, settings, wait=1)
            ids = []
            for n in range(args.rooms):
                people = [Responder(email=f"p{n}-{i}@faults.example") for i in range(3)]
                for p in people:
                    fake.add_user(p.email or "")
                incident, _ = await svc.upsert_incident(
                    IncidentIn(id=f"f{n}", title=f"faults {n}", responders=people), actor="bench", source=Source.API
                )
                ids.append(incident.id)
            fake.chaos(args.fault_rate)
            asked = time.monotonic()
            await asyncio.gather(*(_ask(svc, iid) for iid in ids))
            ready: dict[str, float] = {}

            async def havoc() -> None:
                while args.kill_every:
                    await asyncio.sleep(args.kill_every)
                    worker.kill()
                    worker.start()

            killing = asyncio.create_task(havoc())
            while len(ready) < len(ids) and time.monotonic() - asked < args.timeout:
                for iid in ids:
                    if iid not in ready and _ready(store, iid):
                        ready[iid] = time.monotonic() - asked
                await asyncio.sleep(0.2)
            killing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await killing
            causes: Counter[str] = Counter()
            attempts = [await _attempts(svc, iid, causes) for iid in ids]
        finally:
            worker.kill(counted=False)
            store.close()
            await server.stop()

    seconds = sorted(ready.values())
    faults = sum(1 for c in fake.calls if c.outcome.startswith("fault:"))
    floor, bound_by = budget_floor(Counter(c.method for c in fake.calls))
    console.print(
        f"{args.rooms} rooms, {args.fault_rate:.0%} faults ({faults} of {len(fake.calls)} calls), "
        f"worker killed {worker.kills} times"
    )
    console.print(
        f"ready: {len(ready)}/{len(ids)} within {args.timeout:.0f}s; "
        f"im_open_room attempts per room: mean {statistics.mean(attempts):.2f}, max {max(attempts)}"
    )
    outcomes: dict[str, Counter[str]] = {}
    for c in fake.calls:
        outcomes.setdefault(c.method, Counter())[c.outcome] += 1
    for method, seen in sorted(outcomes.items(), key=lambda kv: -sum(kv[1].values())):
        detail = ", ".join(f"{k} {v}" for k, v in seen.most_common())
        console.print(f"  {method}: {sum(seen.values())} calls ({detail})", markup=False)
    for cause, n in causes.most_common(8):
        console.print(f"  {n:4d} attempts failed: {cause}", markup=False)
    if seconds:
        p50 = statistics.median(seconds)
        console.print(
            f"seconds to ready: p50 {p50:.1f}, max {seconds[-1]:.1f}; "
            f"floor ({bound_by} budget for the calls made) {floor:.1f}s → last room at "
            f"{seconds[-1] / max(floor, 1):.2f}x floor"
        )


async def _ask(svc: WarRoomService, incident_id: str) -> None:
    for _ in range(50):
        try:
            await svc.create_room(incident_id, platform="slack", actor="bench", source=Source.API)
            return
        except Exception:  # asking again is the point: the room is created once
            await asyncio.sleep(0.5)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--kill-every", type=float, default=0.0, help="SIGKILL the worker every N seconds")
    parser.add_argument("--timeout", type=float, default=300.0)
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
