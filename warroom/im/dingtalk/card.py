"""The status card as a DingTalk interactive card: the `cardParamMap` of its template.

DingTalk's card platform (卡片平台) renders a template with variables; War Room fills them. Every
value is a string (DingTalk refuses anything else) of at most 1 KB. The template's buttons send
back the callback params `action`, `minutes` and `card_version` (CONTRACT.md): `card_version` is
bound to the variable of the same name, so a click on an outdated card says which version it
saw, and the snooze button's `minutes` to `snooze_minutes`. The README shows how to build such a
template, variable by variable.
"""

from __future__ import annotations

from warroom.im.base import StatusCard
from warroom.im.dingtalk.text import inert
from warroom.models import Action, IncidentStatus, MemberState

MAX_VALUE_BYTES = 1024
NOTE = "Only messages that @mention the War Room robot reach War Room (DingTalk has no history API)."
_MEMBER_MARK = {
    MemberState.INVITED: "",
    MemberState.PENDING: " (inviting…)",
    MemberState.UNLINKED: " (not linked: no DingTalk account found)",
    MemberState.FAILED: " (invite failed)",
}
_STATUS_WORD = {
    IncidentStatus.TRIGGERED: "🔴 triggered",
    IncidentStatus.ACKNOWLEDGED: "🟠 acknowledged",
    IncidentStatus.SNOOZED: "⚪ snoozed",
    IncidentStatus.CLOSED: "🟢 closed",
}


def _fit(value: str, limit: int = MAX_VALUE_BYTES) -> str:
    data = value.encode()
    if len(data) <= limit:
        return value
    return data[: limit - 4].decode("utf-8", "ignore") + "…"


def responders(card: StatusCard) -> str:
    parts = [inert(m.name) + _MEMBER_MARK.get(m.state, f" ({m.state.value})") for m in card.members]
    text = ", ".join(parts) if parts else "none yet"
    while len(text.encode()) > MAX_VALUE_BYTES and parts:
        parts.pop()
        text = ", ".join(parts) + f" and {len(card.members) - len(parts)} more"
    return _fit(text)


def params(card: StatusCard) -> dict[str, str]:
    """The card's `cardParamMap`: every variable of the template, as strings."""
    shown = {b.action for b in card.buttons}
    snooze = next((b.minutes for b in card.buttons if b.action is Action.SNOOZE and b.minutes), None)
    until = card.snoozed_until.strftime("%Y-%m-%d %H:%M UTC") if card.snoozed_until else ""
    values = {
        "status": card.status.value,
        "status_text": _STATUS_WORD.get(card.status, card.status.value),
        "card_version": str(card.version),
        "incident_id": card.incident_id,
        "title": inert(card.title) or card.incident_id,
        "severity": card.severity.value,
        "responders": responders(card),
        "last_action": inert(card.last_action),
        "snoozed_until": until,
        "url": card.url,
        "snooze_minutes": str(snooze or ""),
        "note": NOTE,
    }
    for action in (Action.ACKNOWLEDGE, Action.SNOOZE, Action.CLOSE, Action.REOPEN):
        values[f"show_{action.value}"] = "true" if action in shown else "false"
    return {k: _fit(v) for k, v in values.items()}
