"""The status card's content, computed from state: a pure function the workflow can call."""

from __future__ import annotations

from warroom import lifecycle
from warroom.im.base import CardButton, CardMember, StatusCard
from warroom.models import Action, Incident, MemberState, WarRoom


def _snooze_label(minutes: int) -> str:
    return f"Snooze {minutes // 60}h" if minutes % 60 == 0 else f"Snooze {minutes}m"


def render_card(
    incident: Incident,
    room: WarRoom,
    *,
    last_action: str,
    version: int,
    public_url: str,
    snooze_choices: list[int],
    impact: str = "",
) -> StatusCard:
    buttons: list[CardButton] = []
    for action, label in ((Action.ACKNOWLEDGE, "Acknowledge"), (Action.CLOSE, "Close"), (Action.REOPEN, "Reopen")):
        if lifecycle.refusal(incident, action) is None:
            buttons.append(CardButton(action=action, label=label))
    if lifecycle.refusal(incident, Action.SNOOZE, snooze_choices[0] if snooze_choices else 60) is None:
        at = 1 if buttons and buttons[0].action is Action.ACKNOWLEDGE else 0
        buttons[at:at] = [CardButton(action=Action.SNOOZE, label=_snooze_label(m), minutes=m) for m in snooze_choices]
    members = [
        CardMember(name=m.name or m.email or m.responder_id, state=m.state)
        for m in room.members
        if m.state is not MemberState.REMOVED
    ]
    return StatusCard(
        incident_id=incident.id,
        title=incident.title,
        severity=incident.severity,
        status=incident.status,
        version=version,
        members=members,
        last_action=last_action,
        snoozed_until=incident.snoozed_until,
        url=f"{public_url.rstrip('/')}/api/v1/incidents/{incident.id}",
        buttons=buttons,
        impact=impact,
    )


def card_content(card: StatusCard) -> dict:
    """What the card shows, without its version: equal content means no update is needed. A card
    without an impact line compares equal to one remembered from before cards had one."""
    return card.model_dump(mode="json", exclude={"version"} if card.impact else {"version", "impact"})


def status_text(card: StatusCard) -> str:
    """The card as one plain message, for platforms whose cards cannot be edited: each change of
    the card is posted as a new one of these."""
    line = f"Status: {card.status.value} · {card.severity.value} · {card.title}"
    if card.snoozed_until is not None:
        line += f" · snoozed until {card.snoozed_until:%Y-%m-%d %H:%M} UTC"
    if card.last_action:
        line += f"\n{card.last_action}"
    return line + (f"\n{card.url}" if card.url else "")


CLOSING_TEXT = "This war room is closed: the incident is over. Nothing more will be posted here."


def closed_name(name: str) -> str:
    return name if name.startswith("[closed] ") else f"[closed] {name}"
