"""An incident's roles (lead, scribe, comms) as the timeline records them: the workflow writes a
`role.assigned` entry per change, and readers (the console) take who holds what from those
entries, so no other store is needed. A holder's name never holds parentheses (ROLE_HOLDER), so
the entry reads back unambiguously."""

from __future__ import annotations

from collections.abc import Iterable

from warroom.enums import Role, TimelineKind
from warroom.models import Outcome, TimelineEntry

NOBODY = "(none)"


def assignment(role: Role, person: str, before: str) -> str:
    """The entry's detail: `lead: Ann Example (was Bob)`; `(none)` when nobody holds it now."""
    return f"{role.value}: {person or NOBODY}" + (f" (was {before})" if before else "")


def holders(entries: Iterable[TimelineEntry]) -> dict[str, str]:
    """Who holds each role after `entries` (oldest first), in Role order."""
    held: dict[str, str] = {}
    for e in entries:
        if e.kind != TimelineKind.ROLE_ASSIGNED.value or e.outcome is not Outcome.OK or ": " not in e.detail:
            continue
        role, person = e.detail.split(": ", 1)
        if " (was " in person and person.endswith(")"):
            person = person[: person.index(" (was ")]
        if person == NOBODY:
            held.pop(role, None)
        else:
            held[role] = person
    return {r.value: held[r.value] for r in Role if r.value in held}
