"""How the workflow names things for people: in the timeline, the room and update errors."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from warroom.models import Action, Member, Source


def cause(e: BaseException) -> str:
    """The innermost message of an activity failure: what a person needs to read."""
    while e.__cause__ is not None:
        e = e.__cause__
    return str(e) or type(e).__name__


def source_of(platform: str) -> Source:
    """Where something from a room came from: the platform (a platform's name is a source of its own)."""
    try:
        return Source(platform)
    except ValueError:
        return Source.SYSTEM


def who(m: Member) -> str:
    return m.email or m.phone or m.name or m.responder_id


def past(action: Action) -> str:
    return {
        "acknowledge": "acknowledged",
        "snooze": "snoozed",
        "close": "closed",
        "reopen": "reopened",
        "unsnooze": "ended the snooze",
    }[action.value]
