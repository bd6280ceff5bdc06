"""Chaos: many incidents live through their whole life while everything around them fails.

30 % of sandbox IM calls fail (429 with retry-after, 503, timeout *after* the effect), the worker
process is killed with SIGKILL every few seconds and restarted, and the Temporal dev server
(file-backed) is restarted once. Afterwards every incident is checked at the sandbox platform's
own records: one room, each member invited once, one status card (edited, never re-posted) showing
`closed`, the room dismissed, and a complete timeline in order.

Short run (CI): part of the default test command. Long run:

    WARROOM_CHAOS_INCIDENTS=40 WARROOM_CHAOS_KILL_EVERY=15 .venv/bin/pytest -m chaos tests/chaos -s
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from sqlalchemy import select
from temporalio.service import RPCError

from starters.api.app import create_app
from starters.dev import DevOptions, TemporalDevServer
from starters.service import WarRoomService
from tests.serving import free_port
from warroom.im.sandbox.platform import SandboxPlatform
from warroom.models import Action, IncidentIn, Responder, RoomState, Source
from warroom.settings import Settings
from warroom.store import Store
from warroom.store.tables import SandboxCallRow

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]
T = TypeVar("T")

INCIDENTS = int(os.environ.get("WARROOM_CHAOS_INCIDENTS", "6"))
KILL_EVERY = float(os.environ.get("WARROOM_CHAOS_KILL_EVERY", "4"))
FAULT_RATE = float(os.environ.get("WARROOM_CHAOS_FAULT_RATE", "0.3"))
ANN, BOB, CAT = "ann@chaos.example", "bob@chaos.example", "cat@chaos.example"


class Chaos:
    """The worker as a child process that gets SIGKILLed, and the dev server that gets restarted."""

    def __init__(self, tmp: Path, settings: Settings) -> None:
        self.settings = settings
        self.opts = DevOptions(data_dir=tmp, temporal_port=settings_port(settings), ui=False)
        self.server: TemporalDevServer | None = None
        self.worker: subprocess.Popen | None = None
        self.kills = 0
        self.server_restarts = 0

    async def start_server(self) -> None:
        self.server = await TemporalDevServer.start(self.opts, self.settings.temporal_namespace)
        await self.server.wait_ready(self.settings, 60)

    async def restart_server(self) -> None:
        assert self.server is not None
        await self.server.stop()
        await self.start_server()
        self.server_restarts += 1

    def start_worker(self) -> None:
        env = {**os.environ, **{k: str(v) for k, v in self.env().items()}}
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "workers.main"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def kill_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGKILL)
            self.worker.wait()
            self.kills += 1

    def env(self) -> dict[str, object]:
        s = self.settings
        return {
            "WARROOM_TEMPORAL_ADDRESS": s.temporal_address,
            "WARROOM_DATABASE_URL": s.database_url,
            "WARROOM_TASK_QUEUE": s.task_queue,
            "WARROOM_SANDBOX_FAULT_RATE": s.sandbox_fault_rate,
            "WARROOM_SANDBOX_LATENCY_MS": s.sandbox_latency_ms,
            "WARROOM_SANDBOX_SIGNING_SECRET": s.sandbox_signing_secret.get_secret_value(),
        }

    async def stop(self) -> None:
        self.kill_worker()
        if self.server is not None:
            await self.server.stop()


def settings_port(settings: Settings) -> int:
    return int(settings.temporal_address.rsplit(":", 1)[1])


async def _retry(op: Callable[[], Awaitable[T]], what: str, timeout: float = 300) -> T:
    """Retry `op` while Temporal is restarting (the driver is a client like any other)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await op()
        except (RPCError, httpx.HTTPError, RuntimeError) as e:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: still failing after {timeout}s: {e}") from e
            await asyncio.sleep(0.5)


async def _life(svc: WarRoomService, api: httpx.AsyncClient, n: int) -> str:
    """One incident's whole life, every step through the public paths."""
    incident, _ = await _retry(
        lambda: svc.upsert_incident(
            IncidentIn(id=f"chaos-{n}", title=f"chaos {n}", responders=[Responder(email=ANN), Responder(email=BOB)]),
            actor=ANN,
            source=Source.API,
        ),
        "open",
    )
    iid = incident.id
    room = await _retry(lambda: _room(svc, iid), "create room")
    await _retry(
        lambda: svc.set_responders(iid, [Responder(email=ANN), Responder(email=CAT)], actor=ANN, source=Source.API),
        "responders",
    )

    async def click() -> None:  # Bob is no longer a responder, Ann is: through the signed callback path
        r = await api.post(f"/sandbox/api/rooms/{room}/actions", json={"user": ANN, "action": "acknowledge"})
        if r.status_code >= 500:
            raise httpx.HTTPError(f"click: {r.status_code} {r.text}")
        assert r.status_code < 400, r.text

    await _retry(click, "click")
    await _until_status(svc, iid, "acknowledged")
    await _retry(lambda: svc.act(iid, Action.CLOSE, actor=ANN, source=Source.API, request_id=f"close-{iid}"), "close")
    await _until_status(svc, iid, "closed")  # the answer may have been "accepted, still applying" (202)
    await _retry(lambda: _dismissed(svc, iid), "dismiss", timeout=600)
    return iid


async def _room(svc: WarRoomService, iid: str) -> str:
    out = await svc.create_room(iid, platform="sandbox", actor=ANN, source=Source.API)
    if not out.done or out.value.chat_id is None:
        raise RuntimeError("room not ready yet")
    return out.value.chat_id


async def _until_status(svc: WarRoomService, iid: str, status: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while svc.store.incidents.get(iid).status.value != status:
        assert time.monotonic() < deadline, f"{iid} never became {status}"
        await asyncio.sleep(0.2)


async def _dismissed(svc: WarRoomService, iid: str) -> None:
    out = await svc.dismiss_room(iid, actor=ANN, source=Source.API)
    if not out.done or out.value.state is not RoomState.DISMISSED:
        raise RuntimeError("not dismissed yet")


async def test_nothing_is_lost_or_done_twice_under_chaos(tmp_path: Path) -> None:
    settings = Settings(
        WARROOM_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        WARROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'chaos.db'}",
        WARROOM_TASK_QUEUE="chaos",
        WARROOM_SANDBOX_FAULT_RATE=FAULT_RATE,
        WARROOM_SANDBOX_LATENCY_MS=5,
        WARROOM_SANDBOX_SIGNING_SECRET="chaos",
        _env_file=None,
    )
    store = Store(settings.database_url)
    chaos = Chaos(tmp_path, settings)
    await chaos.start_server()
    chaos.start_worker()
    app = create_app(settings, store=store)
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://chaos") as api:
            svc = WarRoomService(await app.state.warroom.client(), store, settings, wait=10)
            lives = asyncio.gather(*(_life(svc, api, n) for n in range(INCIDENTS)))

            async def havoc() -> None:
                rng = random.Random(7)
                restarted = False
                while True:
                    await asyncio.sleep(KILL_EVERY * rng.uniform(0.7, 1.3))
                    chaos.kill_worker()
                    if not restarted and chaos.kills == 2:
                        await chaos.restart_server()
                        restarted = True
                    chaos.start_worker()

            monkey = asyncio.create_task(havoc())
            try:
                ids = await lives
            finally:
                monkey.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await monkey
        elapsed = time.monotonic() - started
        _check(store, ids)
        _report(store, chaos, ids, elapsed)
        assert chaos.kills >= 2 and chaos.server_restarts == 1
    finally:
        await chaos.stop()
        store.close()


def _check(store: Store, ids: list[str]) -> None:
    sandbox = SandboxPlatform(store.db)
    for iid in ids:
        rooms = [r for r in sandbox.rooms() if r.incident_id == iid]
        assert len(rooms) == 1, f"{iid}: {len(rooms)} rooms"
        room = sandbox.room(rooms[0].chat_id)
        assert room.state == "dismissed", f"{iid}: room {room.state}"
        joins = {m.email: m.joins for m in room.members}
        assert joins == {ANN: 1, BOB: 1, CAT: 1}, f"{iid}: joins {joins}"
        cards = [m for m in room.messages if m.card]
        assert len(cards) == 1, f"{iid}: {len(cards)} cards"
        assert cards[0].card["status"] == "closed" and cards[0].edits >= 1, f"{iid}: card {cards[0].card}"
        entries = store.timeline.list(iid)
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1)), f"{iid}: timeline has gaps"
        assert [e.at for e in entries] == sorted(e.at for e in entries), f"{iid}: timeline out of order"
        kinds = Counter(e.kind for e in entries if e.outcome.value == "ok")
        for kind in ("incident.created", "room.created", "card.posted", "action.acknowledge", "action.close"):
            assert kinds[kind] == 1, f"{iid}: {kind} x{kinds[kind]}"
        assert kinds["room.dismissed"] == 1 and kinds["member.invited"] == 3, f"{iid}: {kinds}"
        assert store.rooms.current(iid).state is RoomState.DISMISSED  # type: ignore[union-attr]


def _report(store: Store, chaos: Chaos, ids: list[str], elapsed: float) -> None:
    with store.db.session() as s:
        faults = Counter(f or "ok" for f in s.scalars(select(SandboxCallRow.fault)))
    print(
        f"\nchaos: {len(ids)} incidents in {elapsed:.0f}s; worker SIGKILLed {chaos.kills} times, Temporal restarted "
        f"{chaos.server_restarts} time(s); IM calls: {dict(faults)}; found: one room, one card (closed), "
        f"3 single joins and a gapless timeline per incident"
    )
