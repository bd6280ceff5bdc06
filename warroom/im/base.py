"""The IM adapter seam: one interface for every platform, outbound and inbound.

The core never branches on platform names. It asks an adapter what it can do
(`Capabilities`) and degrades: no editable cards → post a fresh card; no disband → archive or
just leave; no history API → rely on the transcript captured from events.

Every outbound method must be idempotent by the business key it is given (or by nature:
inviting a member who is already in the room is success), because Temporal retries an
activity whose first attempt may have succeeded just before a timeout.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from warroom.models import Action, IncidentStatus, MemberState, Severity


class Capabilities(BaseModel, frozen=True):
    """What a platform can do; the workflow plans around these instead of platform names."""

    edit_card: bool = True
    pin_card: bool = False
    disband: bool = True
    history: bool = False
    join_link: bool = False
    email_lookup: bool = True
    phone_lookup: bool = False
    remove_members: bool = True
    max_invite_batch: int = 100


class RoomSpec(BaseModel):
    incident_id: str
    idempotency_key: str
    name: str
    topic: str = ""
    url: str = ""
    generation: int = 1  # the incident's how-manieth room (our bookkeeping; platforms ignore it)


class RoomRef(BaseModel):
    chat_id: str
    name: str
    join_url: str | None = None


class CardMember(BaseModel):
    name: str
    state: MemberState


class CardButton(BaseModel):
    action: Action
    label: str
    minutes: int | None = None


class StatusCard(BaseModel):
    """A platform-neutral status card; each adapter renders it in its own format."""

    incident_id: str
    title: str
    severity: Severity
    status: IncidentStatus
    version: int = Field(description="card version: grows with every render, buttons carry it")
    members: list[CardMember] = Field(default_factory=list)
    last_action: str = ""
    snoozed_until: datetime | None = None
    url: str = ""
    buttons: list[CardButton] = Field(default_factory=list)


class MessageRef(BaseModel):
    message_id: str


class ChatMessage(BaseModel):
    message_id: str
    chat_id: str
    author: str
    text: str
    at: datetime


class InviteResult(BaseModel):
    im_user_id: str
    ok: bool
    detail: str = ""


# ---- inbound ---------------------------------------------------------------------------------


class CallbackRequest(BaseModel):
    """An HTTP callback as received, before any trust is placed in it."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str] = Field(default_factory=dict)
    body: bytes = b""


class ActionClicked(BaseModel):
    kind: Literal["action"] = "action"
    event_id: str
    chat_id: str
    im_user_id: str
    action: Action
    minutes: int | None = None
    card_version: int | None = None


class MessageReceived(BaseModel):
    kind: Literal["message"] = "message"
    event_id: str
    chat_id: str
    message_id: str
    im_user_id: str
    text: str
    mentions_bot: bool = False


class RoomGone(BaseModel):
    """Somebody disbanded or archived the room by hand, outside War Room."""

    kind: Literal["room_gone"] = "room_gone"
    event_id: str
    chat_id: str
    im_user_id: str = ""


InboundEvent = ActionClicked | MessageReceived | RoomGone


class SetupCheck(BaseModel):
    """One line of `warroom doctor`: is this part of a platform's setup right, and if not, what to do."""

    platform: str
    name: str  # e.g. "token", "scope channels:manage", "events URL"
    ok: bool
    detail: str = ""
    fix: str = ""  # what the operator should do when not ok


class CallbackResult(BaseModel):
    """What a verified callback means (events) and what to answer the platform right away."""

    events: list[InboundEvent] = Field(default_factory=list)
    status: int = 200
    response: dict | None = None


class ImAdapter(abc.ABC):
    """One platform. Instances are long-lived (one per worker/API process) and thread-safe."""

    platform: str
    capabilities: Capabilities

    # -- outbound --
    @abc.abstractmethod
    async def create_room(self, spec: RoomSpec) -> RoomRef:
        """Create the group chat; the same `spec.idempotency_key` must yield the same chat."""

    @abc.abstractmethod
    async def lookup_user(self, *, email: str | None, phone: str | None) -> str | None:
        """The platform's user id for a person, or None when the directory does not know them."""

    @abc.abstractmethod
    async def add_members(self, chat_id: str, im_user_ids: list[str]) -> list[InviteResult]:
        """Invite people; someone already in the room counts as success."""

    @abc.abstractmethod
    async def remove_members(self, chat_id: str, im_user_ids: list[str]) -> None:
        """Remove people; someone already gone counts as success."""

    @abc.abstractmethod
    async def post_card(self, chat_id: str, card: StatusCard, idempotency_key: str) -> MessageRef:
        """Post the status card once per key (a retry returns the first message)."""

    @abc.abstractmethod
    async def update_card(self, chat_id: str, message_id: str, card: StatusCard) -> None:
        """Replace the card's content in place; an older `card.version` must never win."""

    @abc.abstractmethod
    async def post_message(self, chat_id: str, text: str, idempotency_key: str) -> MessageRef:
        """Post a plain message once per key."""

    async def post_notice(self, chat_id: str, im_user_id: str, text: str, idempotency_key: str) -> None:
        """Tell one person something (a refused click) once per key; platforms with ephemeral
        messages show it to that person only, the default posts it in the room, addressed to them."""
        await self.post_message(chat_id, f"<{im_user_id}> {text}", idempotency_key)

    @abc.abstractmethod
    async def fetch_history(self, chat_id: str, since: datetime | None = None) -> list[ChatMessage]:
        """Messages of the room, oldest first (empty when the platform has no history API)."""

    @abc.abstractmethod
    async def join_url(self, chat_id: str) -> str | None:
        """A link that opens the room, or None when the platform has none."""

    @abc.abstractmethod
    async def dismiss_room(self, chat_id: str) -> None:
        """Disband or archive the room; a room that is already gone counts as success."""

    # -- inbound --
    @abc.abstractmethod
    def handle_callback(self, request: CallbackRequest) -> CallbackResult:
        """Verify (raise `CallbackRejected`) and parse a callback into domain events."""

    # -- setup --
    async def setup_checks(self) -> list[SetupCheck]:
        """Check credentials, scopes and settings against the platform (`warroom doctor`)."""
        return [SetupCheck(platform=self.platform, name="adapter", ok=True, detail="nothing to configure")]

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections; adapters without any need not override it."""
