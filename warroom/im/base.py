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
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Literal, NewType

from pydantic import BaseModel, Field

from warroom.im.rich import Rich
from warroom.models import Action, IncidentStatus, MemberState, Severity


class Dismissal(StrEnum):
    """How a platform ends a group chat."""

    DISBAND = "disband"  # the group is deleted
    ARCHIVE = "archive"  # the group stays, read-only, with its history (Slack)
    NONE = "none"  # the platform cannot end a group: the core posts a closing message and renames it


class Capabilities(BaseModel, frozen=True):
    """What a platform can do; the core plans around these instead of platform names
    (`activities/im.py` and the assistant's activities read them)."""

    edit_card: bool = True  # False: each change of the card is posted as a new status message
    pin_card: bool = False  # the core pins a new card (`pin_card`) right after posting it
    dismissal: Dismissal = Dismissal.DISBAND
    history: bool = False  # False: the assistant reads the transcript it captured from events alone
    join_link: bool = False  # False: asking to join a room adds the asking person to it
    email_lookup: bool = True
    phone_lookup: bool = False
    remove_members: bool = True  # False: people who leave the incident stay in the room
    max_invite_batch: int = 100
    # `post_notice` reaches the person alone (Slack's ephemeral messages, WeCom's app messages):
    # where it does, an unlinked clicker is offered a self-link address (`warroom.selflink`).
    private_notices: bool = False
    edit_message: bool = False  # the core may edit its own messages (`edit_rich`): answers stream in place
    # The card shows `StatusCard.impact` (the layout is ours): the assistant's own impact
    # assessments refresh that section instead of posting a message each time.
    card_impact: bool = False


class RoomSpec(BaseModel):
    """Everything an adapter may know about the room it makes: adapters never read the store."""

    incident_id: str
    idempotency_key: str
    name: str
    topic: str = ""
    url: str = ""
    generation: int = 1  # the incident's how-manieth room (a reopened incident gets a new one)
    incident_created_at: datetime | None = None  # for names with a date: the same on every retry


# A status card as the adapter that posted it can find it again: a Slack message `ts`, a Lark
# message id, a DingTalk `outTrackId`. The core stores it and hands it back, never looks inside.
CardHandle = NewType("CardHandle", str)


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
    impact: str = ""  # one line of what is affected (the assistant's facts), where the card shows it


class MessageRef(BaseModel):
    message_id: str


class Mention(BaseModel):
    """Someone a message addresses; each adapter renders it in its platform's own form (and
    escapes the text around it, so text alone never pings anyone)."""

    im_user_id: str


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
# Hands verified events to War Room (a durable signal to each incident's workflow); raises when
# they could not be delivered, so a long connection can tell the platform to send them again.
Deliver = Callable[[list[InboundEvent]], Awaitable[None]]


class SetupCheck(BaseModel):
    """One line of `warroom doctor`: is this part of a platform's setup right, and if not, what to do."""

    platform: str
    name: str  # e.g. "token", "scope channels:manage", "events URL"
    ok: bool
    detail: str = ""
    fix: str = ""  # what the operator should do when not ok


class CallbackReply(BaseModel):
    """The answer the platform gets, in its own format (JSON for most, plain text for WeCom's
    URL check), so the route never needs to know which platform it serves."""

    status: int = 200
    content_type: str = "application/json"
    body: bytes = b'{"ok":true}'


class CallbackResult(BaseModel):
    """What a verified callback means (events) and what to answer the platform right away."""

    events: list[InboundEvent] = Field(default_factory=list)
    reply: CallbackReply = Field(default_factory=CallbackReply)
    # What makes this signed request unique (its signature): the API takes it once across all
    # replicas (`warroom.store.callbacks`), so a replayed request is answered but acts no more.
    replay_key: str | None = None

    @classmethod
    def with_json(
        cls, data: object = None, *, events: list[InboundEvent] | None = None, status: int = 200
    ) -> CallbackResult:
        body = json.dumps({"ok": True} if data is None else data, separators=(",", ":")).encode()
        return cls(events=events or [], reply=CallbackReply(status=status, body=body))

    @classmethod
    def with_text(cls, text: str, *, status: int = 200) -> CallbackResult:
        return cls(reply=CallbackReply(status=status, content_type="text/plain; charset=utf-8", body=text.encode()))

    def answer(self) -> object:
        """The reply's JSON, for tests and logs (None when it is not JSON)."""
        return json.loads(self.reply.body) if self.reply.content_type == "application/json" else None


class ImAdapter(abc.ABC):
    """One platform. Instances are long-lived (one per worker/API process) and thread-safe."""

    platform: str
    capabilities: Capabilities

    # -- outbound --
    @abc.abstractmethod
    async def create_room(self, spec: RoomSpec) -> RoomRef:
        """Create the group chat; the same `spec.idempotency_key` must yield the same chat. The
        ref's `join_url` may be left None when the link takes a call of its own: the core then
        asks `join_url` beside the invites and the card, off the path to a ready room."""

    @abc.abstractmethod
    async def lookup_user(self, *, email: str | None, phone: str | None) -> str | None:
        """The platform's user id for a person, or None when the directory does not know them."""

    def forget_misses(self) -> None:
        """Ask the platform again about people it did not know: One-click Link follows someone
        being added to the workspace, and must not answer from a remembered "not found". Nothing
        to forget for adapters that remember no misses (or keep them on purpose, as WeCom does)."""
        return None

    @abc.abstractmethod
    async def add_members(self, chat_id: str, im_user_ids: list[str]) -> list[InviteResult]:
        """Invite people; someone already in the room counts as success."""

    @abc.abstractmethod
    async def remove_members(self, chat_id: str, im_user_ids: list[str]) -> None:
        """Remove people; someone already gone counts as success."""

    @abc.abstractmethod
    async def post_card(self, chat_id: str, card: StatusCard, idempotency_key: str) -> CardHandle:
        """Post the status card once per key (a retry returns the first card's handle)."""

    @abc.abstractmethod
    async def update_card(self, chat_id: str, handle: CardHandle, card: StatusCard) -> None:
        """Replace the card's content in place; an older `card.version` must never win.
        Called only when `capabilities.edit_card`; otherwise the core posts a new status."""

    async def pin_card(self, chat_id: str, handle: CardHandle) -> None:
        """Pin a card just posted; called only when `capabilities.pin_card`. A refusal that
        leaves the card unpinned but visible is logged, not raised."""
        raise NotImplementedError(f"{self.platform} says it pins cards but has no pin_card")

    @abc.abstractmethod
    async def post_message(
        self, chat_id: str, text: str, idempotency_key: str, *, mentions: Sequence[Mention] = ()
    ) -> MessageRef:
        """Post a message once per key: the mentioned people first, then `text` as plain text
        (escaped: markup or mention syntax in it reaches the room as the characters typed)."""

    async def post_rich(self, chat_id: str, rich: Rich, idempotency_key: str) -> MessageRef:
        """Post a formatted message (an assistant answer: bold, lists, links we built) once per
        key, rendered by the platform's `render.py` with every piece of text escaped; platforms
        without formatting post its plain text."""
        return await self.post_message(chat_id, rich.plain(), idempotency_key)

    async def edit_rich(self, chat_id: str, message_id: str, rich: Rich) -> None:
        """Replace a message this adapter posted with `post_rich` (a streamed answer growing in
        place); called only when `capabilities.edit_message`."""
        raise NotImplementedError(f"{self.platform} says it edits messages but has no edit_rich")

    async def post_notice(self, chat_id: str, im_user_id: str, text: str, idempotency_key: str) -> None:
        """Tell one person something (a refused click) once per key; platforms with ephemeral
        messages show it to that person only, the default posts it in the room, addressed to them."""
        await self.post_message(chat_id, text, idempotency_key, mentions=[Mention(im_user_id=im_user_id)])

    async def rename_room(self, chat_id: str, name: str) -> None:
        """Rename the group; the core calls it to mark a room closed where `capabilities.dismissal`
        is `none` (a room that cannot be ended)."""
        raise NotImplementedError(f"{self.platform} cannot end a room and has no rename_room")

    @abc.abstractmethod
    async def fetch_history(self, chat_id: str, since: datetime | None = None) -> list[ChatMessage]:
        """Messages of the room, oldest first (empty when the platform has no history API)."""

    @abc.abstractmethod
    async def join_url(self, chat_id: str) -> str | None:
        """A link that opens the room, or None when the platform has none."""

    @abc.abstractmethod
    async def dismiss_room(self, chat_id: str) -> None:
        """Disband or archive the room (`capabilities.dismissal`); a room already gone is success."""

    # -- inbound --
    @abc.abstractmethod
    def handle_callback(self, request: CallbackRequest) -> CallbackResult:
        """Verify (raise `CallbackRejected`) and parse a callback into domain events."""

    async def listen(self, deliver: Deliver) -> None:
        """Hold the platform's long connection (DingTalk's Stream mode) until cancelled, handing
        each verified event to `deliver`. Only plugins with `long_connection` are asked (by
        `warroom api`); an adapter whose settings choose HTTP callbacks returns at once."""
        return

    def connection_status(self) -> dict[str, object] | None:
        """The long connection's state for `/healthz` and metrics (`state`: connected, connecting,
        backoff, …), or None when the adapter holds none."""
        return None

    # -- setup --
    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Load what the first call would (an SDK slow to import, say), in a thread before the
        worker polls; adapters with nothing slow to load need not override it."""

    async def setup_checks(self) -> list[SetupCheck]:
        """Check credentials, scopes and settings against the platform (`warroom doctor`)."""
        return [SetupCheck(platform=self.platform, name="adapter", ok=True, detail="nothing to configure")]

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections; adapters without any need not override it."""
