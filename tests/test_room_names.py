"""Room name templates (warroom.room_names): filled from the incident only, never cut off the id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from warroom.models import Incident, Severity
from warroom.room_names import check_template, room_name

AT = datetime(2026, 12, 4, 23, 59, tzinfo=UTC)


def incident(**kw: object) -> Incident:
    base = {"id": "am-1f2e", "title": "Checkout 5xx", "severity": Severity.HIGH, "created_at": AT, "updated_at": AT}
    return Incident.model_validate(base | kw)


def test_placeholders_are_filled_from_the_incident() -> None:
    tpl = check_template("{severity}-{label:service} {id} {date} {title} {label:missing}")
    got = room_name(tpl, incident(labels={"service": "checkout"}))
    assert got == "high-checkout am-1f2e 20261204 Checkout 5xx"


def test_a_long_title_never_cuts_off_the_id() -> None:
    got = room_name("{title} {id}", incident(title="x" * 200))
    assert got.startswith("am-1f2e ") and len(got) == 80


@pytest.mark.parametrize(
    "bad", ["{title}", "{id} {__init__}", "{id} {0}", "{id} {title:x}", "{id} {label}", "{id} }", "{id} {{id}}"]
)
def test_templates_that_could_reach_elsewhere_or_mislead_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        check_template(bad)


def test_text_stays_on_one_line() -> None:
    assert room_name("{id} {title}", incident(title="a\nb\tc")) == "am-1f2e a b c"
