"""`warroom room create | join | dismiss | show`: an incident's war room (and how to open one and wait for it,
which `incident create --room` shares)."""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Annotated, Any

import typer
from rich.console import Console

from starters.cli.client import Api, incident_path
from starters.cli.errors import EXIT_API_ERROR, EXIT_USAGE, CliError, handled
from starters.cli.options import Actor, ApiUrl, IncidentId, JsonOut, Platform, Wait
from starters.cli.output import err, out, print_json, still_applying
from starters.cli.people import default_actor
from starters.cli.render import room_panel
from warroom.enums import RoomState

app = typer.Typer(help="Open, inspect and dismiss an incident's war room.", no_args_is_help=True)


def open_room(api: Api, incident_id: str, platform: str | None, actor: str, wait: float, quiet: bool) -> Any:
    """Ask for the room and, while the API answers 202 (still opening), wait up to `wait` seconds
    for it to be active or failed; a spinner on stderr unless `quiet` (--json)."""
    console = err()
    status = console.status(f"Opening the war room of {incident_id}…") if not quiet else nullcontext()
    with status:
        body: dict[str, Any] = {"actor": actor}
        if platform:
            body["platform"] = platform
        r = api.call("POST", f"{incident_path(incident_id)}/war-room", json_body=body, accept=(200, 201, 202, 502))
        room = r.json()
        if r.status_code == 202:
            states = {RoomState.ACTIVE, RoomState.FAILED}
            room = _wait_for_room(api, incident_id, states, wait, room.get("platform")) or room
    return room


def _wait_for_room(
    api: Api, incident_id: str, states: set[str], wait: float, platform: str | None = None
) -> dict[str, Any] | None:
    """The incident's room (on `platform`: the first, or one of its other rooms) once in `states`."""
    deadline = time.monotonic() + wait
    room = None
    while time.monotonic() < deadline:
        data = api.json("GET", incident_path(incident_id))
        rooms = [data["war_room"], *data.get("more_war_rooms", [])]
        room = next((r for r in rooms if r.get("platform") == platform), data["war_room"])
        if room.get("state") in states:
            return room
        time.sleep(0.5)
    return room


def print_room_outcome(console: Console, room: dict[str, Any], incident_id: str) -> None:
    state = room.get("state")
    if state == RoomState.ACTIVE:
        console.print(f"[green]✔[/] War room open: [bold]{room.get('name') or room.get('chat_id')}[/]")
        if room.get("join_url"):
            console.print(f"  Open it: [link={room['join_url']}]{room['join_url']}[/link]")
    elif state == RoomState.FAILED:
        console.print(f"[bold red]✘ The war room could not be created:[/] {room.get('detail') or 'see the timeline'}")
        console.print(f"[dim]Details: `warroom incident show {incident_id}`.[/]")
    else:
        # asked for and not made yet (`none` until the workflow takes the request, then `creating`)
        opening = state in (RoomState.NONE, RoomState.CREATING)
        what = "The war room is still being opened" if opening else f"The war room is still {state}"
        still_applying(console, what, incident_id, show="room")


@app.command("create")
@handled
def room_create(
    incident_id: IncidentId,
    platform: Platform = None,
    wait: Wait = 120,
    actor: Actor = None,
    api_url: ApiUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Open the incident's war room (idempotent: an open room is returned as it is)."""
    actor = actor or default_actor()
    with Api(api_url, actor=actor) as api:
        room = open_room(api, incident_id, platform, actor, wait, quiet=as_json)
    if as_json:
        print_json(room)
    else:
        print_room_outcome(out(), room, incident_id)
    if room.get("state") == RoomState.FAILED:
        raise typer.Exit(EXIT_API_ERROR)


@app.command("join")
@handled
def room_join(
    incident_id: IncidentId,
    email: Annotated[str | None, typer.Option("--email", help="Who joins (default: the actor, when an email).")] = None,
    actor: Actor = None,
    api_url: ApiUrl = None,
    as_json: JsonOut = False,
) -> None:
    """View War Room: the room's link, or where the platform has none, be added to the room."""
    actor = actor or default_actor()
    email = email or (actor if "@" in actor else None)
    if not email:
        raise CliError("say who joins: --email you@example.com", code=EXIT_USAGE)
    with Api(api_url, actor=actor) as api:
        r = api.call("POST", f"{incident_path(incident_id)}/war-room/join", json_body={"email": email, "actor": actor})
        room = r.json()
    if as_json:
        print_json(room)
        return
    if not room.get("added"):
        out().print(f"Open the war room: {room.get('join_url')}")
        return
    member = next((m for m in room.get("members") or [] if m.get("email") == email), {})
    state = member.get("state", "pending")
    if state == "invited":
        out().print(f"[green]✔[/] {email} was added to the war room of {incident_id}.")
    else:
        detail = member.get("detail") or "see `warroom room show`"
        out().print(f"[yellow]…[/] {email} is {state} in the war room of {incident_id}: {detail}")


@app.command("dismiss")
@handled
def room_dismiss(
    incident_id: IncidentId,
    wait: Wait = 120,
    actor: Actor = None,
    api_url: ApiUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Dismiss the war room of a closed incident."""
    actor = actor or default_actor()
    with Api(api_url, actor=actor) as api:
        status = err().status(f"Dismissing the war room of {incident_id}…") if not as_json else nullcontext()
        with status:
            path = f"{incident_path(incident_id)}/war-room"
            try:
                r = api.call("DELETE", path)
            except CliError as e:
                if "close it" in e.message:
                    e.hint = f"Close the incident first: `warroom incident close {incident_id}`."
                raise
            room = r.json()
            if r.status_code == 202:
                room = _wait_for_room(api, incident_id, {RoomState.DISMISSED, RoomState.FAILED}, wait) or room
    if as_json:
        print_json(room)
        return
    if room.get("state") == RoomState.DISMISSED:
        out().print(f"[green]✔[/] War room of {incident_id} dismissed.")
    else:
        state = room.get("state")
        what = f"dismissal of the war room of {incident_id} accepted and still being applied (it is {state})"
        still_applying(out(), what, incident_id, show="room")


@app.command("show")
@handled
def room_show(incident_id: IncidentId, api_url: ApiUrl = None, as_json: JsonOut = False) -> None:
    """Show the incident's war room and its members."""
    with Api(api_url) as api:
        room = api.json("GET", incident_path(incident_id))["war_room"]
    if as_json:
        print_json(room)
    else:
        out().print(room_panel(room, incident_id))
