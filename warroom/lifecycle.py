"""Incident status transitions: the one place that says which action is allowed when.

Pure functions (no clock, no I/O) so that the workflow can use them to refuse an action
before anything is written, and the built-in source can use them to apply it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from warroom.models import Action, Incident, IncidentStatus

S = IncidentStatus
ALLOWED_FROM: dict[Action, set[IncidentStatus]] = {
    Action.ACKNOWLEDGE: {S.TRIGGERED, S.SNOOZED},
    Action.SNOOZE: {S.TRIGGERED, S.ACKNOWLEDGED, S.SNOOZED},
    Action.CLOSE: {S.TRIGGERED, S.ACKNOWLEDGED, S.SNOOZED},
    Action.REOPEN: {S.CLOSED},
    Action.UNSNOOZE: {S.SNOOZED},
}
MAX_SNOOZE_MINUTES = 7 * 24 * 60


def refusal(incident: Incident, action: Action, minutes: int | None = None) -> str | None:
    """Why `action` cannot be applied to `incident` now, or None when it can."""
    if incident.status not in ALLOWED_FROM[action]:
        return f"cannot {action.value} an incident that is {incident.status.value}"
    if action is Action.SNOOZE and not (minutes and 0 < minutes <= MAX_SNOOZE_MINUTES):
        return f"snooze needs minutes between 1 and {MAX_SNOOZE_MINUTES}"
    return None


def apply(incident: Incident, action: Action, now: datetime, minutes: int | None = None) -> Incident:
    """The incident after `action`; raises ValueError when `refusal` says it is not allowed."""
    reason = refusal(incident, action, minutes)
    if reason:
        raise ValueError(reason)
    changes: dict[str, object] = {"version": incident.version + 1, "updated_at": now}
    if action is Action.ACKNOWLEDGE:
        changes |= {"status": S.ACKNOWLEDGED, "snoozed_until": None, "status_before_snooze": None}
    elif action is Action.SNOOZE:
        assert minutes is not None
        prior = incident.status_before_snooze if incident.status is S.SNOOZED else incident.status
        changes |= {
            "status": S.SNOOZED,
            "snoozed_until": now + timedelta(minutes=minutes),
            "status_before_snooze": prior,
        }
    elif action is Action.UNSNOOZE:
        changes |= {
            "status": incident.status_before_snooze or S.TRIGGERED,
            "snoozed_until": None,
            "status_before_snooze": None,
        }
    elif action is Action.CLOSE:
        changes |= {"status": S.CLOSED, "snoozed_until": None, "status_before_snooze": None}
    elif action is Action.REOPEN:
        changes |= {"status": S.TRIGGERED}
    return incident.model_copy(update=changes)
