"""`warroom incident create | show | list | ack | snooze | close | reopen | responders | role`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from starters.cli.client import Api, incident_path
from starters.cli.errors import EXIT_API_ERROR, EXIT_USAGE, fail, handled
from starters.cli.options import Actor, ApiUrl, IncidentId, JsonOut, Platform, Wait
from starters.cli.output import PAST, SEVERITY_STYLE, STATUS_STYLE, ago, out, print_json, still_applying, styled
from starters.cli.people import default_actor, matches, parse_responders
from starters.cli.render import incident_line, incident_panel, room_panel, timeline_table
from starters.cli.room import open_room, print_room_outcome
from warroom.enums import Action, IncidentStatus, Role, RoomState, Severity

SEVERITIES = tuple(Severity)
STATUSES = tuple(IncidentStatus)

app = typer.Typer(help="Create, inspect and act on incidents.", no_args_is_help=True)


@app.command("create")
@handled
def incident_create(
    title: Annotated[str, typer.Option("--title", "-t", help="What is wrong.", show_default=False)],
    severity: Annotated[str, typer.Option("--severity", "-s", help=f"One of {', '.join(SEVERITIES)}.")] = "medium",
    responder: Annotated[
        list[str] | None,
        typer.Option("--responder", "-r", help="Email, phone, name or 'Name <email>'; repeat or separate with commas."),
    ] = None,
    description: Annotated[str, typer.Option("--description", "-d", help="Details.")] = "",
    label: Annotated[list[str] | None, typer.Option("--label", "-l", help="key=value; repeatable.")] = None,
    incident_id: Annotated[
        str | None, typer.Option("--id", help="Your own incident id (an existing id updates that incident).")
    ] = None,
    room: Annotated[bool, typer.Option("--room/--no-room", help="Open the war room right away.")] = False,
    platform: Platform = None,
    wait: Wait = 120,
    actor: Actor = None,
    api_url: ApiUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Create an incident; with --room also open its war room (--json adds it under "war_room")."""
    severity = severity.lower()
    if severity not in SEVERITIES:
        fail(f"--severity must be one of {', '.join(SEVERITIES)}, not {severity!r}", EXIT_USAGE)
    labels = {}
    for item in label or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--label wants key=value, not {item!r}", EXIT_USAGE)
        labels[key.strip()] = value.strip()
    body: dict[str, Any] = {
        "title": title,
        "description": description,
        "severity": severity,
        "responders": parse_responders(responder),
        "labels": labels,
    }
    if incident_id:
        body["id"] = incident_id
    actor = actor or default_actor()
    with Api(api_url, actor=actor) as api:
        r = api.call("POST", "/api/v1/incidents", json_body=body)
        incident = r.json()
        created = r.status_code == 201
        room_json = open_room(api, incident["id"], platform, actor, wait, quiet=as_json) if room else None
    if as_json:
        print_json(incident | ({"war_room": room_json} if room else {}))
    else:
        console = out()
        console.print(f"[green]✔[/] Incident {'created' if created else 'updated'}: ", incident_line(incident))
        if room_json is not None:
            print_room_outcome(console, room_json, incident["id"])
        else:
            console.print(f"[dim]Open its war room with `warroom room create {incident['id']}`.[/]")
    if room_json is not None and room_json.get("state") == RoomState.FAILED:
        raise typer.Exit(EXIT_API_ERROR)


@app.command("show")
@handled
def incident_show(
    incident_id: IncidentId,
    timeline: Annotated[int, typer.Option("--timeline", help="Timeline entries to show (0: all).", min=0)] = 15,
    api_url: ApiUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Show an incident, its war room and its timeline."""
    with Api(api_url) as api:
        data = api.json("GET", incident_path(incident_id))
    if as_json:
        print_json(data)
        return
    console = out()
    console.print(incident_panel(data["incident"]))
    console.print(room_panel(data["war_room"], incident_id))
    for room in data.get("more_war_rooms") or []:  # the incident's rooms on other platforms
        console.print(room_panel(room, incident_id))
    console.print(timeline_table(data.get("timeline") or [], timeline))
    console.print(f"[dim]Temporal workflow id: incident-{incident_id}[/]")


@app.command("list")
@handled
def incident_list(
    status: Annotated[str | None, typer.Option("--status", help=f"Only {' / '.join(STATUSES)}.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Continue after a previous page.")] = None,
    api_url: ApiUrl = None,
    as_json: JsonOut = False,
) -> None:
    """List incidents, newest first."""
    if status and status not in STATUSES:
        fail(f"--status must be one of {', '.join(STATUSES)}, not {status!r}", EXIT_USAGE)
    with Api(api_url) as api:
        data = api.json("GET", "/api/v1/incidents", params={"status": status, "limit": limit, "cursor": cursor})
    if as_json:
        print_json(data)
        return
    console = out()
    items = data.get("items") or []
    if not items:
        console.print("No incidents" + (f" that are {status}" if status else "") + ".")
        return
    t = Table(header_style="bold dim")
    t.add_column("ID", style="cyan", no_wrap=True)
    t.add_column("Severity")
    t.add_column("Status")
    t.add_column("Title")
    t.add_column("Responders", justify="right")
    t.add_column("Updated", no_wrap=True)
    for i in items:
        t.add_row(
            i["id"],
            styled(i.get("severity"), SEVERITY_STYLE),
            styled(i.get("status"), STATUS_STYLE),
            Text(i.get("title", "")),
            str(len(i.get("responders") or [])),
            ago(i.get("updated_at")),
        )
    console.print(t)
    if data.get("next_cursor"):
        console.print(f"[dim]More: warroom incident list --cursor {data['next_cursor']}[/]")


def _act(incident_id: str, action: Action, actor: str | None, api_url: str | None, as_json: bool, **extra: Any) -> None:
    actor = actor or default_actor()
    body = {"action": action, "actor": actor, "request_id": f"cli-{uuid.uuid4().hex}", **extra}
    with Api(api_url, actor=actor) as api:
        r = api.call("POST", f"{incident_path(incident_id)}/actions", json_body=body)
    incident = r.json()
    if as_json:
        print_json(incident)
        return
    console = out()
    if r.status_code == 202:
        still_applying(console, f"{action} of {incident_id} accepted and still being applied", incident_id)
        return
    extra_text = f" for {extra['minutes']} min" if extra.get("minutes") else ""
    console.print(f"[green]✔[/] {incident_id} {PAST.get(action, action)} by {actor}{extra_text}: ", end="")
    console.print(incident_line(incident))


@app.command("ack")
@handled
def incident_ack(incident_id: IncidentId, actor: Actor = None, api_url: ApiUrl = None, as_json: JsonOut = False):
    """Acknowledge an incident (also ends a snooze)."""
    _act(incident_id, Action.ACKNOWLEDGE, actor, api_url, as_json)


@app.command("snooze")
@handled
def incident_snooze(
    incident_id: IncidentId,
    minutes: Annotated[int, typer.Option("--minutes", "-m", min=1, max=7 * 24 * 60, help="How long.")] = 60,
    actor: Actor = None,
    api_url: ApiUrl = None,
    as_json: JsonOut = False,
):
    """Snooze an incident for --minutes; it comes back on its own afterwards."""
    _act(incident_id, Action.SNOOZE, actor, api_url, as_json, minutes=minutes)


@app.command("close")
@handled
def incident_close(incident_id: IncidentId, actor: Actor = None, api_url: ApiUrl = None, as_json: JsonOut = False):
    """Close (resolve) an incident."""
    _act(incident_id, Action.CLOSE, actor, api_url, as_json)


@app.command("reopen")
@handled
def incident_reopen(incident_id: IncidentId, actor: Actor = None, api_url: ApiUrl = None, as_json: JsonOut = False):
    """Reopen a closed incident."""
    _act(incident_id, Action.REOPEN, actor, api_url, as_json)


@app.command("responders")
@handled
def incident_responders(
    incident_id: IncidentId,
    add: Annotated[list[str] | None, typer.Option("--add", "-a", help="Add people (email, phone, name).")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="Remove people by email/phone/id.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Replace all responders (comma-separated or repeated).")
    ] = None,
    actor: Actor = None,
    api_url: ApiUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Show or change an incident's responders (--add / --remove / --set); the room follows."""
    if set_ is not None and (add or remove):
        fail("use either --set or --add/--remove", EXIT_USAGE)
    actor = actor or default_actor()
    with Api(api_url, actor=actor) as api:
        path = incident_path(incident_id)
        if set_ is None and not add and not remove:
            incident = api.json("GET", path)["incident"]
        else:
            if set_ is not None:
                people: list[dict[str, Any]] = parse_responders(set_)
            else:
                people = list(api.json("GET", path)["incident"].get("responders") or [])
                for key in remove or []:
                    if not any(matches(p, key) for p in people):
                        fail(f"{key!r} is not a responder of {incident_id}", EXIT_USAGE)
                    people = [p for p in people if not matches(p, key)]
                for p in parse_responders(add):
                    if not any(matches(q, p.get("email") or p.get("phone") or p.get("name", "")) for q in people):
                        people.append(p)
            incident = api.json("PUT", f"{path}/responders", json_body={"responders": people, "actor": actor})
    if as_json:
        print_json(incident)
        return
    console = out()
    t = Table(title=f"Responders of {incident_id}", title_justify="left", header_style="bold dim")
    t.add_column("Name")
    t.add_column("Email")
    t.add_column("Phone")
    t.add_column("ID", style="dim")
    for r in incident.get("responders") or []:
        t.add_row(r.get("name") or "", r.get("email") or "-", r.get("phone") or "-", r.get("id") or "")
    console.print(t)


@app.command("role")
@handled
def incident_role(
    incident_id: IncidentId,
    role: Annotated[Role, typer.Argument(help="lead, scribe or comms.", show_default=False)],
    person: Annotated[str, typer.Argument(help="Their email or name; '' for nobody.", show_default=False)],
    actor: Actor = None,
    api_url: ApiUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Give a role of the incident to someone (the status-update reminder names the lead)."""
    actor = actor or default_actor()
    with Api(api_url, actor=actor) as api:
        r = api.call(
            "PUT", f"{incident_path(incident_id)}/roles/{role.value}", json_body={"person": person, "actor": actor}
        )
    if as_json:
        print_json(r.json())
        return
    console = out()
    if r.status_code == 202:
        still_applying(console, f"{role.value} of {incident_id} accepted and still being recorded", incident_id)
        return
    roles = r.json()["roles"]
    held = ", ".join(f"{k}: {v}" for k, v in sorted(roles.items())) or "none"
    console.print(f"[green]✔[/] {incident_id}: {role.value} is {person or 'nobody'} now (roles: {held})")
