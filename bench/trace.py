"""Where one room's time goes: the request, the workflow's history and the sandbox's records of
a single room and a single acknowledgement, on one clock, as milliseconds after the request.

    .venv/bin/python -m bench.trace [--latency-ms 25] [--responders 5] [--rooms 3]

The same stack as `bench.run` (dev server, worker process, API in this process); the last of
`--rooms` rooms is printed (the first ones warm the worker up). Like `bench.run`, the room is
requested as soon as the incident exists (`--gap` waits in between).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from bench.run import Stack, _card_edited, _open_incident, _room_ready_at, _until, running_stack
from warroom.im.sandbox.tables import SandboxCallRow, SandboxMemberRow, SandboxMessageRow, SandboxRoomRow
from warroom.messages import workflow_id

console = Console()


def _event_name(event) -> str:  # type: ignore[no-untyped-def]
    kind = event.WhichOneof("attributes").removesuffix("_event_attributes")
    attrs = getattr(event, event.WhichOneof("attributes"))
    if kind == "activity_task_scheduled":
        return f"{kind} {attrs.activity_type.name}"
    return kind


async def _events(stack: Stack, incident_id: str, since: float) -> list[tuple[float, str]]:
    handle = stack.env.client.get_workflow_handle(workflow_id(incident_id))
    out = []
    for e in (await handle.fetch_history()).events:
        at = e.event_time.ToDatetime().timestamp()
        if at >= since - 0.001:
            out.append((at, "history  " + _event_name(e)))
    return out


def _sandbox(stack: Stack, incident_id: str, since: float) -> list[tuple[float, str]]:
    out = []
    with stack.store.db.session() as s:
        room = s.scalar(select(SandboxRoomRow).where(SandboxRoomRow.incident_id == incident_id))
        chats = {None, room.chat_id} if room else {None}
        for c in s.scalars(select(SandboxCallRow).where(SandboxCallRow.at >= datetime.fromtimestamp(since, UTC))):
            if c.chat_id in chats:
                out.append((c.at.timestamp(), f"sandbox  call {c.method}" + (f" [{c.fault}]" if c.fault else "")))
        if room:
            out.append((room.created_at.timestamp(), "sandbox  room created"))
            for m in s.scalars(select(SandboxMemberRow).where(SandboxMemberRow.chat_id == room.chat_id)):
                out.append((m.joined_at.timestamp(), f"sandbox  {m.user_id} joined"))
            for msg in s.scalars(select(SandboxMessageRow).where(SandboxMessageRow.chat_id == room.chat_id)):
                out.append((msg.created_at.timestamp(), "sandbox  card posted" if msg.card else "sandbox  message"))
                if msg.edited_at:
                    out.append((msg.edited_at.timestamp(), f"sandbox  card edited ({msg.edits} edits)"))
    return [(t, what) for t, what in out if t >= since - 0.001]


def _print(title: str, t0: float, rows: list[tuple[float, str]]) -> None:
    table = Table(title=title)
    table.add_column("ms", justify="right")
    table.add_column("what")
    for at, what in sorted(rows):
        table.add_row(f"{(at - t0) * 1000:.1f}", what)
    console.print(table)


async def main(args: argparse.Namespace) -> None:
    async with running_stack("trace", args.latency_ms, args.database_url) as stack:
        api = stack.api
        for _ in range(args.rooms):
            incident_id = await _open_incident(stack, args.responders)
            await asyncio.sleep(args.gap)
            t0 = time.time()
            r = await api.post(f"/api/v1/incidents/{incident_id}/war-room", json={})
            answered = time.time()
            r.raise_for_status()
            await _until(lambda i=incident_id: _room_ready_at(stack, i, args.responders))
            await asyncio.sleep(1.0)
            t1 = time.time()
            r = await api.post(
                f"/api/v1/incidents/{incident_id}/actions", json={"action": "acknowledge", "actor": "t@x.example"}
            )
            acked = time.time()
            r.raise_for_status()
            await _until(lambda i=incident_id, t=t1: _card_edited(stack, i, "acknowledged", t))
            await asyncio.sleep(0.5)
        rows = await _events(stack, incident_id, t0) + _sandbox(stack, incident_id, t0)
    _print(
        f"room (L = {args.latency_ms:g} ms, {args.responders} responders)",
        t0,
        [(t, w) for t, w in rows if t < t1] + [(answered, "api      answered 201")],
    )
    _print("acknowledge → card", t1, [(t, w) for t, w in rows if t >= t1] + [(acked, "api      answered")])


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latency-ms", type=float, default=25.0)
    p.add_argument("--responders", type=int, default=5)
    p.add_argument("--rooms", type=int, default=3)
    p.add_argument("--gap", type=float, default=0.0, help="seconds between opening the incident and its room")
    p.add_argument("--database-url", default="")
    asyncio.run(main(p.parse_args()))


if __name__ == "__main__":
    cli()
