"""Incident source routes: deliveries from Alertmanager, Grafana, PagerDuty and generic webhooks,
and the rules in force. Each delivery is verified on its raw bytes first, then parsed whole
before anything is stored, so a bad one changes nothing."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from starters.api.deps import AppState, app_state
from starters.api.errors import ApiError
from warroom.sources.alertmanager import AlertmanagerSource
from warroom.sources.base import IncidentSource, SourceError
from warroom.sources.grafana import GrafanaSource
from warroom.sources.pagerduty import PagerDutySource
from warroom.sources.webhook import WebhookSource

router = APIRouter(tags=["incident sources"])
rules_router = APIRouter(tags=["incident sources"])
audit = logging.getLogger("warroom.audit")


def _source(state: AppState, name: str, hook: str | None = None) -> IncidentSource:
    s = state.settings
    if name == "alertmanager":
        return AlertmanagerSource(s.alertmanager_token.get_secret_value())
    if name == "grafana":
        return GrafanaSource(s.grafana_token.get_secret_value())
    if name == "pagerduty":
        return PagerDutySource(s.pagerduty_webhook_secrets.get_secret_value().split(","))
    webhook = state.intake.rules.webhooks.get(hook or "")
    if webhook is None:
        raise ApiError(404, "not_found", f"no webhook {hook!r} in the rules file")
    return WebhookSource(hook or "", webhook)


async def _deliver(request: Request, source: IncidentSource) -> JSONResponse:
    state = app_state(request)
    body = await request.body()
    peer = request.client.host if request.client else "?"
    try:
        source.verify(request.headers, body)
        events = source.parse(body)
    except SourceError as e:
        audit.warning("refused %s delivery from %s (%s): %s", source.name, peer, e.status, e.reason)
        code = "unauthorized" if e.status == 401 else "invalid"
        raise ApiError(e.status, code, e.reason) from None
    svc = await state.service()
    taken = [await state.intake.take(svc, event) for event in events]
    return JSONResponse(
        {"incidents": [{"id": t.incident_id, "outcome": t.outcome, "room": t.room} for t in taken]},
        status_code=202,
    )


@router.post("/sources/alertmanager", status_code=202)
async def alertmanager(request: Request) -> JSONResponse:
    return await _deliver(request, _source(app_state(request), "alertmanager"))


@router.post("/sources/grafana", status_code=202)
async def grafana(request: Request) -> JSONResponse:
    return await _deliver(request, _source(app_state(request), "grafana"))


@router.post("/sources/pagerduty", status_code=202)
async def pagerduty(request: Request) -> JSONResponse:
    return await _deliver(request, _source(app_state(request), "pagerduty"))


@router.post("/sources/webhook/{name}", status_code=202)
async def webhook(name: str, request: Request) -> JSONResponse:
    return await _deliver(request, _source(app_state(request), "webhook", name))


@rules_router.get("/rules")
async def list_rules(request: Request) -> dict[str, Any]:
    """The rules in force (webhook secrets left out)."""
    rules = app_state(request).intake.rules
    return {
        "rules": [r.model_dump(mode="json", exclude_none=True) for r in rules.rules],
        "webhooks": sorted(rules.webhooks),
    }
