"""The incident transition table (warroom/lifecycle.py): every action from every status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warroom import lifecycle
from warroom.models import Action, Incident, IncidentStatus

S = IncidentStatus
A = Action
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T0 = NOW - timedelta(hours=1)

# (action, from status) -> resulting status, or None when refused.
TABLE: dict[tuple[Action, IncidentStatus], IncidentStatus | None] = {
    (A.ACKNOWLEDGE, S.TRIGGERED): S.ACKNOWLEDGED,
    (A.ACKNOWLEDGE, S.ACKNOWLEDGED): None,
    (A.ACKNOWLEDGE, S.SNOOZED): S.ACKNOWLEDGED,
    (A.ACKNOWLEDGE, S.CLOSED): None,
    (A.SNOOZE, S.TRIGGERED): S.SNOOZED,
    (A.SNOOZE, S.ACKNOWLEDGED): S.SNOOZED,
    (A.SNOOZE, S.SNOOZED): S.SNOOZED,
    (A.SNOOZE, S.CLOSED): None,
    (A.CLOSE, S.TRIGGERED): S.CLOSED,
    (A.CLOSE, S.ACKNOWLEDGED): S.CLOSED,
    (A.CLOSE, S.SNOOZED): S.CLOSED,
    (A.CLOSE, S.CLOSED): None,
    (A.REOPEN, S.TRIGGERED): None,
    (A.REOPEN, S.ACKNOWLEDGED): None,
    (A.REOPEN, S.SNOOZED): None,
    (A.REOPEN, S.CLOSED): S.TRIGGERED,
    (A.UNSNOOZE, S.TRIGGERED): None,
    (A.UNSNOOZE, S.ACKNOWLEDGED): None,
    (A.UNSNOOZE, S.SNOOZED): S.TRIGGERED,  # prior status unknown -> triggered
    (A.UNSNOOZE, S.CLOSED): None,
}


def incident(status: IncidentStatus = S.TRIGGERED, **kw: object) -> Incident:
    if status is S.SNOOZED:
        kw.setdefault("snoozed_until", T0 + timedelta(minutes=30))
    return Incident(id="i-1", title="db down", status=status, version=3, created_at=T0, updated_at=T0, **kw)


def test_table_covers_every_action_and_status() -> None:
    assert set(TABLE) == {(a, s) for a in Action for s in IncidentStatus}
    for action, allowed in lifecycle.ALLOWED_FROM.items():
        assert allowed == {s for s in IncidentStatus if TABLE[(action, s)] is not None}, action


@pytest.mark.parametrize(("action", "status"), sorted(TABLE, key=lambda k: (k[0].value, k[1].value)))
def test_transition(action: Action, status: IncidentStatus) -> None:
    before = incident(status)
    expected = TABLE[(action, status)]
    minutes = 15 if action is A.SNOOZE else None
    reason = lifecycle.refusal(before, action, minutes)
    if expected is None:
        assert reason == f"cannot {action.value} an incident that is {status.value}"
        with pytest.raises(ValueError, match="cannot"):
            lifecycle.apply(before, action, NOW, minutes)
        return
    assert reason is None
    after = lifecycle.apply(before, action, NOW, minutes)
    assert after.status is expected
    assert after.version == before.version + 1
    assert after.updated_at == NOW
    assert after.created_at == before.created_at
    # pure: the input is untouched
    assert before.status is status and before.version == 3
    if expected is S.SNOOZED:
        assert after.snoozed_until == NOW + timedelta(minutes=15)
        prior = before.status_before_snooze if status is S.SNOOZED else status
        assert after.status_before_snooze == prior
    else:
        assert after.snoozed_until is None
        assert after.status_before_snooze is None


@pytest.mark.parametrize("minutes", [1, 60, lifecycle.MAX_SNOOZE_MINUTES])
def test_snooze_minutes_in_bounds(minutes: int) -> None:
    assert lifecycle.refusal(incident(), A.SNOOZE, minutes) is None
    after = lifecycle.apply(incident(), A.SNOOZE, NOW, minutes)
    assert after.snoozed_until == NOW + timedelta(minutes=minutes)


@pytest.mark.parametrize("minutes", [None, 0, -5, lifecycle.MAX_SNOOZE_MINUTES + 1, 10**9])
def test_snooze_minutes_out_of_bounds(minutes: int | None) -> None:
    reason = lifecycle.refusal(incident(), A.SNOOZE, minutes)
    assert reason == f"snooze needs minutes between 1 and {lifecycle.MAX_SNOOZE_MINUTES}"
    with pytest.raises(ValueError, match="snooze needs minutes"):
        lifecycle.apply(incident(), A.SNOOZE, NOW, minutes)


def test_status_refusal_wins_over_minutes_refusal() -> None:
    assert lifecycle.refusal(incident(S.CLOSED), A.SNOOZE, None) == "cannot snooze an incident that is closed"


@pytest.mark.parametrize("action", [A.ACKNOWLEDGE, A.CLOSE, A.REOPEN, A.UNSNOOZE])
def test_minutes_are_ignored_by_other_actions(action: Action) -> None:
    status = {A.REOPEN: S.CLOSED, A.UNSNOOZE: S.SNOOZED}.get(action, S.TRIGGERED)
    assert lifecycle.refusal(incident(status), action, 0) is None
    assert lifecycle.refusal(incident(status), action, 10**9) is None


@pytest.mark.parametrize("prior", [S.TRIGGERED, S.ACKNOWLEDGED])
def test_unsnooze_returns_to_prior_status(prior: IncidentStatus) -> None:
    snoozed = lifecycle.apply(incident(prior), A.SNOOZE, NOW, 30)
    assert snoozed.status is S.SNOOZED
    assert snoozed.status_before_snooze is prior
    later = NOW + timedelta(minutes=30)
    woke = lifecycle.apply(snoozed, A.UNSNOOZE, later)
    assert woke.status is prior
    assert woke.snoozed_until is None
    assert woke.status_before_snooze is None
    assert woke.version == snoozed.version + 1
    assert woke.updated_at == later


@pytest.mark.parametrize("prior", [S.TRIGGERED, S.ACKNOWLEDGED])
def test_snoozing_a_snoozed_incident_keeps_the_original_prior_status(prior: IncidentStatus) -> None:
    first = lifecycle.apply(incident(prior), A.SNOOZE, NOW, 30)
    again = lifecycle.apply(first, A.SNOOZE, NOW + timedelta(minutes=5), 120)
    assert again.status is S.SNOOZED
    assert again.status_before_snooze is prior  # not "snoozed"
    assert again.snoozed_until == NOW + timedelta(minutes=125)
    assert lifecycle.apply(again, A.UNSNOOZE, NOW + timedelta(hours=3)).status is prior


def test_acknowledge_or_close_while_snoozed_clears_snooze() -> None:
    snoozed = lifecycle.apply(incident(), A.SNOOZE, NOW, 30)
    for action, status in ((A.ACKNOWLEDGE, S.ACKNOWLEDGED), (A.CLOSE, S.CLOSED)):
        after = lifecycle.apply(snoozed, action, NOW)
        assert after.status is status
        assert after.snoozed_until is None and after.status_before_snooze is None


def test_full_life() -> None:
    i = incident()
    steps = [
        (A.ACKNOWLEDGE, None, S.ACKNOWLEDGED),
        (A.SNOOZE, 10, S.SNOOZED),
        (A.UNSNOOZE, None, S.ACKNOWLEDGED),
        (A.CLOSE, None, S.CLOSED),
        (A.REOPEN, None, S.TRIGGERED),
        (A.CLOSE, None, S.CLOSED),
    ]
    for n, (action, minutes, status) in enumerate(steps, start=1):
        i = lifecycle.apply(i, action, NOW + timedelta(minutes=n), minutes)
        assert i.status is status
        assert i.version == 3 + n
