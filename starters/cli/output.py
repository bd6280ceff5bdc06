"""Where output goes and how values look: consoles, JSON, colours per state, times."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from warroom.enums import Action, IncidentStatus, MemberState, Outcome, RoomState, Severity

STATUS_STYLE = {
    IncidentStatus.TRIGGERED: "bold red",
    IncidentStatus.ACKNOWLEDGED: "yellow",
    IncidentStatus.SNOOZED: "blue",
    IncidentStatus.CLOSED: "green",
}
SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "dim",
}
ROOM_STYLE = {
    RoomState.NONE: "dim",
    RoomState.CREATING: "yellow",
    RoomState.ACTIVE: "bold green",
    RoomState.DISMISSING: "yellow",
    RoomState.DISMISSED: "dim",
    RoomState.FAILED: "bold red",
}
MEMBER_STYLE = {
    MemberState.INVITED: "green",
    MemberState.PENDING: "yellow",
    MemberState.UNLINKED: "yellow",
    MemberState.FAILED: "red",
    MemberState.REMOVED: "dim",
}
OUTCOME_STYLE = {Outcome.OK: "green", Outcome.FAILED: "red", Outcome.REFUSED: "yellow"}
PAST = {
    Action.ACKNOWLEDGE: "acknowledged",
    Action.SNOOZE: "snoozed",
    Action.CLOSE: "closed",
    Action.REOPEN: "reopened",
}


def out() -> Console:
    return Console(highlight=False, soft_wrap=False)


def err() -> Console:
    return Console(stderr=True, highlight=False)


def still_applying(console: Console, what: str, incident_id: str, *, show: str = "incident") -> None:
    """What the API accepted and is still carrying out (it answered 202, or the wait ran out),
    and the command that shows how it ends: the same words from every command."""
    console.print(f"[yellow]…[/] {what}; check with `warroom {show} show {incident_id}`.")


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
