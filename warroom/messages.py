"""What travels through Temporal: workflow input, signals, updates and activity arguments.

One model per message so fields can be added without breaking running workflows or recorded
histories. None of these carry a secret: platforms are named, credentials stay in settings.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AliasChoices, BaseModel, Field

from warroom.enums import Role
from warroom.im.base import Mention, RoomRef, RoomSpec, StatusCard
from warroom.im.rich import Rich
from warroom.models import Action, Incident, MemberState, Responder, Source, TimelineEntry, WarRoom

WORKFLOW_TYPE = "IncidentWarRoom"
LINK_USERS_WORKFLOW_TYPE = "LinkUsers"


def workflow_id(incident_id: str) -> str:
    return f"incident-{incident_id}"


class WarRoomConfig(BaseModel):
    """Deployment choices the workflow needs but must not read from the environment itself."""

    public_url: str = "http://localhost:8000"
    default_platform: str = "sandbox"
    snooze_choices_minutes: list[int] = Field(default_factory=lambda: [120, 240, 720])
    max_signals_per_run: int = 1000
    remove_members: bool = False
    # Task queue of each platform's IM activities (regional fleets); missing → the workflow's own.
    im_task_queues: dict[str, str] = Field(default_factory=dict)
    # The assistant: answers per minute per incident; a knowledge check every N new room messages.
    ai_answers_per_minute: int = 6
    ai_knowledge_every: int = 5
    # Platforms where a model's answer streams into a "thinking…" message (a model is configured,
    # WARROOM_AI_STREAM is on, and the platform edits messages).
    ai_stream_platforms: list[str] = Field(default_factory=list)
    # Platforms whose status card has an impact section (`Capabilities.card_impact`): the
    # assistant's own assessments refresh it there instead of posting a message.
    ai_card_impact_platforms: list[str] = Field(default_factory=list)


class AiState(BaseModel):
    """The assistant's part of the carried state: counters and dedup keys only, no text."""

    closes: int = 0  # transitions into `closed` seen
    closes_reviewed: int = 0  # of those, how many got their review
    reviews: int = 0  # reviews this workflow generated (idempotency keys)
    impact_for: str | None = None  # "severity|status" last assessed
    impact_shown: str | None = None  # fingerprint of the impact facts last posted
    impact_line: str = ""  # the status card's impact section (`AiImpact.summary`), where it has one
    knowledge_for: str | None = None  # digest of the incident content last matched against runbooks
    chat_new: int = 0  # room messages since the last knowledge check
    pushed: list[str] = Field(default_factory=list)  # runbooks pushed: once per runbook per incident
    answered_at: list[datetime] = Field(default_factory=list)  # rate limit window
    rate_noticed_at: datetime | None = None
    suggested: dict[str, str] = Field(default_factory=dict)  # action → the ai.answer entry that suggested it


class RoomPolicy(BaseModel):
    """What the rule that matched an incident asks of its room over time (the rules file's
    `reminders` and `dismiss_after_close_minutes`); sent to the workflow by the intake."""

    rule: str = ""
    unacknowledged_after_minutes: int | None = Field(None, ge=1, le=100_000)
    update_every_minutes: int | None = Field(None, ge=1, le=100_000)
    dismiss_after_close_minutes: int | None = Field(None, ge=0, le=100_000)
    # People who stop being responders: removed from the room (True) or kept (False); None: as
    # the deployment says (WARROOM_REMOVE_DEPARTED_MEMBERS).
    remove_departed: bool | None = None


class RuleDecision(BaseModel):
    """What the first rule of the rules file that matches an incident asks of it, evaluated on
    every snapshot (so a severity raised later, from anywhere, opens the room then)."""

    policy: RoomPolicy
    room: str | None = None  # the platform a room is opened on; None: the rule opens no room
    invite: list[str] = Field(default_factory=list, max_length=100)  # beside the responders (emails)
    also: list[str] = Field(default_factory=list, max_length=8)  # platforms of more rooms beside `room`
    name: str = ""  # the rule's room name template (warroom.room_names), filled when a room opens


class ReminderState(BaseModel):
    """The reminders' clocks, carried across continue-as-new; all cleared by what they wait for."""

    policy: RoomPolicy | None = None
    triggered_since: datetime | None = None  # nobody has acknowledged since then
    nudged: bool = False  # for this stretch of `triggered`
    last_update_at: datetime | None = None  # the last thing people did or said in the room
    closed_at: datetime | None = None  # the close the room's automatic dismissal follows
    heads_up: bool = False  # the dismissal was announced for this close


class RoomSlot(BaseModel):
    """One more room of the incident, on another platform than its first (a Slack room and a
    Feishu room for the same incident): the per-room part of `CarriedState`, under the same names,
    so the room's reconciler, members, card and chat work on either."""

    room: WarRoom
    room_wanted: bool = False
    dismiss_wanted: bool = False
    card_shown: dict | None = None
    card_failed: bool = False
    status_card_version: int = 0
    guests: list[Responder] = Field(default_factory=list)

    @property
    def keys(self) -> str:
        """What this room's platform dedup keys carry beside the generation: its platform (the
        first room's keys carry none, as before there were more)."""
        return f"{self.room.platform}:"


class CarriedState(BaseModel):
    """Everything that survives continue-as-new. Kept small: no transcripts, bounded dedup."""

    incident: Incident
    room: WarRoom
    room_wanted: bool = False
    dismiss_wanted: bool = False
    seq: int = 0
    seen: list[str] = Field(default_factory=list)
    roles: dict[str, str] = Field(default_factory=dict)  # Role → who holds it (an email, else a name)
    last_action: str = ""
    card_shown: dict | None = None
    card_failed: bool = False
    status_card_version: int = 0
    runs: int = 1
    ai: AiState = Field(default_factory=AiState)
    # Work handed over at continue-as-new: still to record, to apply, to answer.
    unrecorded: list[TimelineEntry] = Field(default_factory=list)
    room_dirty: bool = False
    clicks: list[RoomActionSignal] = Field(default_factory=list)
    questions: list[RoomMessageSignal] = Field(default_factory=list)
    captured: list[CapturedMessage] = Field(default_factory=list)
    # People who asked to be added to the room (platforms without a join link): members beside the
    # responders, until the room is dismissed.
    guests: list[Responder] = Field(default_factory=list)
    reminders: ReminderState = Field(default_factory=ReminderState)
    more_rooms: list[RoomSlot] = Field(default_factory=list)  # rooms on other platforms, in the order asked
    room_name: str = ""  # the matching rule's room name template; empty: "inc-<id> <title>"

    @property
    def keys(self) -> str:
        """The first room's dedup keys carry no platform (see `RoomSlot.keys`)."""
        return ""


class WarRoomInput(BaseModel):
    incident: Incident
    config: WarRoomConfig = Field(default_factory=WarRoomConfig)
    room: WarRoom | None = None
    more_rooms: list[WarRoom] = Field(default_factory=list)  # the incident's rooms on other platforms
    state: CarriedState | None = None
    # A first run: where the timeline numbering continues, and who opened the incident (if just now).
    last_seq: int = 0
    opened_by: str | None = None
    opened_source: Source = Source.API


# ---- signals ----
class SourceDelivery(BaseModel):
    """One delivery from an incident source (Alertmanager, PagerDuty…) that this snapshot carries:
    the timeline shows each delivery once, by its key, whether or not it changed the incident."""

    key: str = Field(max_length=200)
    summary: str = Field(default="", max_length=300)


# Deliveries one snapshot carries at most: coalesced snapshots concatenate theirs, the oldest go.
DELIVERIES_KEEP = 20


class SnapshotSignal(BaseModel):
    incident: Incident
    actor: str = "system"
    source: Source = Source.API
    deliveries: list[SourceDelivery] = Field(default_factory=list)
    rule: RuleDecision | None = None  # the matching rule, for this snapshot's incident


class RoomActionSignal(BaseModel):
    """A button click in the room, verified by the callback route; authorized by the workflow."""

    event_id: str
    platform: str
    chat_id: str
    im_user_id: str
    action: Action
    minutes: int | None = None
    card_version: int | None = None


# ---- updates ----
class CreateRoomRequest(BaseModel):
    platform: str
    actor: str = "system"
    source: Source = Source.API


class DismissRoomRequest(BaseModel):
    actor: str = "system"
    source: Source = Source.API


class JoinRoomRequest(BaseModel):
    """Someone asks to be added to the room (where the platform has no link to join it)."""

    person: Responder
    actor: str
    source: Source = Source.API


class RoleCommand(BaseModel):
    """A role given in the room (`@warroom lead me`), as the answer activity read it: `me` (the
    speaker), another member by their IM user id, a `person` as written (checked by the workflow
    like any role holder), nobody (all empty), or `ask` (who holds it now)."""

    role: Role
    person: str = ""
    me: bool = False
    im_user_id: str = ""
    ask: bool = False


class SetRoleRequest(BaseModel):
    """Give a role of the incident to someone (an empty `person` leaves the role unheld)."""

    role: Role
    person: str = Field(max_length=320)
    actor: str
    source: Source = Source.API


class ActRequest(BaseModel):
    action: Action
    actor: str
    source: Source = Source.API
    minutes: int | None = None


class WorkflowView(BaseModel):
    incident: Incident
    room: WarRoom
    more_rooms: list[WarRoom] = Field(default_factory=list)
    last_action: str
    runs: int


# ---- activities ----
class ApplyActionInput(BaseModel):
    incident_id: str
    action: Action
    actor: str
    key: str
    at: datetime  # workflow time of the decision: a snooze ends when the workflow's timer says so
    minutes: int | None = None


class RecordInput(BaseModel):
    incident_id: str
    entries: list[TimelineEntry] = Field(default_factory=list)
    room: WarRoom | None = None
    more_rooms: list[WarRoom] = Field(default_factory=list)  # the incident's rooms on other platforms


class CreateRoomInput(BaseModel):
    platform: str
    spec: RoomSpec
    extra: bool = False  # as in OpenRoomInput


class Person(BaseModel):
    responder_id: str
    name: str = ""
    email: str | None = None
    phone: str | None = None
    im_user_id: str | None = None


class InviteMembersInput(BaseModel):
    platform: str
    chat_id: str
    people: list[Person]


class MemberOutcome(BaseModel):
    responder_id: str
    im_user_id: str | None
    state: MemberState
    detail: str = ""


class OpenRoomInput(BaseModel):
    """Everything a new room needs on the platform, for one activity (`im_open_room`)."""

    platform: str
    spec: RoomSpec
    people: list[Person]
    card: StatusCard
    card_key: str
    extra: bool = False  # one of the incident's rooms on another platform than its first


class OpenedRoom(BaseModel):
    room: RoomRef
    members: list[MemberOutcome]
    # None: the platform refused the card (`card_error` says why). Recorded as `card_message_id` before.
    card_handle: str | None = Field(validation_alias=AliasChoices("card_handle", "card_message_id"))
    card_error: str = ""


class RemoveMembersInput(BaseModel):
    platform: str
    chat_id: str
    im_user_ids: list[str]


class PostCardInput(BaseModel):
    platform: str
    chat_id: str
    card: StatusCard
    key: str


class UpdateCardInput(BaseModel):
    platform: str
    chat_id: str
    handle: str = Field(validation_alias=AliasChoices("handle", "message_id"))  # from the card's post
    card: StatusCard


class PostNoticeInput(BaseModel):
    platform: str
    chat_id: str
    im_user_id: str
    text: str
    key: str
    # The person is not linked: where the notice is theirs alone, offer them a self-link address
    # (made by the activity, which has the key: `warroom.selflink`).
    offer_self_link: bool = False


class PeopleLinkedSignal(BaseModel):
    """People were just linked on `platform` (One-click Link, a fix by hand, a self-link): the
    room's members who were not linked and have one of these contacts (email or phone, as on the
    incident) are invited again."""

    platform: str
    contacts: list[str] = Field(default_factory=list, max_length=10_000)


class RoomGoneSignal(BaseModel):
    """The platform says the room was disbanded or archived by hand."""

    event_id: str
    platform: str
    chat_id: str
    im_user_id: str = ""


class PostMessageInput(BaseModel):
    platform: str
    chat_id: str
    text: str
    key: str
    mentions: list[Mention] = Field(default_factory=list)  # addressed first, in the platform's own form
    rich: Rich | None = None  # the same message formatted (an assistant answer): posted instead of `text`


class DismissInput(BaseModel):
    platform: str
    chat_id: str
    name: str = ""  # the room's name: a platform that cannot end rooms marks it closed by renaming


class LinkUsersInput(BaseModel):
    platform: str
    people: list[Person]


class LinkProgress(BaseModel):
    """How far a One-click Link got: the `im_link_users` activity's heartbeat details."""

    done: int = 0
    total: int = 0


class LinkUsersResult(BaseModel):
    linked: list[MemberOutcome] = Field(default_factory=list)
    unlinked: list[MemberOutcome] = Field(default_factory=list)


# ---- the assistant ----
class RoomMessageSignal(BaseModel):
    """A message in the room (verified by the callback route; its text is in the transcript store,
    not in workflow history)."""

    event_id: str
    platform: str
    chat_id: str
    message_id: str
    im_user_id: str
    mentions_bot: bool = False


class ReviewRequest(BaseModel):
    actor: str = "system"
    source: Source = Source.API


class AiAnswerInput(BaseModel):
    incident: Incident
    room: WarRoom
    message_id: str
    im_user_id: str
    # Set where a model's answer may stream into the room: the key the activity posts its
    # "thinking…" message with (then edited in place as the model writes).
    stream_key: str | None = None


class AiAnswer(BaseModel):
    text: str  # what to post, with its sources
    intent: str = "answer"  # answer (any question), help, refused, more, impact, review (the bare commands)
    citations: list[str] = Field(default_factory=list)
    suggestion: Action | None = None
    mode: str = "offline"  # offline, or model:<name>
    note: str = ""  # e.g. why the offline assistant answered instead of the model
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    first_text_ms: float = 0.0  # with a streamed model answer: when its first words arrived
    rich: Rich | None = None  # the same answer with links, for platforms that render formatting
    posted_as: str = ""  # the message it was edited into (stream_to), when that worked: nothing to post
    first_visible_ms: float = 0.0  # streamed: from the activity's start to the first words in the room
    role: RoleCommand | None = None  # intent "role": the role the message gives, applied by the workflow


class AiImpactInput(BaseModel):
    incident: Incident
    room: WarRoom
    requested: bool = False
    for_card: bool = False  # only the card's one line is wanted: the facts, no model call


class AiImpact(BaseModel):
    text: str
    fingerprint: str
    mode: str = "offline"
    known: bool = True  # False: no service, region, user or similar-incident fact yet
    rich: Rich | None = None  # the same assessment formatted, for platforms that render formatting
    summary: str = ""  # the facts in one line, for the status card's impact section


class AiKnowledgeInput(BaseModel):
    incident: Incident
    room: WarRoom
    pushed: list[str] = Field(default_factory=list)


class AiKnowledgePush(BaseModel):
    runbook: str
    title: str
    text: str
    terms: list[str] = Field(default_factory=list)


class AiReviewInput(BaseModel):
    incident: Incident
    room: WarRoom
    key: str
    requested_by: str = "system"


class AiReviewResult(BaseModel):
    version: int
    generated_at: datetime
    url: str
    generator: str
    citations: int = 0
    uncited: int = 0


class CapturedMessage(BaseModel):
    """One of our own posts, for the transcript."""

    incident_id: str
    platform: str
    chat_id: str
    message_id: str
    text: str
    at: datetime


class AiCaptureInput(BaseModel):
    messages: list[CapturedMessage]


class SweepInput(BaseModel):
    incident_id: str
    platform: str
    chat_id: str


CarriedState.model_rebuild()
