"""The console's actions (POST forms): each checks the CSRF token and who may act, does what
the API route of the same name does, as the signed-in person (source `web`), and redirects
back to the page with what happened (a redirect after POST: a reload never repeats an action).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from temporalio.service import RPCError

from starters.api.deps import app_state
from starters.api.errors import ApiError
from starters.console.auth import can_act, check_csrf, identify
from starters.console.pages import platforms
from starters.console.render import flash
from warroom import selflink
from warroom.enums import Outcome, Role, TimelineKind
from warroom.errors import Conflict, NotFound
from warroom.im.plugins import platform_names
from warroom.models import (
    Action,
    IncidentIn,
    Responder,
    RoomState,
    Severity,
    Source,
    TimelineEntry,
    unique_responders,
)
from warroom.roles import InvalidRoleHolder, checked_role_holder

log = logging.getLogger("warroom.console")

router = APIRouter(include_in_schema=False)
_NAMED = re.compile(r"^\s*(?P<name>[^<>]+?)\s*<(?P<contact>[^<>]+)>\s*$")
_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{5,19}$")
_RUNBOOK_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def parse_people(text: str) -> list[Responder]:
    """One person per line or comma: `ann@x.io`, `Ann <ann@x.io>`, `+8613800000000`, `Ann`."""
    people: list[Responder] = []
    for part in re.split(r"[\n,]", text or ""):
        part = part.strip()
        if not part:
            continue
        name = ""
        m = _NAMED.match(part)
        if m:
            name, part = m["name"], m["contact"].strip()
        try:
            if "@" in part:
                people.append(Responder(name=name, email=part))
            elif _PHONE.match(part):
                people.append(Responder(name=name, phone=part))
            else:
                people.append(Responder(name=name or part))
        except ValueError as e:
            raise ValueError(f"cannot read {part!r}: {str(e).splitlines()[-1]}") from None
    return unique_responders(people)


def _record_refusal(state: Any, incident_id: str, actor: str, path: str) -> None:
    """A refused console action, in the timeline like a refused click in the room. Written here,
    not by the workflow (nothing reached it): numbered as the newest entry, with an id of its own
    (`<incident>-web-<random>`), so the workflow's numbering is untouched."""
    what = path.rstrip("/").rsplit("/", 1)[-1]
    entry = TimelineEntry(
        id=f"{incident_id}-web-{uuid.uuid4().hex[:12]}",
        incident_id=incident_id,
        seq=state.store.timeline.last_seq(incident_id),
        at=datetime.now(UTC),
        actor=actor,
        source=Source.WEB,
        kind=TimelineKind.ACTION_REFUSED.value,
        detail=f"{what} from the console: not a responder of this incident (nor an admin)",
        outcome=Outcome.REFUSED,
    )
    state.store.timeline.append([entry])


def _back(path: str, kind: str, text: str) -> Response:
    return flash(RedirectResponse(path, status_code=303), kind, text)


async def _guarded(request: Request, incident_id: str, csrf: str, do: Callable[[Any, str], Awaitable[str]]) -> Response:
    """The frame of every incident action: sign-in, CSRF, may this person act, then `do`."""
    who = await identify(request)
    back = f"/incidents/{incident_id}"
    state = app_state(request)
    try:
        check_csrf(request, who, csrf)
        incident = await asyncio.to_thread(state.store.incidents.get, incident_id)
        if not can_act(who, incident):
            await asyncio.to_thread(_record_refusal, state, incident_id, who.email, request.url.path)
            return _back(
                back,
                "error",
                f"Refused: {who.email} is not a responder of this incident (only its responders "
                "or an admin may act; you can read it).",
            )
        svc = await state.service()
        return _back(back, "ok", await do(svc, who.email))
    except PermissionError as e:
        return _back(back, "error", str(e))
    except NotFound:
        return _back("/", "error", f"No incident {incident_id[:64]}.")
    except Conflict as e:
        return _back(back, "error", f"Refused: {e}")
    except ApiError as e:
        return _back(back, "error", e.message)
    except ValueError as e:
        return _back(back, "error", str(e))
    except RPCError as e:
        return _back(back, "error", f"Temporal call failed: {e}; try again in a moment.")


@router.post("/incidents/{incident_id}/act")
async def act(
    request: Request,
    incident_id: str,
    csrf: str = Form(""),
    action: str = Form(...),
    minutes: int | None = Form(None),
) -> Response:
    async def do(svc: Any, actor: str) -> str:
        try:
            what = Action(action)
        except ValueError:
            raise ValueError(f"unknown action {action[:40]!r}") from None
        if what is Action.UNSNOOZE:
            raise ValueError("unsnooze is the snooze timer's; acknowledge ends a snooze")
        if what is Action.SNOOZE and minutes not in app_state(request).settings.snooze_choices_minutes:
            raise ValueError("pick one of the snooze choices")
        out = await svc.act(
            incident_id, what, actor=actor, source=Source.WEB, minutes=minutes if what is Action.SNOOZE else None
        )
        return f"{what.value}: {'done' if out.done else 'accepted, still applying'}."

    return await _guarded(request, incident_id, csrf, do)


@router.post("/incidents/{incident_id}/room")
async def create_room(request: Request, incident_id: str, csrf: str = Form(""), platform: str = Form("")) -> Response:
    async def do(svc: Any, actor: str) -> str:
        allowed = platforms(app_state(request))
        chosen = platform or allowed[0] if allowed else app_state(request).settings.im_platform
        if chosen not in allowed:
            raise ValueError(f"platform {chosen[:20]!r} is not configured; use one of {', '.join(allowed)}")
        out = await svc.create_room(incident_id, platform=chosen, actor=actor, source=Source.WEB)
        if out.done and out.value.state is RoomState.FAILED:
            return f"The {chosen} war room could not be created: {out.value.detail or 'see the timeline'}"
        return f"The {chosen} war room is ready." if out.done else f"Creating the {chosen} war room…"

    return await _guarded(request, incident_id, csrf, do)


@router.post("/incidents/{incident_id}/room/dismiss")
async def dismiss_room(request: Request, incident_id: str, csrf: str = Form("")) -> Response:
    async def do(svc: Any, actor: str) -> str:
        out = await svc.dismiss_room(incident_id, actor=actor, source=Source.WEB)
        if out.done and out.value.state is not RoomState.DISMISSED:
            return "The room was not dismissed; see the timeline."
        return "War room dismissed." if out.done else "Dismissing the war room…"

    return await _guarded(request, incident_id, csrf, do)


@router.post("/incidents/{incident_id}/room/join")
async def join_room(request: Request, incident_id: str, csrf: str = Form("")) -> Response:
    """View War Room on a platform without a join link: add the signed-in person to the room."""

    async def do(svc: Any, actor: str) -> str:
        if "@" not in actor:
            raise ValueError("sign in with an account (an email) to be added to the room")
        out = await svc.join_room(incident_id, Responder(email=actor), actor=actor, source=Source.WEB)
        return "You were invited to the room." if out.done else "Inviting you to the room…"

    return await _guarded(request, incident_id, csrf, do)


@router.post("/incidents/{incident_id}/responders")
async def set_responders(
    request: Request, incident_id: str, csrf: str = Form(""), responders: str = Form("", max_length=50_000)
) -> Response:
    async def do(svc: Any, actor: str) -> str:
        people = parse_people(responders)
        await svc.set_responders(incident_id, people, actor=actor, source=Source.WEB)
        return f"Responders saved ({len(people)})."

    return await _guarded(request, incident_id, csrf, do)


@router.post("/incidents/{incident_id}/roles")
async def set_role(
    request: Request,
    incident_id: str,
    csrf: str = Form(""),
    role: str = Form(...),
    person: str = Form("", max_length=320),
) -> Response:
    async def do(svc: Any, actor: str) -> str:
        try:
            which = Role(role)
        except ValueError:
            raise ValueError(f"unknown role {role[:20]!r}: one of {', '.join(r.value for r in Role)}") from None
        try:
            holder = checked_role_holder(person)
        except InvalidRoleHolder as e:
            raise ValueError(e.sentence()) from None
        out = await svc.set_role(incident_id, which, holder, actor=actor, source=Source.WEB)
        now = f"{which.value}: {holder or 'nobody'}"
        return f"Role saved ({now})." if out.done else f"Saving the role ({now})…"

    return await _guarded(request, incident_id, csrf, do)


@router.post("/incidents")
async def create_incident(
    request: Request,
    csrf: str = Form(""),
    title: str = Form("", max_length=500),
    severity: str = Form("medium"),
    responders: str = Form("", max_length=50_000),
    description: str = Form("", max_length=20_000),
) -> Response:
    who = await identify(request)
    state = app_state(request)
    try:
        check_csrf(request, who, csrf)
        if not title.strip():
            raise ValueError("give the incident a title")
        body = IncidentIn(
            title=title.strip(),
            severity=Severity(severity) if severity in Severity._value2member_map_ else Severity.MEDIUM,
            description=description,
            responders=parse_people(responders),
        )
        svc = await state.service()
        incident, _ = await svc.upsert_incident(body, actor=who.email, source=Source.WEB)
    except (PermissionError, ValueError) as e:
        return _back("/", "error", str(e).splitlines()[0])
    except ApiError as e:
        return _back("/", "error", e.message)
    return _back(f"/incidents/{incident.id}", "ok", "Incident created.")


@router.post("/users/link")
async def one_click_link(request: Request, csrf: str = Form(""), platform: str = Form("")) -> Response:
    """One-click Link: link every responder of every open incident it can (email, then phone)."""
    who = await identify(request)
    state = app_state(request)
    try:
        check_csrf(request, who, csrf)
        if not who.admin:
            raise PermissionError("only an admin links everyone at once; ask one, or fix your own link below")
        chosen = platform or state.settings.im_platform
        if chosen not in platform_names():
            raise ValueError(f"platform {chosen[:20]!r} is not available")
        svc = await state.service()
        workflow_id, people = await svc.start_link_users(chosen)
    except (PermissionError, ValueError) as e:
        return _back("/users", "error", str(e))
    except ApiError as e:
        return _back("/users", "error", e.message)
    # The rooms invite whoever it finds once it is done; the page follows it meanwhile.
    finishing = asyncio.create_task(svc.link_users_done(chosen, workflow_id, people))
    _finishing.add(finishing)
    finishing.add_done_callback(_finished_linking)
    return RedirectResponse(f"/users?linking={workflow_id}", status_code=303)


_finishing: set[asyncio.Task[Any]] = set()


def _finished_linking(task: asyncio.Task[Any]) -> None:
    _finishing.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("One-click Link did not finish: %s", str(task.exception())[:300])


@router.post("/users/fix")
async def fix_link(
    request: Request,
    csrf: str = Form(""),
    platform: str = Form(""),
    email: str = Form("", max_length=320),
    im_user_id: str = Form("", max_length=200),
) -> Response:
    """Fix one person by hand: their user id on a platform (an admin, or the person themself)."""
    who = await identify(request)
    state = app_state(request)
    try:
        check_csrf(request, who, csrf)
        person = Responder(email=email.strip())
        if not person.email or not im_user_id.strip():
            raise ValueError("give the person's email and their user id on the platform")
        if not who.admin and person.email.lower() != who.email.lower():
            raise PermissionError("only an admin links someone else; you can link yourself")
        if platform not in platform_names():
            raise ValueError(f"platform {platform[:20]!r} is not available")
        method = "self-link" if person.email.lower() == who.email.lower() else "manual"
        await asyncio.to_thread(
            state.store.links.save,
            platform,
            email=person.email,
            phone=None,
            name="",
            im_user_id=im_user_id.strip(),
            method=method,
            now=datetime.now(UTC),
        )
        told = await (await state.service()).people_linked(platform, [person.email])
    except (PermissionError, ValueError) as e:
        return _back("/users", "error", str(e).splitlines()[-1])
    except ApiError as e:
        return _back("/users", "error", e.message)
    rooms = f"; inviting them to {told} war room{'s' if told != 1 else ''}" if told else ""
    return _back("/users", "ok", f"{person.email} linked on {platform} by hand{rooms}.")


@router.post("/users/self-link")
async def confirm_self_link(request: Request, csrf: str = Form(""), t: str = Form("", max_length=2000)) -> Response:
    """Link the IM account a room's self-link offer named to the signed-in person."""
    who = await identify(request)
    state = app_state(request)
    try:
        check_csrf(request, who, csrf)
        claim = selflink.verify(state.settings, t)
        if claim is None or claim.platform not in platform_names():
            raise ValueError("this link has expired or was not made here; click in the room again for a fresh one")
        if who.via == "open":
            raise PermissionError("this console is open to everyone, so it cannot tell who you are: ask an admin")
        await asyncio.to_thread(state.store.links.save, claim.platform, email=who.email, phone=None, name=who.name,
                                im_user_id=claim.im_user_id, method="self-link", now=datetime.now(UTC))  # fmt: skip
        told = await (await state.service()).people_linked(claim.platform, [who.email])
    except (PermissionError, ValueError) as e:
        return _back("/users", "error", str(e))
    except ApiError as e:
        return _back("/users", "error", e.message)
    rooms = f"; inviting it to {told} war room{'s' if told != 1 else ''}" if told else ""
    return _back("/users", "ok", f"{claim.im_user_id} on {claim.platform} is linked to you{rooms}.")


@router.post("/runbooks")
async def save_runbook(
    request: Request, csrf: str = Form(""), name: str = Form(""), markdown: str = Form("", max_length=200_000)
) -> Response:
    who = await identify(request)
    try:
        check_csrf(request, who, csrf)
        name = name.strip().lower()
        if not _RUNBOOK_NAME.match(name):
            raise ValueError("a runbook's name is lowercase letters, digits, dots, dashes, underscores (at most 100)")
        if not markdown.strip():
            raise ValueError("a runbook needs some text")
        created = await asyncio.to_thread(app_state(request).store.runbooks.put, name, markdown, datetime.now(UTC))
    except (PermissionError, ValueError) as e:
        return _back("/runbooks/new", "error", str(e))
    return _back(f"/runbooks/{name}", "ok", "Runbook added." if created else "Runbook saved.")


@router.post("/tokens")
async def new_token(request: Request, csrf: str = Form(""), label: str = Form("", max_length=200)) -> Response:
    """A personal API token, shown once, for scripts and the CLI (WARROOM_API_TOKEN=<it>)."""
    from starters.console.render import page

    who = await identify(request)
    state = app_state(request)
    try:
        check_csrf(request, who, csrf)
        if await asyncio.to_thread(state.store.accounts.get, who.email) is None:
            raise PermissionError("personal tokens belong to accounts; sign in with one (warroom users add)")
        made, secret = await asyncio.to_thread(
            state.store.accounts.new_token, who.email, label.strip(), datetime.now(UTC)
        )
    except PermissionError as e:
        return _back("/tokens", "error", str(e))
    mine = await asyncio.to_thread(state.store.accounts.tokens, who.email)
    return page(request, "tokens.html", tokens=mine, has_account=True, secret=secret, made=made)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: str, csrf: str = Form("")) -> Response:
    who = await identify(request)
    try:
        check_csrf(request, who, csrf)
    except PermissionError as e:
        return _back("/tokens", "error", str(e))
    done = await asyncio.to_thread(app_state(request).store.accounts.revoke, who.email, token_id[:32])
    return _back("/tokens", "ok" if done else "error", "Token revoked." if done else "No such token.")
