"""Operational routes: health and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from starters.api.deps import app_state
from warroom.telemetry.metrics import connection_gauges, worker_metrics

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
    body: dict[str, object] = {"status": "ok" if ok else "unavailable", "checks": checks}
    connections = state.connection_statuses()
    if connections:  # shown, not judged: a platform's outage must not take the API out of rotation
        body["connections"] = connections
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """War Room's metrics in Prometheus text format: incidents by status, war rooms by platform and
    state, refused IM callbacks; plus the worker's `warroom_` metrics when this process runs one
    (`warroom dev`)."""
    state = app_state(request)
    ours = state.metrics
    in_process = worker_metrics(create=False)
    body = await asyncio.to_thread(
        lambda: ours.render() + (generate_latest(in_process.registry) if in_process is not None else b"")
    )
    body += connection_gauges(state.connection_statuses()).encode()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
