"""The status card in Block Kit, and the value its buttons carry back on a click.

Each button's `value` names the action, the snooze minutes and the card version it was rendered
with, so a click on an out-of-date card can be recognised and refused by the workflow.
"""

from __future__ import annotations

import json
from typing import Any

from warroom.im import values
from warroom.im.base import StatusCard
from warroom.im.slack import mrkdwn
from warroom.models import Action, MemberState

ACTION_PREFIX = "wr:"  # action_id of our buttons; clicks on anything else are not ours
OPEN_ACTION_ID = "wr-open"  # the link button: Slack reports its clicks too, we ignore them
CARD_EVENT_TYPE = "warroom_card"
MESSAGE_EVENT_TYPE = "warroom_message"

SEVERITY_ICON = {"critical": ":red_circle:", "high": ":large_orange_circle:", "medium": ":large_yellow_circle:"}
STATUS_ICON = {
    "triggered": ":rotating_light:",
    "acknowledged": ":eyes:",
    "snoozed": ":zzz:",
    "closed": ":white_check_mark:",
}
MEMBER_NOTE = {
    MemberState.PENDING: " _(inviting…)_",
    MemberState.UNLINKED: " :warning: _not found on Slack_",
    MemberState.FAILED: " :x: _invite failed_",
}
MAX_MEMBERS_SHOWN = 25


def _text(s: str, limit: int) -> str:
    return s if len(s) <= limit else s[: limit - 1] + "…"


_mrkdwn_escape = mrkdwn.escape


def button_value(card: StatusCard, action: Action, minutes: int | None) -> str:
    value: dict[str, Any] = {"a": action.value, "v": card.version, "i": card.incident_id}
    if minutes:
        value["m"] = minutes
    return json.dumps(value, separators=(",", ":"))


def parse_button_value(value: str) -> tuple[Action, int | None, int | None]:
    """(action, minutes, card version) from a button value; ValueError when it is not ours."""
    data = values.loads(value)
    if not isinstance(data, dict):
        raise ValueError("button value is not an object")
    action = Action(data["a"])
    if action is Action.UNSNOOZE:
        raise ValueError("unsnooze is not a button")
    minutes = data.get("m")
    version = data.get("v")
    return action, int(minutes) if minutes is not None else None, int(version) if version is not None else None


def fallback_text(card: StatusCard) -> str:
    """What notifications and screen readers show instead of the blocks."""
    return f"[{card.severity.value}] {_mrkdwn_escape(card.title)} — {card.status.value}"


def topic(card: StatusCard) -> str:
    title = _mrkdwn_escape(card.title)
    return _text(f"{card.severity.value.upper()} · {card.status.value} · {title} · {card.url}".strip(" ·"), 250)


def render(card: StatusCard) -> list[dict[str, Any]]:
    """Header, facts, responders, who did what last, buttons."""
    sev, status = card.severity.value, card.status.value
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _text(card.title or card.incident_id, 150)}},
    ]
    fields = [
        {"type": "mrkdwn", "text": f"*Severity*\n{SEVERITY_ICON.get(sev, ':white_circle:')} {sev}"},
        {"type": "mrkdwn", "text": f"*Status*\n{STATUS_ICON.get(status, '')} {status}".rstrip()},
        {"type": "mrkdwn", "text": f"*Incident*\n<{card.url}|{_mrkdwn_escape(card.incident_id)}>"}
        if card.url
        else {"type": "mrkdwn", "text": f"*Incident*\n{_mrkdwn_escape(card.incident_id)}"},
    ]
    if card.snoozed_until and status == "snoozed":
        ts = int(card.snoozed_until.timestamp())
        until = card.snoozed_until.strftime("%Y-%m-%d %H:%M UTC")
        fields.append(
            {"type": "mrkdwn", "text": f"*Snoozed until*\n<!date^{ts}^{{date_short_pretty}} {{time}}|{until}>"}
        )
    blocks.append({"type": "section", "block_id": "wr-facts", "fields": fields})
    members = [m for m in card.members if m.state is not MemberState.REMOVED]
    if members:
        lines = [f"• {_mrkdwn_escape(m.name)}{MEMBER_NOTE.get(m.state, '')}" for m in members[:MAX_MEMBERS_SHOWN]]
        if len(members) > MAX_MEMBERS_SHOWN:
            lines.append(f"…and {len(members) - MAX_MEMBERS_SHOWN} more")
        text = "*Responders*\n" + "\n".join(lines)
    else:
        text = "*Responders*\n_none yet_"
    blocks.append({"type": "section", "block_id": "wr-members", "text": {"type": "mrkdwn", "text": _text(text, 3000)}})
    if card.impact:
        impact = {"type": "mrkdwn", "text": _text(f"*Impact*\n{_mrkdwn_escape(card.impact)}", 3000)}
        blocks.append({"type": "section", "block_id": "wr-impact", "text": impact})
    context = f"Last: {_mrkdwn_escape(card.last_action)}" if card.last_action else "No action taken yet"
    blocks.append(
        {
            "type": "context",
            "block_id": "wr-last",
            "elements": [{"type": "mrkdwn", "text": _text(f"{context} · card v{card.version}", 3000)}],
        }
    )
    elements: list[dict[str, Any]] = []
    for b in card.buttons:
        button: dict[str, Any] = {
            "type": "button",
            "action_id": f"{ACTION_PREFIX}{b.action.value}:{b.minutes or ''}",
            "text": {"type": "plain_text", "text": _text(b.label, 75)},
            "value": button_value(card, b.action, b.minutes),
        }
        if b.action is Action.ACKNOWLEDGE:
            button["style"] = "primary"
        elif b.action is Action.CLOSE:
            button["style"] = "danger"
            button["confirm"] = {
                "title": {"type": "plain_text", "text": "Close the incident?"},
                "text": {"type": "mrkdwn", "text": _text(f"Close *{_mrkdwn_escape(card.title)}*?", 300)},
                "confirm": {"type": "plain_text", "text": "Close"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            }
        elements.append(button)
    if card.url:
        elements.append(
            {
                "type": "button",
                "action_id": OPEN_ACTION_ID,
                "text": {"type": "plain_text", "text": "Open incident"},
                "url": card.url,
            }
        )
    if elements:
        blocks.append({"type": "actions", "block_id": "wr-actions", "elements": elements[:25]})
    return blocks


def card_metadata(card: StatusCard, key: str) -> dict[str, Any]:
    return {
        "event_type": CARD_EVENT_TYPE,
        "event_payload": {"incident_id": card.incident_id, "version": card.version, "key": key},
    }


def message_metadata(key: str) -> dict[str, Any]:
    return {"event_type": MESSAGE_EVENT_TYPE, "event_payload": {"key": key}}
