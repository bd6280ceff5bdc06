"""Incident, war room and timeline routes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from starters.api.deps import app_state, service
from starters.api.errors import ApiError
from starters.api.views import incident_json, room_json, source_json, timeline_json
from starters.service import WarRoomService
from warroom.enums import Role
from warroom.lifecycle import MAX_SNOOZE_MINUTES
from warroom.models import (
    Action,
    IncidentIn,
    IncidentStatus,
    Responder,
    RoomState,
    Source,
    WarRoom,
    unique_responders,
)
from warroom.roles import InvalidRoleHolder, checked_role_holder
from warroom.store.sources import SourceLink

router = APIRouter(tags=["incidents"])
Svc = Annotated[WarRoomService, Depends(service)]


def _source(request: Request) -> Source:
    """Who is calling: the CLI and the web page say so in a header, the rest is the API."""
    given = request.headers.get("x-warroom-source", "api")
    return Source(given) if given in ("api", "cli", "web") else Source.API


DEFAULT_ACTOR = "system"


async def _may_act(request: Request, incident_id: str) -> None:
    """With a personal token, the room's rule: a responder of the incident or an admin (403 else).
    The service token stands for the whole installation and may always act."""
    person = getattr(request.state, "person", None)
    if person is None or person.admin:
        return
    incident = await asyncio.to_thread(app_state(request).store.incidents.get, incident_id)
    if not any((r.email or "").lower() == person.email for r in incident.responders):
        raise ApiError(403, "forbidden", f"{person.email} is not a responder of incident {incident_id}")


Actor = Annotated[
    str | None,
    Field(
        None,
        min_length=1,
        max_length=320,
        description="who is acting: a person's email (CONTRACT.md); recorded in the timeline",
    ),
]


def _actor(request: Request, given: str | None) -> str:
    """The acting person, the same way on every route (CONTRACT.md: `actor` in the JSON body).

    A body without `actor` (and a DELETE, which has no body) falls back to the `X-Warroom-Actor`
    header the CLI sends, and then to `system`.
    """
    person = getattr(request.state, "person", None)
    if person is not None:
        return person.email  # a personal token: the person, not what the body claims
    if given and given.strip():
        return given.strip()
    header = request.headers.get("x-warroom-actor", "").strip()
    if header:
        if len(header) > 320:
            raise ApiError(422, "invalid", "X-Warroom-Actor: at most 320 characters")
        return header
    return DEFAULT_ACTOR


class IncidentBody(IncidentIn):
    """`IncidentIn` plus who is acting (kept out of the incident itself)."""

    actor: Actor = None

    def incident(self) -> IncidentIn:
        # only the fields the caller sent: an update leaves the others as they are
        return IncidentIn.model_validate(self.model_dump(exclude_unset=True, exclude={"actor"}))


class RespondersIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    responders: list[Responder] = Field(max_length=500)
    actor: Actor = None


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    action: Action
    actor: str = Field(min_length=1, max_length=320, description="who is acting: a person's email")
    minutes: int | None = Field(None, ge=1, le=MAX_SNOOZE_MINUTES, description="snooze only")
    request_id: str | None = Field(None, max_length=200, description="idempotency key for retried requests")


class WarRoomIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    platform: str | None = None
    actor: Actor = None


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    actor: Actor = None


class JoinIn(BaseModel):
    """Who wants to be in the room: found on the platform by email or phone."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=32)
    name: str = Field("", max_length=200)
    actor: Actor = None


@router.post("/incidents", status_code=201)
async def upsert_incident(body: IncidentBody, request: Request, response: Response, svc: Svc) -> dict[str, Any]:
    incident, created = await svc.upsert_incident(
        body.incident(), actor=_actor(request, body.actor), source=_source(request)
    )
    response.status_code = 201 if created else 200
    return incident_json(incident)


@router.get("/incidents")
async def list_incidents(
    request: Request,
    status: IncidentStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    source: Annotated[str | None, Query(max_length=100)] = None,
    external_id: Annotated[str | None, Query(max_length=1000)] = None,
) -> dict[str, Any]:
    store = app_state(request).store
    if source is not None or external_id is not None:  # the incident of a source's incident
        if not (source and external_id):
            raise ApiError(422, "invalid", "source and external_id go together")
        link = await asyncio.to_thread(store.sources.find, source, external_id)
        if link is None:
            return {"items": [], "next_cursor": None}
        found = await asyncio.to_thread(store.incidents.get, link.incident_id)
        if status and found.status is not status:
            return {"items": [], "next_cursor": None}
        return {"items": [incident_json(found) | _source_of(link)], "next_cursor": None}
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
        entries = state.store.timeline.list(incident_id)
        platform = state.settings.im_platform
        room, more = state.store.rooms.all_of(incident_id)
        link = state.store.sources.of_incident(incident_id)
        return {
            "incident": incident_json(incident) | _source_of(link),
            "war_room": room_json(room, platform),
            # The incident's rooms on other platforms than `war_room`'s (a Slack room and a
            # Feishu room for the same incident), in the order they were asked for.
            "more_war_rooms": [room_json(r, platform) for r in more],
            "timeline": timeline_json(entries),
        }

    return await asyncio.to_thread(read)


@router.put("/incidents/{incident_id}/responders")
async def set_responders(incident_id: str, body: RespondersIn, request: Request, svc: Svc) -> dict[str, Any]:
    await _may_act(request, incident_id)
    incident = await svc.set_responders(
        incident_id, unique_responders(body.responders), actor=_actor(request, body.actor), source=_source(request)
    )
    return incident_json(incident)


@router.post("/incidents/{incident_id}/actions")
async def act(incident_id: str, body: ActionIn, request: Request, response: Response, svc: Svc) -> dict[str, Any]:
    """200 with the incident once the action is applied, 202 (and the incident as it is) when
    it was accepted but is still being applied; 409 when the incident's state refuses it."""
    if body.action is Action.UNSNOOZE:
        raise ApiError(422, "invalid", "unsnooze is applied by the snooze timer; use acknowledge to end a snooze")
    if body.action is Action.SNOOZE and not body.minutes:
        raise ApiError(422, "invalid", f"snooze needs minutes (1 to {MAX_SNOOZE_MINUTES})")
    if body.action is not Action.SNOOZE and body.minutes is not None:
        raise ApiError(422, "invalid", f"minutes only applies to snooze, not to {body.action.value}")
    await _may_act(request, incident_id)
    out = await svc.act(
        incident_id,
        body.action,
        actor=_actor(request, body.actor),
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
    """Open the war room (idempotent): 201 when this request opened it, 200 when it already
    existed (or another request is opening it), 202 while it is still being created, 502 with
    the room when the platform refused to create it."""
    body = body or WarRoomIn()
    state = app_state(request)
    await _may_act(request, incident_id)
    platform = body.platform or state.settings.im_platform
    try:
        state.adapter(platform)
    except Exception as e:
        raise ApiError(422, "invalid", str(e)) from e
    # The first of concurrent requests looks at the room before any of them asks for it: it is the
    # one that opens the room (201); the others get the same room as one that exists (200). It looks
    # in the rooms read model (the create activity registers a room there as soon as the platform
    # made it), not by querying the workflow: a query costs a workflow task on a busy worker.
    opening = f"{incident_id}:{platform}"
    looked = state.opening_rooms.get(opening)
    opener = looked is None
    if looked is None:
        looked = state.opening_rooms[opening] = asyncio.Event()
    else:
        await looked.wait()
    try:
        before = None
        if opener:
            try:
                before = await asyncio.to_thread(svc.stored_room, incident_id, platform)
                before = before or WarRoom(platform=platform)
            finally:
                looked.set()
        actor = _actor(request, body.actor)
        out = await svc.create_room(incident_id, platform=platform, actor=actor, source=_source(request))
    finally:
        if opener:
            state.opening_rooms.pop(opening, None)
    room = room_json(out.value, state.settings.im_platform)
    if out.done and out.value.state is RoomState.FAILED:
        raise ApiError(
            502,
            "room_failed",
            f"the {out.value.platform} war room could not be created: {out.value.detail or 'see the timeline'}",
            extra=room,
        )
    if not out.done:
        response.status_code = 202
    else:
        existed = before is None or before.state in (RoomState.ACTIVE, RoomState.CREATING)
        response.status_code = 200 if existed else 201
    return room


@router.delete("/incidents/{incident_id}/war-room")
async def dismiss_room(
    incident_id: str, request: Request, response: Response, svc: Svc, body: DismissIn | None = None
) -> dict[str, Any]:
    """Dismiss the room of a closed incident: 200 once dismissed, 202 while dismissing, 409 while
    the incident is not closed (or has no room), 502 when the platform refused."""
    state = app_state(request)
    await _may_act(request, incident_id)
    out = await svc.dismiss_room(
        incident_id, actor=_actor(request, body.actor if body else None), source=_source(request)
    )
    room = room_json(out.value, state.settings.im_platform)
    if out.done and out.value.state is not RoomState.DISMISSED:
        # the workflow gave up on this dismissal: the incident was reopened meanwhile, or the
        # platform refused (the timeline says why)
        incident = await asyncio.to_thread(state.store.incidents.get, incident_id)
        if incident.status is not IncidentStatus.CLOSED:
            raise ApiError(
                409, "conflict", f"the incident is {incident.status.value} again; the room stays", extra=room
            )
        raise ApiError(502, "dismiss_failed", "the platform did not dismiss the room; see the timeline", extra=room)
    response.status_code = 200 if out.done else 202
    return room


@router.post("/incidents/{incident_id}/war-room/join")
async def join_room(incident_id: str, body: JoinIn, request: Request, response: Response, svc: Svc) -> dict[str, Any]:
    """View War Room: where the platform has a link to join the room, the room with its
    `join_url` (nothing changes); elsewhere the person is added to the room: 200 once invited (or
    refused, see their member state), 202 while inviting, 409 without an active room."""
    state = app_state(request)
    room = await asyncio.to_thread(state.store.rooms.current, incident_id)
    if room is None or room.state is not RoomState.ACTIVE:
        await asyncio.to_thread(state.store.incidents.get, incident_id)  # an unknown incident: 404
        raise ApiError(409, "conflict", "the incident has no active war room; create one first")
    if room.join_url:
        return room_json(room, state.settings.im_platform) | {"added": False}
    try:
        person = Responder(email=body.email, phone=body.phone, name=body.name)
    except ValueError as e:
        raise ApiError(422, "invalid", str(e).splitlines()[-1]) from None
    if not (person.email or person.phone):
        raise ApiError(422, "invalid", "give the email or phone the person has on the platform")
    actor = _actor(request, body.actor)
    out = await svc.join_room(incident_id, person, actor=actor, source=_source(request))
    response.status_code = 200 if out.done else 202
    return room_json(out.value, state.settings.im_platform) | {"added": True}


class RoleIn(BaseModel):
    person: str = Field("", max_length=320)  # an email or a name; empty: nobody holds the role
    actor: Actor = None


@router.put("/incidents/{incident_id}/roles/{role}")
async def set_role(
    incident_id: str, role: Role, body: RoleIn, request: Request, response: Response, svc: Svc
) -> dict[str, Any]:
    """Give a role of the incident (lead, scribe, comms) to someone; 200 with every role once
    recorded, 202 while it is; 422 for a person a role cannot name."""
    try:
        person = checked_role_holder(body.person)
    except InvalidRoleHolder as e:
        raise ApiError(422, "invalid", str(e)) from None
    await asyncio.to_thread(app_state(request).store.incidents.get, incident_id)  # an unknown incident: 404
    await _may_act(request, incident_id)
    out = await svc.set_role(incident_id, role, person, actor=_actor(request, body.actor), source=_source(request))
    response.status_code = 200 if out.done else 202
    return {"roles": out.value if out.done else {}}


@router.get("/incidents/{incident_id}/timeline")
async def timeline(incident_id: str, request: Request) -> list[dict[str, Any]]:
    store = app_state(request).store
    await asyncio.to_thread(store.incidents.get, incident_id)  # 404 for an unknown incident
    return timeline_json(await asyncio.to_thread(store.timeline.list, incident_id))


def _source_of(link: SourceLink | None) -> dict[str, object]:
    """`source` on an incident that came from a source (CONTRACT); typed-in incidents have none."""
    return {"source": source_json(link)} if link is not None else {}
