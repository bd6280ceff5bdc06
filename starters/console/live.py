"""Live pages: server-sent events that tell an open page something changed.

One `LiveHub` per API process looks once a second, in one SQL query, at a fingerprint of each
incident some page watches (the incident's version, its newest timeline entry and its room's
last change), and of the incident list when a list page is open. Each open page holds one
event stream and is told only when its fingerprint moved; the page then fetches itself once and
swaps the parts that changed. Fifty open pages cost one query a second, not fifty.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from starters.api.deps import app_state
from starters.console.auth import SignInNeeded, identify
from warroom.store import Store
from warroom.store.tables import IncidentRow, RoomRow, TimelineRow

router = APIRouter(include_in_schema=False)
LIST = "*"  # the key of the incident list
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


class LiveHub:
    def __init__(self, store: Store, every: float = POLL_SECONDS) -> None:
        self.store = store
        self.every = every
        self.watchers: dict[str, int] = {}
        self.marks: dict[str, tuple] = {}
        self.changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def _fingerprints(self, keys: list[str]) -> dict[str, tuple]:
        out: dict[str, tuple] = {}
        ids = [k for k in keys if k != LIST]
        with self.store.db.session() as s:
            if ids:
                inc = dict(s.execute(select(IncidentRow.id, IncidentRow.version).where(IncidentRow.id.in_(ids))).all())
                seq = dict(
                    s.execute(
                        select(TimelineRow.incident_id, func.max(TimelineRow.seq))
                        .where(TimelineRow.incident_id.in_(ids))
                        .group_by(TimelineRow.incident_id)
                    ).all()
                )
                room = dict(
                    s.execute(
                        select(RoomRow.incident_id, func.max(RoomRow.updated_at))
                        .where(RoomRow.incident_id.in_(ids))
                        .group_by(RoomRow.incident_id)
                    ).all()
                )
                for i in ids:
                    out[i] = (inc.get(i), seq.get(i), str(room.get(i)))
            if LIST in keys:
                out[LIST] = (
                    tuple(s.execute(select(func.count(), func.max(IncidentRow.updated_at))).one()),
                    str(s.scalar(select(func.max(RoomRow.updated_at)))),
                )
        return out

    async def _run(self) -> None:
        while self.watchers:
            try:
                marks = await asyncio.to_thread(self._fingerprints, list(self.watchers))
            except Exception:  # the database is away for a moment: look again next time
                marks = {}
            if any(self.marks.get(k) != v for k, v in marks.items()):
                self.marks.update(marks)
                async with self.changed:
                    self.changed.notify_all()
            await asyncio.sleep(self.every)
        self._task = None

    async def watch(self, key: str, request: Request) -> AsyncIterator[str]:
        """Events for one page: `change` when its fingerprint moves, a comment now and then."""
        self.watchers[key] = self.watchers.get(key, 0) + 1
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        try:
            if key not in self.marks:  # where this page starts from, before it is told it is live
                self.marks.update(await asyncio.to_thread(self._fingerprints, [key]))
            seen = self.marks.get(key)
            yield "retry: 3000\n\n"
            while not await request.is_disconnected():
                async with self.changed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.changed.wait(), KEEPALIVE_SECONDS)
                now = self.marks.get(key)
                if now != seen:
                    if seen is not None:
                        yield f"event: change\ndata: {key}\n\n"
                    seen = now
                else:
                    yield ": idle\n\n"
        finally:
            self.watchers[key] -= 1
            if not self.watchers[key]:
                del self.watchers[key]


def hub(request: Request) -> LiveHub:
    state = app_state(request)
    if not hasattr(state, "live"):
        state.live = LiveHub(state.store)  # type: ignore[attr-defined]
    return state.live  # type: ignore[attr-defined]


async def _stream(request: Request, key: str) -> StreamingResponse:
    try:
        await identify(request)
    except SignInNeeded:
        return StreamingResponse(iter(["event: signin\ndata: \n\n"]), media_type="text/event-stream", status_code=200)
    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    return StreamingResponse(hub(request).watch(key, request), media_type="text/event-stream", headers=headers)


@router.get("/live")
async def list_live(request: Request) -> StreamingResponse:
    return await _stream(request, LIST)


@router.get("/incidents/{incident_id}/live")
async def incident_live(request: Request, incident_id: str) -> StreamingResponse:
    return await _stream(request, incident_id[:64])
