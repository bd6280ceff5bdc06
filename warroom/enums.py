"""The domain's closed vocabularies: the values the API, the timeline and the workflow speak.

Plain `StrEnum`s, so a member equals (and hashes like) its string value: code that still holds
the strings (workflow histories, stored rows, JSON from the API) compares equal to them. This
module imports nothing but the standard library, so a light client (the CLI) can use it without
loading pydantic; `warroom.models` re-exports every name.
"""

from __future__ import annotations

import re
from enum import StrEnum


class IncidentStatus(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    CLOSED = "closed"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class RoomState(StrEnum):
    NONE = "none"
    CREATING = "creating"
    ACTIVE = "active"
    DISMISSING = "dismissing"
    DISMISSED = "dismissed"
    FAILED = "failed"


class MemberState(StrEnum):
    PENDING = "pending"
    INVITED = "invited"
    UNLINKED = "unlinked"
    FAILED = "failed"
    REMOVED = "removed"


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    SNOOZE = "snooze"
    CLOSE = "close"
    REOPEN = "reopen"
    # Applied by the workflow itself when a snooze timer fires; never offered to people.
    UNSNOOZE = "unsnooze"


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    REFUSED = "refused"


class Source(StrEnum):
    """Where something came from: one of these origins, or an IM platform by its name.

    Platforms are plugins (warroom.im.plugins), so their names are not listed here: any
    platform-shaped name is a source of its own kind, `Source("slack")`."""

    API = "api"
    CLI = "cli"
    WEB = "web"
    SYSTEM = "system"
    AI = "ai"

    @classmethod
    def _missing_(cls, value: object) -> Source | None:
        if not isinstance(value, str) or not PLATFORM_NAME.match(value):
            return None
        member = str.__new__(cls, value)
        member._name_, member._value_ = value.upper(), value
        return cls._value2member_map_.setdefault(value, member)  # type: ignore[return-value]


# A platform's id (the plugin registry refuses others): also a timeline source and a route part.
PLATFORM_NAME = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


class Role(StrEnum):
    """The roles of an incident's response, each held by one person at a time."""

    LEAD = "lead"  # runs the response; the status-update reminder names them
    SCRIBE = "scribe"  # keeps the record
    COMMS = "comms"  # talks to customers and stakeholders


class TimelineKind(StrEnum):
    """What a timeline entry records (CONTRACT.md lists the public ones).

    `TimelineEntry.kind` stays a `str`: entries written before a kind existed, or by a newer
    worker than this reader, must still load. Compare it with these members, never with literals.
    """

    INCIDENT_CREATED = "incident.created"
    INCIDENT_UPDATED = "incident.updated"
    ROOM_CREATED = "room.created"
    ROOM_FAILED = "room.failed"
    ROOM_DISMISSED = "room.dismissed"
    MEMBER_INVITED = "member.invited"
    MEMBER_UNLINKED = "member.unlinked"
    MEMBER_REMOVED = "member.removed"
    MEMBER_JOINED = "member.joined"  # someone asked to be added to the room (no join link)
    CARD_POSTED = "card.posted"
    CARD_UPDATED = "card.updated"
    # One per Action: the incident's status changed because someone (or the snooze timer) acted.
    ACTION_ACKNOWLEDGE = "action.acknowledge"
    ACTION_SNOOZE = "action.snooze"
    ACTION_CLOSE = "action.close"
    ACTION_REOPEN = "action.reopen"
    ACTION_UNSNOOZE = "action.unsnooze"
    # An action that was not applied (unlinked or unauthorized user, invalid transition); the
    # detail starts with the action's name.
    ACTION_REFUSED = "action.refused"
    # Reminders by rule (the rules file): a nudge while nobody acknowledged, a status-update
    # reminder while open, the heads-up before the room's automatic dismissal after close.
    REMINDER_UNACKNOWLEDGED = "reminder.unacknowledged"
    REMINDER_UPDATE = "reminder.update"
    REMINDER_DISMISSAL = "reminder.dismissal"
    ROLE_ASSIGNED = "role.assigned"  # someone took or was given a role (detail: "lead: who")
    # One per delivery from an incident source (what it said, and what it changed).
    SOURCE_ALERTMANAGER = "source.alertmanager"
    SOURCE_GRAFANA = "source.grafana"
    SOURCE_PAGERDUTY = "source.pagerduty"
    SOURCE_WEBHOOK = "source.webhook"
    AI_ANSWER = "ai.answer"
    AI_IMPACT = "ai.impact"
    AI_KNOWLEDGE = "ai.knowledge"
    AI_REVIEW = "ai.review"

    @classmethod
    def for_action(cls, action: Action) -> TimelineKind:
        """The kind of the entry that records `action` applied."""
        return cls(f"action.{action.value}")

    @classmethod
    def for_source(cls, source: str) -> TimelineKind:
        """The kind of the entry that records a delivery from incident source `source`."""
        return cls(f"source.{source}")


# The kinds of applied actions, and those of the assistant's output.
ACTION_KINDS = frozenset(TimelineKind.for_action(a) for a in Action)
AI_KINDS = frozenset(k for k in TimelineKind if k.startswith("ai."))
# The incident sources whose deliveries have a timeline kind of their own (`source.<name>`).
SOURCE_KINDS = frozenset(k.removeprefix("source.") for k in TimelineKind if k.startswith("source."))


def action_of(kind: str) -> Action | None:
    """The action an entry of this kind records as applied; None for every other kind (a refused
    action included: nothing changed)."""
    return Action(kind.removeprefix("action.")) if kind in ACTION_KINDS else None
