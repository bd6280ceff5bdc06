"""How the API's answers look on a terminal: an incident, its war room, its timeline."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from starters.cli.output import MEMBER_STYLE, OUTCOME_STYLE, ROOM_STYLE, SEVERITY_STYLE, STATUS_STYLE, ago, styled, when
from warroom.enums import RoomState


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
    grid.add_row("Responders", ", ".join(person(r) for r in i.get("responders", [])) or "-")
    if i.get("labels"):
        grid.add_row("Labels", ", ".join(f"{k}={v}" for k, v in i["labels"].items()))
    grid.add_row("Created", f"{when(i.get('created_at'))} ({ago(i.get('created_at'))})")
    grid.add_row("Updated", f"{when(i.get('updated_at'))} (version {i.get('version', '?')})")
    body: list[Any] = [grid]
    if i.get("description"):
        body += [Text(""), Text(i["description"])]
    return Panel(Group(*body), title=f"[bold]{escape(i.get('title', ''))}[/]", title_align="left", expand=False)


def person(r: dict[str, Any]) -> str:
    contact = r.get("email") or r.get("phone") or r.get("id") or ""
    name = r.get("name") or ""
    return f"{name} <{contact}>" if name and contact and name != contact.split("@")[0] else contact or name


def escape(s: str) -> str:
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
    if room.get("join_url") and room.get("state") in (RoomState.CREATING, RoomState.ACTIVE):
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
                person(m) or m.get("responder_id", ""),
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
