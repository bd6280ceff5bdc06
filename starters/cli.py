"""The `warroom` command line (typer + rich).

`warroom dev | worker | api` run processes; `warroom incident | room | users ...` are HTTP
clients of the War Room API (CONTRACT.md). Every client command prints human-readable output,
or the API's JSON with `--json`.

Exit codes: 0 ok, 1 the API refused or failed the request, 2 bad usage, 3 the API is unreachable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import getpass
import json
import logging
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import httpx
import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

EXIT_API_ERROR = 1
EXIT_UNREACHABLE = 3
DEFAULT_API_URL = "http://localhost:8000"
SEVERITIES = ("critical", "high", "medium", "low")
STATUSES = ("triggered", "acknowledged", "snoozed", "closed")
STATUS_STYLE = {"triggered": "bold red", "acknowledged": "yellow", "snoozed": "blue", "closed": "green"}
SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "dim"}
ROOM_STYLE = {
    "none": "dim",
    "creating": "yellow",
    "active": "bold green",
    "dismissing": "yellow",
    "dismissed": "dim",
    "failed": "bold red",
}
MEMBER_STYLE = {"invited": "green", "pending": "yellow", "unlinked": "yellow", "failed": "red", "removed": "dim"}
OUTCOME_STYLE = {"ok": "green", "failed": "red", "refused": "yellow"}
PAST = {"acknowledge": "acknowledged", "snooze": "snoozed", "close": "closed", "reopen": "reopened"}

app = typer.Typer(
    name="warroom",
    help="War Room: incident war rooms on your IM platform, orchestrated by Temporal.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    epilog="Exit codes: 0 ok, 1 the API refused the request, 2 bad usage, 3 the API is unreachable.",
)
incident_app = typer.Typer(help="Create, inspect and act on incidents.", no_args_is_help=True)
room_app = typer.Typer(help="Open, inspect and dismiss an incident's war room.", no_args_is_help=True)
users_app = typer.Typer(help="Links between responders and their IM accounts.", no_args_is_help=True)
app.add_typer(incident_app, name="incident")
app.add_typer(room_app, name="room")
app.add_typer(users_app, name="users")

F = TypeVar("F", bound=Callable[..., Any])


# ---------------------------------------------------------------------------- output


def out() -> Console:
    return Console(highlight=False, soft_wrap=False)


def err() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def styled(value: str | None, styles: dict[str, str]) -> Text:
    value = value or "-"
    return Text(value, style=styles.get(value, ""))


def when(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        at = datetime.fromisoformat(iso).astimezone()
    except ValueError:
        return iso
    return at.strftime("%Y-%m-%d %H:%M:%S")


def ago(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        seconds = time.time() - datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return iso
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


# ---------------------------------------------------------------------------- errors


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_API_ERROR, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint


def fail(message: str, code: int = EXIT_API_ERROR, hint: str = "") -> NoReturn:
    raise CliError(message, code, hint)


def handled(fn: F) -> F:
    """Print a CliError as one clear line (plus a hint) on stderr and exit with its code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CliError as e:
            console = err()
            console.print(f"[bold red]Error:[/] {e.message}", soft_wrap=True)
            if e.hint:
                console.print(f"[dim]{e.hint}[/]", soft_wrap=True)
            raise typer.Exit(e.code) from None

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------------------- the API client


def _client_settings() -> tuple[str, str]:
    """API URL and token from the environment or `.env` (WARROOM_PUBLIC_URL, WARROOM_API_TOKEN)."""
    try:
        from warroom.settings import Settings

        s = Settings()
        return s.public_url, s.api_token.get_secret_value()
    except Exception:  # an unrelated bad setting must not break the client
        return os.environ.get("WARROOM_PUBLIC_URL", DEFAULT_API_URL), os.environ.get("WARROOM_API_TOKEN", "")


def default_actor() -> str:
    """Who is acting: $WARROOM_ACTOR, else git's user.email, else the login name."""
    if os.environ.get("WARROOM_ACTOR"):
        return os.environ["WARROOM_ACTOR"]
    try:
        email = subprocess.run(
            ["git", "config", "user.email"], capture_output=True, text=True, timeout=2, check=False
        ).stdout.strip()
        if email:
            return email
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return os.environ.get("USER") or getpass.getuser() or "cli"
    except Exception:
        return "cli"


class Api:
    def __init__(self, base_url: str | None, *, actor: str | None = None, timeout: float = 60) -> None:
        url, token = _client_settings()
        self.base_url = (base_url or url or DEFAULT_API_URL).rstrip("/")
        headers = {"X-Warroom-Source": "cli", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if actor:
            headers["X-Warroom-Actor"] = actor
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        accept: tuple[int, ...] = (200, 201, 202),
    ) -> httpx.Response:
        try:
            r = self.http.request(
                method, path, json=json_body, params={k: v for k, v in (params or {}).items() if v is not None}
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            fail(
                f"cannot reach the War Room API at {self.base_url} ({e}).",
                EXIT_UNREACHABLE,
                "Start the local stack with `warroom dev`, or point --api-url (or WARROOM_PUBLIC_URL) "
                "at a running API.",
            )
        except httpx.TimeoutException:
            fail(f"the War Room API at {self.base_url} did not answer in time ({method} {path}).")
        except httpx.HTTPError as e:
            fail(f"request to the War Room API at {self.base_url} failed: {e}", EXIT_UNREACHABLE)
        if r.status_code in accept:
            return r
        fail(api_error_message(r), EXIT_API_ERROR, _hint_for(r))

    def json(self, method: str, path: str, **kw: Any) -> Any:
        r = self.call(method, path, **kw)
        try:
            return r.json()
        except ValueError:
            fail(f"the API answered {r.status_code} with something that is not JSON: {r.text[:200]!r}")


def api_error_message(r: httpx.Response) -> str:
    try:
        e = r.json()["error"]
        return f"{e['message']} (HTTP {r.status_code}, {e.get('code', 'error')})"
    except Exception:
        text = r.text.strip()[:300] or r.reason_phrase
        return f"the API answered HTTP {r.status_code}: {text}"


def _hint_for(r: httpx.Response) -> str:
    if r.status_code == 401:
        return "Set WARROOM_API_TOKEN to the API's token."
    if r.status_code == 404 and "/incidents/" in r.request.url.path:
        return "List incidents with `warroom incident list`."
    return ""


# ---------------------------------------------------------------------------- shared options

ApiUrl = Annotated[
    str | None,
    typer.Option("--api-url", help="War Room API base URL (default: $WARROOM_PUBLIC_URL or http://localhost:8000)"),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer (for scripts).")]
Actor = Annotated[
    str | None, typer.Option("--actor", help="Who is acting (default: $WARROOM_ACTOR, git user.email or $USER)")
]
IncidentId = Annotated[str, typer.Argument(help="Incident id.", show_default=False)]
Platform = Annotated[str | None, typer.Option("--platform", help="IM platform (default: the API's default)")]
Wait = Annotated[float, typer.Option("--wait", help="Seconds to wait for the war room.", min=0)]

_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{5,19}$")
_NAMED = re.compile(r"^\s*(?P<name>[^<>]+?)\s*<(?P<contact>[^<>]+)>\s*$")


def parse_responders(values: list[str] | None) -> list[dict[str, str]]:
    """`a@x.io`, `Ann <a@x.io>`, `+8613800000000` or a plain name; commas separate several."""
    people: list[dict[str, str]] = []
    for value in values or []:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            person: dict[str, str] = {}
            m = _NAMED.match(part)
            if m:
                person["name"], part = m["name"], m["contact"].strip()
            if "@" in part:
                person["email"] = part
            elif _PHONE.match(part):
                person["phone"] = part
            elif "name" not in person:
                person["name"] = part
            else:
                fail(f"cannot read responder {value!r}: expected an email, a phone number or a name", 2)
            people.append(person)
    return people


def _matches(responder: dict[str, Any], key: str) -> bool:
    key = key.strip().lower()
    return key in {str(responder.get(f) or "").lower() for f in ("id", "email", "phone", "name")}


# ---------------------------------------------------------------------------- rendering


def incident_line(i: dict[str, Any]) -> Text:
    t = Text()
    t.append(i["id"], style="bold cyan")
    t.append("  ")
    t.append(i.get("severity", ""), style=SEVERITY_STYLE.get(i.get("severity", ""), ""))
    t.append("  ")
    t.append(i.get("status", ""), style=STATUS_STYLE.get(i.get("status", ""), ""))
    t.append(f"  {i.get('title', '')}")
    return t


def incident_panel(i: dict[str, Any]) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("ID", Text(i["id"], style="cyan"))
    grid.add_row("Status", styled(i.get("status"), STATUS_STYLE))
    grid.add_row("Severity", styled(i.get("severity"), SEVERITY_STYLE))
    if i.get("snoozed_until"):
        grid.add_row("Snoozed until", when(i["snoozed_until"]))
    grid.add_row("Responders", ", ".join(_person(r) for r in i.get("responders", [])) or "-")
    if i.get("labels"):
        grid.add_row("Labels", ", ".join(f"{k}={v}" for k, v in i["labels"].items()))
    grid.add_row("Created", f"{when(i.get('created_at'))} ({ago(i.get('created_at'))})")
    grid.add_row("Updated", f"{when(i.get('updated_at'))} (version {i.get('version', '?')})")
    body: list[Any] = [grid]
    if i.get("description"):
        body += [Text(""), Text(i["description"])]
    return Panel(Group(*body), title=f"[bold]{_escape(i.get('title', ''))}[/]", title_align="left", expand=False)


def _person(r: dict[str, Any]) -> str:
    contact = r.get("email") or r.get("phone") or r.get("id") or ""
    name = r.get("name") or ""
    return f"{name} <{contact}>" if name and contact and name != contact.split("@")[0] else contact or name


def _escape(s: str) -> str:
    return s.replace("[", r"\[")


def room_panel(room: dict[str, Any], incident_id: str) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("State", styled(room.get("state"), ROOM_STYLE))
    grid.add_row("Platform", room.get("platform") or "-")
    if room.get("name"):
        grid.add_row("Name", room["name"])
    if room.get("chat_id"):
        grid.add_row("Chat", room["chat_id"])
    if room.get("join_url") and room.get("state") in ("creating", "active"):
        grid.add_row("Open", f"[link={room['join_url']}]{room['join_url']}[/link]")
    if room.get("detail"):
        grid.add_row("Detail", Text(room["detail"]))
    body: list[Any] = [grid]
    members = room.get("members") or []
    if members:
        t = Table(box=None, pad_edge=False, header_style="bold dim")
        t.add_column("Member")
        t.add_column("IM user")
        t.add_column("State")
        t.add_column("Detail", overflow="fold")
        for m in members:
            t.add_row(
                _person(m) or m.get("responder_id", ""),
                m.get("im_user_id") or "-",
                styled(m.get("state"), MEMBER_STYLE),
                m.get("detail") or "",
            )
        body += [Text(""), t]
    return Panel(Group(*body), title=f"War room of {incident_id}", title_align="left", expand=False)


def timeline_table(entries: list[dict[str, Any]], limit: int) -> Table:
    shown = entries[-limit:] if limit else entries
    t = Table(
        title=f"Timeline (last {len(shown)} of {len(entries)})" if len(shown) < len(entries) else "Timeline",
        title_justify="left",
        header_style="bold dim",
    )
    t.add_column("At", no_wrap=True)
    t.add_column("Actor")
    t.add_column("Source")
    t.add_column("Kind", no_wrap=True)
    t.add_column("Outcome")
    t.add_column("Detail", overflow="fold")
    for e in shown:
        t.add_row(
            when(e.get("at")),
            e.get("actor", ""),
            e.get("source", ""),
            e.get("kind", ""),
            styled(e.get("outcome"), OUTCOME_STYLE),
            Text(e.get("detail") or ""),
        )
    return t


# ---------------------------------------------------------------------------- incidents


@incident_app.command("create")
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
        fail(f"--severity must be one of {', '.join(SEVERITIES)}, not {severity!r}", 2)
    labels = {}
    for item in label or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--label wants key=value, not {item!r}", 2)
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
        room_json = _open_room(api, incident["id"], platform, actor, wait, quiet=as_json) if room else None
    if as_json:
        print_json(incident | ({"war_room": room_json} if room else {}))
    else:
        console = out()
        console.print(f"[green]✔[/] Incident {'created' if created else 'updated'}: ", incident_line(incident))
        if room_json is not None:
            _print_room_outcome(console, room_json, incident["id"])
        else:
            console.print(f"[dim]Open its war room with `warroom room create {incident['id']}`.[/]")
    if room_json is not None and room_json.get("state") == "failed":
        raise typer.Exit(EXIT_API_ERROR)


@incident_app.command("show")
@handled
def incident_show(
    incident_id: IncidentId,
    timeline: Annotated[int, typer.Option("--timeline", help="Timeline entries to show (0: all).", min=0)] = 15,
    api_url: ApiUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Show an incident, its war room and its timeline."""
    with Api(api_url) as api:
        data = api.json("GET", f"/api/v1/incidents/{_path(incident_id)}")
    if as_json:
        print_json(data)
        return
    console = out()
    console.print(incident_panel(data["incident"]))
    console.print(room_panel(data["war_room"], incident_id))
    console.print(timeline_table(data.get("timeline") or [], timeline))
    console.print(f"[dim]Temporal workflow id: incident-{incident_id}[/]")


@incident_app.command("list")
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
        fail(f"--status must be one of {', '.join(STATUSES)}, not {status!r}", 2)
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


def _act(incident_id: str, action: str, actor: str | None, api_url: str | None, as_json: bool, **extra: Any) -> None:
    actor = actor or default_actor()
    body = {"action": action, "actor": actor, "request_id": f"cli-{uuid.uuid4().hex}", **extra}
    with Api(api_url, actor=actor) as api:
        r = api.call("POST", f"/api/v1/incidents/{_path(incident_id)}/actions", json_body=body)
    incident = r.json()
    if as_json:
        print_json(incident)
        return
    console = out()
    if r.status_code == 202:
        console.print(
            f"[yellow]…[/] {action} of {incident_id} accepted and still being applied; "
            f"check with `warroom incident show {incident_id}`."
        )
        return
    extra_text = f" for {extra['minutes']} min" if extra.get("minutes") else ""
    console.print(f"[green]✔[/] {incident_id} {PAST.get(action, action)} by {actor}{extra_text}: ", end="")
    console.print(incident_line(incident))


@incident_app.command("ack")
@handled
def incident_ack(incident_id: IncidentId, actor: Actor = None, api_url: ApiUrl = None, as_json: JsonOut = False):
    """Acknowledge an incident (also ends a snooze)."""
    _act(incident_id, "acknowledge", actor, api_url, as_json)


@incident_app.command("snooze")
@handled
def incident_snooze(
    incident_id: IncidentId,
    minutes: Annotated[int, typer.Option("--minutes", "-m", min=1, max=7 * 24 * 60, help="How long.")] = 60,
    actor: Actor = None,
    api_url: ApiUrl = None,
    as_json: JsonOut = False,
):
    """Snooze an incident for --minutes; it comes back on its own afterwards."""
    _act(incident_id, "snooze", actor, api_url, as_json, minutes=minutes)


@incident_app.command("close")
@handled
def incident_close(incident_id: IncidentId, actor: Actor = None, api_url: ApiUrl = None, as_json: JsonOut = False):
    """Close (resolve) an incident."""
    _act(incident_id, "close", actor, api_url, as_json)


@incident_app.command("reopen")
@handled
def incident_reopen(incident_id: IncidentId, actor: Actor = None, api_url: ApiUrl = None, as_json: JsonOut = False):
    """Reopen a closed incident."""
    _act(incident_id, "reopen", actor, api_url, as_json)


@incident_app.command("responders")
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
        fail("use either --set or --add/--remove", 2)
    actor = actor or default_actor()
    with Api(api_url, actor=actor) as api:
        path = f"/api/v1/incidents/{_path(incident_id)}"
        if set_ is None and not add and not remove:
            incident = api.json("GET", path)["incident"]
        else:
            if set_ is not None:
                people: list[dict[str, Any]] = parse_responders(set_)
            else:
                people = list(api.json("GET", path)["incident"].get("responders") or [])
                for key in remove or []:
                    if not any(_matches(p, key) for p in people):
                        fail(f"{key!r} is not a responder of {incident_id}", 2)
                    people = [p for p in people if not _matches(p, key)]
                for p in parse_responders(add):
                    if not any(_matches(q, p.get("email") or p.get("phone") or p.get("name", "")) for q in people):
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


# ---------------------------------------------------------------------------- war rooms


def _open_room(api: Api, incident_id: str, platform: str | None, actor: str, wait: float, quiet: bool) -> Any:
    console = err()
    status = console.status(f"Opening the war room of {incident_id}…") if not quiet else _nullcontext()
    with status:
        body: dict[str, Any] = {"actor": actor}
        if platform:
            body["platform"] = platform
        r = api.call(
            "POST", f"/api/v1/incidents/{_path(incident_id)}/war-room", json_body=body, accept=(200, 201, 202, 502)
        )
        room = r.json()
        if r.status_code == 202:
            room = _wait_for_room(api, incident_id, {"active", "failed"}, wait) or room
    return room


def _wait_for_room(api: Api, incident_id: str, states: set[str], wait: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + wait
    room = None
    while time.monotonic() < deadline:
        room = api.json("GET", f"/api/v1/incidents/{_path(incident_id)}")["war_room"]
        if room.get("state") in states:
            return room
        time.sleep(0.5)
    return room


def _print_room_outcome(console: Console, room: dict[str, Any], incident_id: str) -> None:
    state = room.get("state")
    if state == "active":
        console.print(f"[green]✔[/] War room open: [bold]{room.get('name') or room.get('chat_id')}[/]")
        if room.get("join_url"):
            console.print(f"  Open it: [link={room['join_url']}]{room['join_url']}[/link]")
    elif state == "failed":
        console.print(f"[bold red]✘ The war room could not be created:[/] {room.get('detail') or 'see the timeline'}")
        console.print(f"[dim]Details: `warroom incident show {incident_id}`.[/]")
    else:
        console.print(f"[yellow]…[/] The war room is still {state}; check with `warroom room show {incident_id}`.")


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@room_app.command("create")
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
        room = _open_room(api, incident_id, platform, actor, wait, quiet=as_json)
    if as_json:
        print_json(room)
    else:
        _print_room_outcome(out(), room, incident_id)
    if room.get("state") == "failed":
        raise typer.Exit(EXIT_API_ERROR)


@room_app.command("dismiss")
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
        status = err().status(f"Dismissing the war room of {incident_id}…") if not as_json else _nullcontext()
        with status:
            path = f"/api/v1/incidents/{_path(incident_id)}/war-room"
            try:
                r = api.call("DELETE", path)
            except CliError as e:
                if "close it" in e.message:
                    e.hint = f"Close the incident first: `warroom incident close {incident_id}`."
                raise
            room = r.json()
            if r.status_code == 202:
                room = _wait_for_room(api, incident_id, {"dismissed", "failed"}, wait) or room
    if as_json:
        print_json(room)
        return
    if room.get("state") == "dismissed":
        out().print(f"[green]✔[/] War room of {incident_id} dismissed.")
    else:
        out().print(f"[yellow]…[/] The war room is {room.get('state')}; check with `warroom room show {incident_id}`.")


@room_app.command("show")
@handled
def room_show(incident_id: IncidentId, api_url: ApiUrl = None, as_json: JsonOut = False) -> None:
    """Show the incident's war room and its members."""
    with Api(api_url) as api:
        room = api.json("GET", f"/api/v1/incidents/{_path(incident_id)}")["war_room"]
    if as_json:
        print_json(room)
    else:
        out().print(room_panel(room, incident_id))


# ---------------------------------------------------------------------------- users


@users_app.command("list")
@handled
def users_list(platform: Platform = None, api_url: ApiUrl = None, as_json: JsonOut = False) -> None:
    """List the stored links between people and IM accounts."""
    with Api(api_url) as api:
        data = api.json("GET", "/api/v1/users", params={"platform": platform})
    if as_json:
        print_json(data)
        return
    items = data.get("items") or []
    console = out()
    if not items:
        console.print("No linked users yet. Link the responders of open incidents with `warroom users link`.")
        return
    t = Table(header_style="bold dim")
    for col in ("Platform", "Name", "Email", "Phone", "IM user", "How", "Linked"):
        t.add_column(col)
    for u in items:
        t.add_row(
            u.get("platform", ""),
            u.get("name") or "",
            u.get("email") or "-",
            u.get("phone") or "-",
            u.get("im_user_id", ""),
            u.get("method", ""),
            ago(u.get("linked_at")),
        )
    console.print(t)


@users_app.command("link")
@handled
def users_link(platform: Platform = None, api_url: ApiUrl = None, as_json: JsonOut = False) -> None:
    """Link every responder of every open incident to their IM account (one click, all at once)."""
    with Api(api_url, timeout=300) as api:
        status = err().status("Linking users…") if not as_json else _nullcontext()
        with status:
            data = api.json("POST", "/api/v1/users/link", json_body={"platform": platform} if platform else {})
    if as_json:
        print_json(data)
        return
    console = out()
    linked, unlinked = data.get("linked") or [], data.get("unlinked") or []
    console.print(f"[green]✔[/] {len(linked)} linked, [yellow]{len(unlinked)} not linked[/] on {data.get('platform')}.")
    if linked or unlinked:
        t = Table(header_style="bold dim")
        t.add_column("Responder")
        t.add_column("IM user")
        t.add_column("State")
        t.add_column("Detail", overflow="fold")
        for m in linked + unlinked:
            t.add_row(
                m.get("responder_id", ""),
                m.get("im_user_id") or "-",
                styled(m.get("state"), MEMBER_STYLE),
                m.get("detail") or "",
            )
        console.print(t)


# ---------------------------------------------------------------------------- doctor


async def _doctor_checks(settings: Any, platforms: list[str]) -> list[dict[str, Any]]:
    """Build each platform's adapter from the settings and run its setup checks."""
    from warroom.im.registry import build_adapter
    from warroom.store.db import Database

    db = Database(settings.database_url)  # lazy: nothing is opened unless an adapter needs it
    checks: list[dict[str, Any]] = []
    try:
        for platform in platforms:
            try:
                adapter = build_adapter(platform, db, settings)
            except Exception as e:
                checks.append({"platform": platform, "name": "adapter", "ok": False, "detail": str(e), "fix": ""})
                continue
            try:
                checks += [c.model_dump(mode="json") for c in await adapter.setup_checks()]
            except Exception as e:
                checks.append(
                    {
                        "platform": platform,
                        "name": "checks",
                        "ok": False,
                        "detail": f"{type(e).__name__}: {e}",
                        "fix": "",
                    }
                )
            finally:
                await adapter.aclose()
    finally:
        db.dispose()
    return checks


@app.command("doctor")
@handled
def doctor(
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", help="Check this platform even when its credentials are not set; repeatable."),
    ] = None,
    as_json: JsonOut = False,
) -> None:
    """Check each configured IM platform: credentials, permissions (scopes) and callback URLs.

    Exits 1 when any check fails, with what to fix next to it.
    """
    settings = _settings_or_exit()
    platforms = platform or settings.configured_platforms()
    checks = asyncio.run(_doctor_checks(settings, platforms))
    failed = [c for c in checks if not c["ok"]]
    if as_json:
        print_json({"ok": not failed, "platforms": platforms, "checks": checks})
    else:
        t = Table(header_style="bold dim", title="warroom doctor", title_justify="left")
        t.add_column("Platform")
        t.add_column("Check")
        t.add_column("")
        t.add_column("Detail", overflow="fold")
        t.add_column("Fix", overflow="fold")
        for c in checks:
            mark = Text("✔", style="green") if c["ok"] else Text("✘", style="bold red")
            t.add_row(c["platform"], c["name"], mark, Text(c.get("detail") or ""), Text(c.get("fix") or ""))
        console = out()
        console.print(t)
        if failed:
            console.print(
                f"[bold red]{len(failed)} of {len(checks)} checks failed.[/] Fix them and run `warroom doctor` again."
            )
        else:
            console.print(f"[green]✔ All {len(checks)} checks passed[/] for {', '.join(platforms)}.")
    if failed:
        raise typer.Exit(EXIT_API_ERROR)


@app.command("repair")
@handled
def repair(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the stuck incidents.")] = False,
    as_json: JsonOut = False,
) -> None:
    """Reset incidents whose workflow can no longer be replayed (a task failing for nondeterminism)
    to the task that wrote what the replay rejects; signals and updates sent since are delivered
    again. Exits 1 when an incident could not be reset."""
    settings = _settings_or_exit()
    try:
        results = asyncio.run(_repair(settings, dry_run))
    except RuntimeError as e:
        if "connect" not in str(e).lower():
            raise
        fail(
            f"cannot reach Temporal at {settings.temporal_address}: {e}",
            EXIT_UNREACHABLE,
            "Start it with `warroom dev`, or set WARROOM_TEMPORAL_ADDRESS.",
        )
    failed = [r for r in results if r["error"]]
    if as_json:
        print_json({"dry_run": dry_run, "stuck": results})
    elif not results:
        out().print("[green]✔ No incident is stuck.[/]")
    else:
        t = Table(header_style="bold dim", title="warroom repair", title_justify="left")
        for col in ("Workflow", "Failed at", "Reset to", "Error", "Outcome"):
            t.add_column(col, overflow="fold")
        for r in results:
            outcome = (
                Text(f"✘ {r['error']}", style="bold red")
                if r["error"]
                else Text("would reset" if dry_run else f"✔ reset: run {r['new_run_id']}", style="green")
            )
            where = (f"event {r['failed_event_id']}", f"event {r['reset_to']}")
            t.add_row(r["workflow_id"], *where, r["message"], outcome)
        out().print(t)
    if failed:
        raise typer.Exit(EXIT_API_ERROR)


async def _repair(settings: Any, dry_run: bool) -> list[dict[str, Any]]:
    from temporalio.service import RPCError

    from starters.repair import find_stuck, reset
    from workers.main import connect

    client = await connect(settings, service="warroom-cli")
    results = []
    for stuck in await find_stuck(client):
        result = {**dataclasses.asdict(stuck), "new_run_id": None, "error": None}
        if not dry_run:
            try:
                result["new_run_id"] = await reset(client, stuck)
            except RPCError as e:
                result["error"] = str(e)
        results.append(result)
    return results


# ---------------------------------------------------------------------------- processes


def _setup_logging(level: str) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level.upper(),
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=err(), rich_tracebacks=True, show_path=False)],
        force=True,
    )
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))


LogLevel = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]


def _settings_or_exit() -> Any:
    from warroom.settings import Settings

    try:
        return Settings()
    except Exception as e:
        fail(f"invalid settings: {e}", 2)


@app.command("dev")
@handled
def dev(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where local state lives.")] = Path(".warroom"),
    db_filename: Annotated[
        Path | None, typer.Option("--db-filename", help="Temporal's database file (default: <data-dir>/temporal.db)")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address the API listens on.")] = "127.0.0.1",
    api_port: Annotated[int, typer.Option("--api-port", "--port", help="API port.")] = 8000,
    temporal_port: Annotated[int, typer.Option("--temporal-port", help="Temporal frontend (gRPC) port.")] = 7233,
    ui_port: Annotated[int, typer.Option("--ui-port", help="Temporal UI port.")] = 8233,
    ui: Annotated[bool, typer.Option("--ui/--headless", help="Serve the Temporal UI.")] = True,
    temporal_address: Annotated[
        str | None, typer.Option("--temporal-address", help="Use this Temporal server instead of starting one.")
    ] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every HTTP request.")] = False,
    log_level: LogLevel = "info",
) -> None:
    """Run the whole local stack: Temporal dev server + UI, worker, API with the sandbox IM page."""
    from starters.dev import DevOptions, run_dev

    _setup_logging(log_level)
    for name in ("temporalio", "uvicorn.error"):  # the banner says what they would
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    opts = DevOptions(
        data_dir=data_dir,
        db_filename=db_filename,
        host=host,
        api_port=api_port,
        temporal_port=temporal_port,
        ui_port=ui_port,
        ui=ui,
        temporal_address=temporal_address,
        access_log=access_log,
    )
    try:
        code = asyncio.run(run_dev(opts, err()))
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


@app.command("worker")
@handled
def worker(log_level: LogLevel = "info") -> None:
    """Run a worker for WARROOM_TASK_QUEUE (or its regional queue when WARROOM_REGION is set)."""
    from workers.main import run_worker

    _setup_logging(log_level)
    settings = _settings_or_exit()
    try:
        asyncio.run(run_worker(settings))
    except KeyboardInterrupt:
        pass
    except RuntimeError as e:
        if "connect" in str(e).lower():
            fail(
                f"cannot reach Temporal at {settings.temporal_address}: {e}",
                EXIT_UNREACHABLE,
                "Start it with `warroom dev`, or set WARROOM_TEMPORAL_ADDRESS.",
            )
        raise


@app.command("api")
@handled
def api(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    log_level: LogLevel = "info",
) -> None:
    """Run the HTTP API (incidents, IM callbacks, the sandbox page) against a running Temporal."""
    import uvicorn

    from starters.api.app import create_app
    from starters.dev import port_in_use

    _setup_logging(log_level)
    settings = _settings_or_exit()
    if port_in_use(host, port):
        fail(f"port {port} is already in use on {host}; pick another with --port", 1)
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, log_level=log_level.lower())


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as pkg_version

        try:
            typer.echo(f"warroom {pkg_version('warroom')}")
        except PackageNotFoundError:
            typer.echo("warroom (not installed)")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_version)
    ] = False,
) -> None:
    """War Room: incident war rooms on your IM platform, orchestrated by Temporal."""


def _path(segment: str) -> str:
    from urllib.parse import quote

    return quote(segment, safe="")


if __name__ == "__main__":
    app()
