"""The console's pages (GET): incidents, an incident, Link Users, runbooks, personal tokens.

Each reads the store (the read models the workflows keep current), never Temporal: a page load
costs a few SQL reads, however many people have the console open.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from starters.api.deps import AppState, app_state
from starters.console.auth import can_act, identify
from starters.console.render import page
from warroom import selflink
from warroom.enums import Role, TimelineKind
from warroom.errors import NotFound
from warroom.im.plugins import get_plugin, platform_names
from warroom.models import Incident, IncidentStatus, Outcome, RoomState, Severity, TimelineEntry, WarRoom
from warroom.roles import holders

router = APIRouter(include_in_schema=False)
LINKING = re.compile(r"link-users-(?P<platform>[a-z0-9_]{1,30})-[0-9a-f]{8}")
LIST_LIMIT = 200
SCAN_PAGES = 10


def platforms(state: AppState) -> list[str]:
    """Platforms a room can be created on: the configured ones, the default first."""
    names = [p for p in state.settings.configured_platforms() if p in platform_names()]
    default = state.settings.im_platform
    return [default, *[p for p in names if p != default]] if default in names else names


def _matches(i: Incident, room: WarRoom | None, q: dict[str, str]) -> bool:
    if q["status"] and i.status.value != q["status"]:
        return False
    if q["severity"] and i.severity.value != q["severity"]:
        return False
    if q["platform"] and (room is None or room.platform != q["platform"]):
        return False
    if q["text"]:
        hay = " ".join([i.id, i.title, i.description, *(r.email or r.name for r in i.responders)]).lower()
        if q["text"].lower() not in hay:
            return False
    return True


@router.get("/")
async def incidents(
    request: Request, status: str = "", severity: str = "", platform: str = "", text: str = "", cursor: str = ""
) -> Response:
    await identify(request)
    state = app_state(request)
    q = {"status": status, "severity": severity, "platform": platform, "text": text.strip()[:200]}
    by_status = IncidentStatus(status) if status in IncidentStatus._value2member_map_ else None

    def read() -> tuple[list[tuple[Incident, WarRoom | None]], str | None]:
        """Up to LIST_LIMIT matches, newest first, from `cursor` on; reads at most SCAN_PAGES pages
        of incidents for them (a rare filter over a long history shows what it found, and Older)."""
        shown: list[tuple[Incident, WarRoom | None]] = []
        after: str | None = cursor or None
        for _ in range(SCAN_PAGES):
            try:
                rows, after = state.store.incidents.list(status=by_status, limit=LIST_LIMIT, cursor=after)
            except ValueError:  # a cursor that is not ours: from the start
                rows, after = state.store.incidents.list(status=by_status, limit=LIST_LIMIT)
            rooms = state.store.rooms.current_many([i.id for i in rows])
            shown += [(i, rooms.get(i.id)) for i in rows if _matches(i, rooms.get(i.id), q)]
            if after is None or len(shown) >= LIST_LIMIT:
                break
        return shown, after

    rows, older = await asyncio.to_thread(read)
    return page(
        request,
        "incidents.html",
        rows=rows,
        older=urlencode({**{k: v for k, v in q.items() if v}, "cursor": older}) if older else "",
        newest=urlencode({k: v for k, v in q.items() if v}),
        paged=bool(cursor),
        q=q,
        statuses=[s.value for s in IncidentStatus],
        severities=[s.value for s in Severity],
        platforms=platforms(state),
        live_url="/live",
    )


def incident_context(state: AppState, incident_id: str) -> dict[str, Any]:
    incident = state.store.incidents.get(incident_id)
    first, more = state.store.rooms.all_of(incident_id)
    room = first or WarRoom(platform=state.settings.im_platform)
    timeline = state.store.timeline.list(incident_id)
    review = state.store.reviews.latest(incident_id)
    return {
        "incident": incident,
        "room": room,
        "more_rooms": more,
        "timeline": timeline,
        "review": review,
        "impact": _impact(timeline),
        "roles": holders(timeline),
        "role_names": [r.value for r in Role],
    }


def _impact(timeline: list[TimelineEntry]) -> dict[str, Any] | None:
    """The assistant's newest impact assessment posted to the room (its timeline entry reads
    "impact assessment (why, mode, facts …): <text>"), for the incident page's Impact panel."""
    for e in reversed(timeline):
        if e.kind == TimelineKind.AI_IMPACT.value and e.outcome is Outcome.OK and "): " in e.detail:
            return {"text": e.detail.split("): ", 1)[1], "at": e.at, "id": e.id}
    return None


@router.get("/incidents/{incident_id}")
async def incident(request: Request, incident_id: str) -> Response:
    who = await identify(request)
    state = app_state(request)
    try:
        ctx = await asyncio.to_thread(incident_context, state, incident_id[:64])
    except NotFound:
        return page(request, "missing.html", 404, what=f"incident {incident_id[:64]}")
    i: Incident = ctx["incident"]
    room: WarRoom = ctx["room"]
    up = (RoomState.ACTIVE, RoomState.CREATING)
    has_room = {room.platform} if room.state in up else set()
    has_room |= {r.platform for r in ctx["more_rooms"] if r.state in up}
    responders_text = "\n".join(
        f"{r.name} <{r.email or r.phone}>" if r.name and (r.email or r.phone) else (r.email or r.phone or r.name)
        for r in i.responders
    )
    return page(
        request,
        "incident_page.html",
        **ctx,
        may_act=can_act(who, i),
        platforms=platforms(state),
        snooze_choices=state.settings.snooze_choices_minutes,
        room_open=room.state in (RoomState.ACTIVE, RoomState.CREATING),
        can_create=room.state in (RoomState.NONE, RoomState.FAILED, RoomState.DISMISSED)
        and i.status is not IncidentStatus.CLOSED,
        can_dismiss=i.status is IncidentStatus.CLOSED and room.state in (RoomState.ACTIVE, RoomState.FAILED),
        # while the room is up: one more room, on a platform that has none (another team's)
        other_platforms=[p for p in platforms(state) if p not in has_room]
        if room.state in up and i.status is not IncidentStatus.CLOSED
        else [],
        responders_text=responders_text,
        live_url=f"/incidents/{i.id}/live",
    )


@router.get("/users")
async def link_users(request: Request) -> Response:
    """Link Users: everyone known from incidents, their link on each configured platform."""
    await identify(request)
    state = app_state(request)
    names = platforms(state)

    def read() -> list[dict[str, Any]]:
        links = state.store.links.list()
        people: dict[str, dict[str, Any]] = {}
        for i in state.store.incidents.list(limit=LIST_LIMIT)[0]:
            for r in i.responders:
                key = (r.email or r.phone or r.name or r.id).lower()
                people.setdefault(key, {"name": r.name, "email": r.email, "phone": r.phone, "links": {}})
        for link in links:
            key = (link.email or link.phone or "").lower()
            person = people.setdefault(key, {"name": link.name, "email": link.email, "phone": link.phone, "links": {}})
            person["links"][link.platform] = link
        return sorted(people.values(), key=lambda p: (p["email"] or p["phone"] or p["name"] or "").lower())

    return page(request, "users.html", people=await asyncio.to_thread(read), platforms=names,
                linking=await _linking(state, request.query_params.get("linking", "")))  # fmt: skip


async def _linking(state: AppState, workflow_id: str) -> dict[str, Any] | None:
    """The One-click Link this page was sent to follow (`?linking=<its workflow id>`)."""
    m = LINKING.fullmatch(workflow_id)
    if m is None:
        return None
    progress, result = await (await state.service()).link_progress(workflow_id)
    shown: dict[str, Any] = {"platform": m["platform"], "running": progress is not None, "result": result}
    if progress is not None:
        shown.update(done=progress.done, total=progress.total)
    return shown


@router.get("/rules")
async def rules(request: Request) -> Response:
    """The rules in force: what opens rooms on its own, where, with whom, and its reminders."""
    await identify(request)
    state = app_state(request)
    loaded = state.intake.rules
    return page(
        request,
        "rules.html",
        path=state.settings.rules_path(),
        rules=loaded.rules,
        invitees=loaded.invitees,
        webhooks=sorted(loaded.webhooks),
        default_platform=state.settings.im_platform,
    )


@router.get("/runbooks")
async def runbooks(request: Request) -> Response:
    await identify(request)
    books = await asyncio.to_thread(app_state(request).store.runbooks.all)
    return page(request, "runbooks.html", books=books)


@router.get("/runbooks/new")
async def runbook_new(request: Request) -> Response:
    await identify(request)
    return page(request, "runbook_edit.html", name="", markdown="", new=True)


@router.get("/runbooks/{name}")
async def runbook(request: Request, name: str, edit: bool = False) -> Response:
    await identify(request)
    books = await asyncio.to_thread(app_state(request).store.runbooks.all)
    if name not in books:
        return page(request, "missing.html", 404, what=f"runbook {name[:100]}")
    template = "runbook_edit.html" if edit else "runbook.html"
    return page(request, template, name=name, markdown=books[name], new=False)


@router.get("/tokens")
async def tokens(request: Request) -> Response:
    who = await identify(request)
    state = app_state(request)
    account = await asyncio.to_thread(state.store.accounts.get, who.email)
    mine = await asyncio.to_thread(state.store.accounts.tokens, who.email) if account else []
    return page(request, "tokens.html", tokens=mine, has_account=account is not None)


@router.get("/users/self-link")
async def self_link(request: Request, t: str = "") -> Response:
    """The page a self-link offer in a room opens: link that IM account to the signed-in person?"""
    await identify(request)
    state = app_state(request)
    claim = selflink.verify(state.settings, t[:2000])
    title = get_plugin(claim.platform).title if claim and claim.platform in platform_names() else ""
    return page(request, "self_link.html", status=200 if claim else 410, claim=claim if title else None,
                token=t, title=title)  # fmt: skip
