"""The status card as WeCom shows it: a markdown message for the group (groups take no buttons)
and an application `template_card` (`button_interaction`) for each responder.

A button's `key` says what it does and which card version it was on (`wr:<action>:<version>:
<minutes>`), so a click on an outdated card is recognised as such. WeCom's limits: at most six
buttons, a title of at most 36 characters, keys of at most 1024 bytes; values are cut to fit.
"""

from __future__ import annotations

from typing import Any

from warroom.im.base import StatusCard
from warroom.im.wecom.text import fit, inert
from warroom.models import Action, IncidentStatus, MemberState

MAX_BUTTONS = 6
TITLE_MAX = 36
KEY_PREFIX = "wr"
_STATUS = {
    IncidentStatus.TRIGGERED: ("🔴", "warning"),
    IncidentStatus.ACKNOWLEDGED: ("🟠", "comment"),
    IncidentStatus.SNOOZED: ("⚪", "comment"),
    IncidentStatus.CLOSED: ("🟢", "info"),
}
_MARK = {
    MemberState.INVITED: "",
    MemberState.PENDING: " (inviting…)",
    MemberState.UNLINKED: " (not linked: no WeCom account found)",
    MemberState.FAILED: " (invite failed)",
}
NOTE = "Buttons are on the War Room app's card sent to each responder (WeCom groups take no buttons)."


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def responders(card: StatusCard) -> str:
    return ", ".join(m.name + _MARK.get(m.state, f" ({m.state.value})") for m in card.members) or "none yet"


def button_key(action: Action, version: int, minutes: int | None) -> str:
    return f"{KEY_PREFIX}:{action.value}:{version}:{minutes or ''}"


def parse_key(key: str) -> tuple[Action, int, int | None] | None:
    """(action, card version, minutes) of one of our button keys; None for anything else."""
    parts = key.split(":")
    if len(parts) != 4 or parts[0] != KEY_PREFIX or not parts[2].isdigit() or len(parts[2]) > 9:
        return None
    try:
        action = Action(parts[1])
    except ValueError:
        return None
    if parts[3] and (not parts[3].isdigit() or len(parts[3]) > 6):
        return None
    return action, int(parts[2]), int(parts[3]) if parts[3] else None


def status_markdown(card: StatusCard) -> str:
    """The group's status message: markdown, every value from people made inert."""
    icon, color = _STATUS.get(card.status, ("", "comment"))
    lines = [
        f'{icon} **<font color="{color}">{card.status.value}</font>** · {card.severity.value} · '
        f"{inert(card.title) or card.incident_id}",
        f"> Incident: {inert(card.incident_id)}",
        f"> Responders: {inert(responders(card))}",
    ]
    if card.snoozed_until is not None:
        lines.append(f"> Snoozed until {card.snoozed_until:%Y-%m-%d %H:%M} UTC")
    if card.last_action:
        lines.append(f"> {inert(card.last_action)}")
    if card.url:
        lines.append(f"[Open the incident]({card.url})")
    lines.append(NOTE)
    return fit("\n".join(lines))


def template_card(card: StatusCard, task_id: str) -> dict[str, Any]:
    """The application card for one responder (`message/send` and `update_template_card`)."""
    icon, _ = _STATUS.get(card.status, ("", ""))
    buttons = [
        {"text": _cut(b.label, 10), "style": 1 if i == 0 else 2, "key": button_key(b.action, card.version, b.minutes)}
        for i, b in enumerate(card.buttons[:MAX_BUTTONS])
    ] or [{"text": "No actions", "style": 2, "key": button_key(Action.ACKNOWLEDGE, 0, None)}]
    content = [
        {"keyname": "Incident", "value": _cut(card.incident_id, 30)},
        {"keyname": "Severity", "value": card.severity.value},
        {"keyname": "People", "value": _cut(responders(card), 30)},
    ]
    if card.last_action:
        content.append({"keyname": "Last", "value": _cut(card.last_action, 30)})
    result: dict[str, Any] = {
        "card_type": "button_interaction",
        "source": {"desc": "War Room"},
        "main_title": {
            "title": _cut(f"{icon} {card.status.value}: {card.title}".strip(), TITLE_MAX),
            "desc": _cut(card.title, 44),
        },
        "horizontal_content_list": content,
        "task_id": task_id,
        "button_list": buttons,
    }
    if card.url:
        result["card_action"] = {"type": 1, "url": card.url}
        result["jump_list"] = [{"type": 1, "title": "Open the incident", "url": card.url}]
    return result
