"""Incident, war room and timeline routes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from starters.api.app import app_state, service
from starters.api.errors import ApiError
from starters.api.views import incident_json, room_json, timeline_json
from starters.service import WarRoomService
from warroom.models import Action, IncidentIn, IncidentStatus, Responder, RoomState, Source, unique_responders

router = APIRouter(tags=["incidents"])
Svc = Annotated[WarRoomService, Depends(service)]


def _source(request: Request) -> Source:
    """Who is calling: the CLI and the web page say so in a header, the rest is the API."""
    given = request.headers.get("x-warroom-source", "api")
    return Source(given) if given in ("api", "cli", "web") else Source.API


class RespondersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    responders: list[Responder] = Field(max_length=500)
    actor: str = "api"


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Action
    actor: str = Field(min_length=1, max_length=320)
    minutes: int | None = Field(None, ge=1, le=7 * 24 * 60)
    request_id: str | None = Field(None, max_length=200, description="idempotency key for retried requests")


class WarRoomIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: str | None = None
    actor: str = "api"


@router.post("/incidents", status_code=201)
async def upsert_incident(body: IncidentIn, request: Request, response: Response, svc: Svc) -> dict[str, Any]:
    incident, created = await svc.upsert_incident(
        body, actor=request.headers.get("x-warroom-actor", "api"), source=_source(request)
    )
    response.status_code = 201 if created else 200
    return incident_json(incident)


@router.get("/incidents")
async def list_incidents(
    request: Request,
    status: IncidentStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    store = app_state(request).store
    try:
        items, next_cursor = await asyncio.to_thread(store.incidents.list, status=status, limit=limit, cursor=cursor)
    except ValueError as e:
        raise ApiError(422, "invalid", str(e)) from e
    return {"items": [incident_json(i) for i in items], "next_cursor": next_cursor}


@router.get("/incidents/{incident_id}")
async def get_incident(incident_id: str, request: Request) -> dict[str, Any]:
    state = app_state(request)

    def read() -> dict[str, Any]:
        incident = state.store.incidents.get(incident_id)
        return {
            "incident": incident_json(incident),
            "war_room": room_json(state.store.rooms.current(incident_id), state.settings.im_platform),
            "timeline": timeline_json(state.store.timeline.list(incident_id)),
        }

    return await asyncio.to_thread(read)


@router.put("/incidents/{incident_id}/responders")
async def set_responders(incident_id: str, body: RespondersIn, request: Request, svc: Svc) -> dict[str, Any]:
    incident = await svc.set_responders(
        incident_id, unique_responders(body.responders), actor=body.actor, source=_source(request)
    )
    return incident_json(incident)


@router.post("/incidents/{incident_id}/actions")
async def act(incident_id: str, body: ActionIn, request: Request, response: Response, svc: Svc) -> dict[str, Any]:
    if body.action is Action.UNSNOOZE:
        raise ApiError(422, "invalid", "unsnooze is applied by the snooze timer; use acknowledge to end a snooze")
    if body.action is Action.SNOOZE and not body.minutes:
        raise ApiError(422, "invalid", "snooze needs minutes")
    out = await svc.act(
        incident_id,
        body.action,
        actor=body.actor,
        source=_source(request),
        minutes=body.minutes,
        request_id=body.request_id,
    )
    response.status_code = 200 if out.done else 202
    return incident_json(out.value)


@router.post("/incidents/{incident_id}/war-room", status_code=201)
async def create_room(
    incident_id: str, request: Request, response: Response, svc: Svc, body: WarRoomIn | None = None
) -> dict[str, Any]:
    body = body or WarRoomIn()
    state = app_state(request)
    platform = body.platform or state.settings.im_platform
    try:
        state.adapter(platform)
    except Exception as e:
        raise ApiError(422, "invalid", str(e)) from e
    before = await svc.room_now(incident_id)
    existed = before.state is RoomState.ACTIVE
    out = await svc.create_room(incident_id, platform=platform, actor=body.actor, source=_source(request))
    if not out.done:
        response.status_code = 202
    else:
        response.status_code = 200 if existed else 201
    if out.done and out.value.state is RoomState.FAILED:
        response.status_code = 502
    return room_json(out.value, state.settings.im_platform)


@router.delete("/incidents/{incident_id}/war-room")
async def dismiss_room(incident_id: str, request: Request, response: Response, svc: Svc) -> dict[str, Any]:
    out = await svc.dismiss_room(
        incident_id, actor=request.headers.get("x-warroom-actor", "api"), source=_source(request)
    )
    response.status_code = 200 if out.done and out.value.state is RoomState.DISMISSED else 202
    return room_json(out.value, app_state(request).settings.im_platform)


@router.get("/incidents/{incident_id}/timeline")
async def timeline(incident_id: str, request: Request) -> list[dict[str, Any]]:
    store = app_state(request).store
    await asyncio.to_thread(store.incidents.get, incident_id)  # 404 for an unknown incident
    return timeline_json(await asyncio.to_thread(store.timeline.list, incident_id))
