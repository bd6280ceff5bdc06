"""The status card as a Lark/Feishu interactive card (card JSON schema 2.0).

The card is a *shared* card (`config.update_multi: true`, which `PATCH /im/v1/messages/:id`
requires before and after every update), so everybody in the chat sees the same content and
one PATCH updates it for all. Each button's callback `value` carries what the click means:
the incident id, the action, the snooze minutes and the card version it was rendered in, so a
click on an outdated card can be told apart (the workflow refuses those).

Lark limits a card to 30 KB; the member list is cut long before that.
"""

from __future__ import annotations

import json
from typing import Any

from warroom.im import values
from warroom.im.base import StatusCard
from warroom.models import Action, IncidentStatus, MemberState, Severity

VALUE_MARK = "warroom"  # every button value has {"warroom": 1, ...}: clicks on other cards are ignored
MAX_MEMBERS_SHOWN = 40
MAX_CARD_BYTES = 28 * 1024

_STATUS_TEMPLATE = {
    IncidentStatus.TRIGGERED: "red",
    IncidentStatus.ACKNOWLEDGED: "orange",
    IncidentStatus.SNOOZED: "grey",
    IncidentStatus.CLOSED: "green",
}
_SEVERITY_COLOR = {Severity.CRITICAL: "red", Severity.HIGH: "orange", Severity.MEDIUM: "yellow", Severity.LOW: "blue"}
_BUTTON_TYPE = {Action.ACKNOWLEDGE: "primary", Action.CLOSE: "danger", Action.SNOOZE: "default"}
_MEMBER_MARK = {
    MemberState.INVITED: "",
    MemberState.PENDING: " (inviting…)",
    MemberState.UNLINKED: " (not linked: no Lark account found)",
    MemberState.FAILED: " (invite failed)",
}


_MD_SPECIAL = str.maketrans({c: f"&#{ord(c)};" for c in "&<>*_~`[]()#\\|"})


def escape_md(text: str) -> str:
    """Text shown literally inside a `markdown` element: Lark card markdown takes HTML character
    references for its special characters (`&#42;` for `*`, `&#60;` for `<`, …)."""
    return text.translate(_MD_SPECIAL)


def button_value(card: StatusCard, action: Action, minutes: int | None) -> dict[str, Any]:
    value: dict[str, Any] = {
        VALUE_MARK: 1,
        "incident_id": card.incident_id,
        "action": action.value,
        "card_version": card.version,
    }
    if minutes is not None:
        value["minutes"] = minutes
    return value


def _button(card: StatusCard, action: Action, label: str, minutes: int | None) -> dict[str, Any]:
    return {
        "tag": "button",
        "text": {"tag": "plain_text", "content": label},
        "type": _BUTTON_TYPE.get(action, "default"),
        "width": "default",
        "behaviors": [{"type": "callback", "value": button_value(card, action, minutes)}],
    }


def _members_md(card: StatusCard, limit: int) -> str:
    shown = card.members[:limit]
    parts = [escape_md(m.name) + _MEMBER_MARK.get(m.state, f" ({m.state.value})") for m in shown]
    more = len(card.members) - len(shown)
    if more > 0:
        parts.append(f"and {more} more")
    return "**Responders:** " + (", ".join(parts) if parts else "none yet")


def render(card: StatusCard, *, max_members: int = MAX_MEMBERS_SHOWN) -> dict[str, Any]:
    """The card JSON (schema 2.0) for `card`."""
    status = card.status.value
    lines = [f"**Status:** {status}", f"**Severity:** {card.severity.value}"]
    if card.status is IncidentStatus.SNOOZED and card.snoozed_until:
        lines.append(f"**Snoozed until:** {card.snoozed_until.strftime('%Y-%m-%d %H:%M UTC')}")
    if card.impact:
        lines.append(f"**Impact:** {escape_md(card.impact)}")
    if card.last_action:
        lines.append(f"**Last action:** {escape_md(card.last_action)}")
    elements: list[dict[str, Any]] = [
        {"tag": "markdown", "content": "\n".join(lines)},
        {"tag": "markdown", "content": _members_md(card, max_members)},
    ]
    if card.buttons:
        elements.append(
            {
                "tag": "column_set",
                "flex_mode": "flow",
                "horizontal_spacing": "8px",
                "columns": [
                    {
                        "tag": "column",
                        "width": "auto",
                        "elements": [_button(card, b.action, b.label, b.minutes)],
                    }
                    for b in card.buttons
                ],
            }
        )
    footer = f"card v{card.version}"
    if card.url:
        footer = f"[Open the incident]({card.url}) · {footer}"
    elements.append({"tag": "markdown", "content": footer, "text_size": "notation"})
    return {
        "schema": "2.0",
        "config": {
            "update_multi": True,
            "summary": {"content": f"[{card.severity.value}] {card.title} — {status}"[:100]},
        },
        "header": {
            "title": {"tag": "plain_text", "content": card.title[:200] or card.incident_id},
            "subtitle": {"tag": "plain_text", "content": f"Incident {card.incident_id}"},
            "template": _STATUS_TEMPLATE.get(card.status, "blue"),
            "text_tag_list": [
                {"tag": "text_tag", "text": {"tag": "plain_text", "content": status.upper()}, "color": "neutral"},
                {
                    "tag": "text_tag",
                    "text": {"tag": "plain_text", "content": card.severity.value},
                    "color": _SEVERITY_COLOR.get(card.severity, "neutral"),
                },
            ],
        },
        "body": {"elements": elements},
    }


def content(card: StatusCard) -> str:
    """The card as the `content` string of a message create or PATCH, within Lark's size limit."""
    for limit in (MAX_MEMBERS_SHOWN, 10, 0):
        text = json.dumps(render(card, max_members=limit), ensure_ascii=False, separators=(",", ":"))
        if len(text.encode()) <= MAX_CARD_BYTES:
            break
    return text


def parse_value(value: Any) -> dict[str, Any] | None:
    """A button value as rendered by `button_value`, or None when it is not one of ours."""
    if isinstance(value, str):  # schema 1.0 cards and some clients send the value as a JSON string
        try:
            value = values.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict) or not value.get(VALUE_MARK):
        return None
    return value
