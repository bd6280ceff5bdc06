"""Operational routes: health and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections import Counter

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import func, select

from starters.api.app import app_state
from warroom.store.tables import IncidentRow, RoomRow

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """200 when both Temporal and the database answer; 503 naming what does not."""
    state = app_state(request)
    checks: dict[str, str] = {}
    try:
        await asyncio.to_thread(state.store.db.ping)
        checks["database"] = "ok"
    except Exception as e:
        checks["database"] = f"unreachable: {e}".splitlines()[0]
    try:
        client = await state.client()
        await asyncio.wait_for(client.service_client.check_health(), 5)
        checks["temporal"] = "ok"
    except Exception as e:
        checks["temporal"] = f"unreachable: {getattr(e, 'message', e)}".splitlines()[0]
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics(request: Request) -> PlainTextResponse:
    """Incidents by status and war rooms by platform and state, in Prometheus text format."""
    db = app_state(request).store.db

    def read() -> tuple[list, Counter]:
        with db.session() as s:
            incidents = s.execute(select(IncidentRow.status, func.count()).group_by(IncidentRow.status)).all()
            latest = (
                select(RoomRow.incident_id, func.max(RoomRow.generation).label("g")).group_by(RoomRow.incident_id)
            ).subquery()
            rooms = s.execute(
                select(RoomRow.platform, RoomRow.state).join(
                    latest, (RoomRow.incident_id == latest.c.incident_id) & (RoomRow.generation == latest.c.g)
                )
            ).all()
        return incidents, Counter((p, st) for p, st in rooms)

    incidents, rooms = await asyncio.to_thread(read)
    lines = ["# HELP warroom_incidents Incidents by status.", "# TYPE warroom_incidents gauge"]
    lines += [f'warroom_incidents{{status="{status}"}} {n}' for status, n in sorted(incidents)]
    lines += ["# HELP warroom_rooms War rooms by platform and state.", "# TYPE warroom_rooms gauge"]
    lines += [f'warroom_rooms{{platform="{p}",state="{st}"}} {n}' for (p, st), n in sorted(rooms.items())]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
