"""Domain models shared by every layer.

These are plain pydantic v2 models with no Temporal import: the workflow, the activities, the
store and the HTTP API all speak them, and the pydantic data converter carries them through
Temporal payloads unchanged.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

# The vocabularies live in a module without pydantic, which the CLI imports; every layer has
# always found them here, so they are re-exported.
from warroom.enums import Action as Action
from warroom.enums import IncidentStatus as IncidentStatus
from warroom.enums import MemberState as MemberState
from warroom.enums import Outcome as Outcome
from warroom.enums import RoomState as RoomState
from warroom.enums import Severity as Severity
from warroom.enums import Source as Source
from warroom.enums import TimelineKind as TimelineKind

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{5,19}$")


def _plain(value: Any) -> Any:
    """Refuse what a client can send but no store keeps: NUL characters (PostgreSQL rejects them in
    text) and NaN or infinite numbers (JSON has no such values), anywhere in the input."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, dict):
        for k, v in value.items():
            _plain(k)
            _plain(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _plain(v)
    return value


# Labels: a few short key/value pairs (a source's labels, the rules file's matches).
Labels = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=100)],
        Annotated[str, StringConstraints(max_length=500)],
    ],
    Field(max_length=64),
]


class Responder(BaseModel):
    """A person who should be in the war room. `id` is stable; email/phone drive IM lookup."""

    model_config = ConfigDict(str_strip_whitespace=True)

    id: str = Field("", max_length=200)
    name: str = Field("", max_length=200)
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=32)

    @model_validator(mode="before")
    @classmethod
    def _plain_input(cls, data: Any) -> Any:
        return _plain(data)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not _EMAIL.match(v):
            raise ValueError(f"not an email address: {v!r}")
        return v.lower()

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not _PHONE.match(v):
            raise ValueError(f"not a phone number: {v!r} (use digits, optionally with a leading +)")
        return v.replace(" ", "").replace("-", "")

    @model_validator(mode="after")
    def _default_id(self) -> Responder:
        if not self.id:
            self.id = self.email or self.phone or self.name.lower().replace(" ", ".")
        if not self.id:
            raise ValueError("a responder needs at least one of id, name, email or phone")
        if not self.name:
            self.name = (self.email or "").split("@")[0] or self.phone or self.id
        return self

    @property
    def contact(self) -> str:
        """How the timeline names this person: email first, as CONTRACT.md says."""
        return self.email or self.phone or self.id


class Alert(BaseModel):
    """An alert or metric attached to an incident (optional `alerts` of the incident API): the
    assistant's impact analysis reads services, regions and affected users from these."""

    model_config = ConfigDict(str_strip_whitespace=True)

    id: str = Field("", max_length=200)
    title: str = Field(min_length=1, max_length=500)
    service: str = Field("", max_length=200)
    region: str = Field("", max_length=100)
    severity: str = Field("", max_length=32)
    description: str = Field("", max_length=5000)
    metric: str = Field("", max_length=200)
    value: float | None = Field(None, allow_inf_nan=False)
    labels: Labels = Field(default_factory=dict)
    url: str = Field("", max_length=1000)
    started_at: datetime | None = None


class Incident(BaseModel):
    """A full incident snapshot. `version` grows with every change at the source; newest wins."""

    id: str
    title: str
    description: str = ""
    severity: Severity = Severity.MEDIUM
    status: IncidentStatus = IncidentStatus.TRIGGERED
    responders: list[Responder] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    alerts: list[Alert] = Field(default_factory=list)
    version: int = 1
    created_at: datetime
    updated_at: datetime
    snoozed_until: datetime | None = None
    status_before_snooze: IncidentStatus | None = None


class Member(BaseModel):
    """One responder's membership in the war room, as the workflow last saw it."""

    responder_id: str
    name: str = ""
    email: str | None = None
    phone: str | None = None
    im_user_id: str | None = None
    state: MemberState = MemberState.PENDING
    detail: str = ""


class WarRoom(BaseModel):
    """The war room's actual state (what exists on the platform), owned by the workflow."""

    state: RoomState = RoomState.NONE
    platform: str = "sandbox"
    chat_id: str | None = None
    name: str | None = None
    join_url: str | None = None
    generation: int = 0
    # The status card as its adapter finds it again (warroom.im.base.CardHandle); histories from
    # before the name was a handle carry it as `card_message_id`.
    card_handle: str | None = Field(None, validation_alias=AliasChoices("card_handle", "card_message_id"))
    card_version: int = 0
    members: list[Member] = Field(default_factory=list)
    detail: str = ""

    def member(self, responder_id: str) -> Member | None:
        return next((m for m in self.members if m.responder_id == responder_id), None)


class TimelineEntry(BaseModel):
    """One audited operation. `id` is stable (`<incident>-<seq>`) so AI output can cite it."""

    id: str
    incident_id: str
    seq: int
    at: datetime
    actor: str
    source: Source
    kind: str
    detail: str = ""
    outcome: Outcome = Outcome.OK


INCIDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class IncidentIn(BaseModel):
    """The body of `POST /api/v1/incidents`: create, or update when `id` exists."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str | None = None
    title: str = Field(min_length=1, max_length=500)
    description: str = Field("", max_length=20_000)
    severity: Severity = Severity.MEDIUM
    status: IncidentStatus = IncidentStatus.TRIGGERED
    responders: list[Responder] = Field(default_factory=list, max_length=500)
    labels: Labels = Field(default_factory=dict)
    alerts: list[Alert] = Field(default_factory=list, max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _plain_input(cls, data: Any) -> Any:
        return _plain(data)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str | None) -> str | None:
        if v is not None and not INCIDENT_ID.match(v):
            raise ValueError("id must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return v

    @field_validator("responders")
    @classmethod
    def _unique_responders(cls, v: list[Responder]) -> list[Responder]:
        return unique_responders(v)


def unique_responders(responders: list[Responder]) -> list[Responder]:
    """Drop repeated responders (same id), keeping the first: a person is invited once."""
    seen: set[str] = set()
    out = []
    for r in responders:
        if r.id not in seen:
            seen.add(r.id)
            out.append(r)
    return out
