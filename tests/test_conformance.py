"""One conformance suite for every platform: what the core relies on, checked at each platform's
own records (its fake's state, not the adapter's word).

Each platform runs through War Room's real path: its plugin found through the `warroom.platforms`
entry point, its adapter built from settings by the registry, the IM activities of the core
(`activities/im.py`, in Temporal's activity environment) on top, and the platform's fake server
behind the real SDK client. The in-memory platform (tests/platforms/memory) is installed like a
third-party package and can do least: the core must degrade on its capabilities.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from activities.im import ImActivities
from tests.fakes import lark_api
from tests.fakes.dingtalk_api import FakeDingTalk
from tests.fakes.slack_api import SIGNING_SECRET, SPEC_PATH, TOKEN, FakeSlack, running_fake_slack
from tests.fakes.wecom_api import FakeWeCom
from tests.platforms import installed
from warroom.errors import PermanentImError, RateLimited, TransientImError
from warroom.im.base import CardButton, Dismissal, ImAdapter, Mention, RoomSpec, StatusCard
from warroom.im.sandbox.adapter import FAULTS, SandboxAdapter
from warroom.im.sandbox.platform import SandboxPlatform
from warroom.messages import DismissInput, PostCardInput, PostMessageInput, UpdateCardInput
from warroom.models import Action, IncidentStatus, Severity
from warroom.settings import Settings
from warroom.store import Store

PLATFORMS = ["sandbox", "slack", "lark", "dingtalk", "wecom", "memory"]
ANN, BOB = "ann@example.com", "bob@example.com"


@dataclass
class Harness:
    """A platform under test: the core's activities on it and a view of the platform's records."""

    name: str
    activities: ImActivities
    users: dict[str, str]  # email → the platform's user id
    rooms: Callable[[str], int]  # live rooms of an incident
    members: Callable[[str], set[str]]
    card_version: Callable[[str, str], int]  # version a card shows
    texts: Callable[[str], list[str]]  # plain messages of a room, oldest first
    ended: Callable[[str], bool]  # the room is disbanded, archived or marked closed
    pings: Callable[[str], set[str]]  # whom a posted text notifies, as the platform reads it
    fault: Callable[
        ..., None
    ]  # (kind, op="post"|"create"): the next such call meets rate_limited, server_error, timeout_after
    refuse: Callable[[], None]  # the next post_message is refused for good (a missing permission)

    @property
    def adapter(self) -> ImAdapter:
        return self.activities.platform_adapter(self.name)

    async def run(self, activity: Callable[..., Awaitable[Any]], arg: Any) -> Any:
        return await ActivityEnvironment().run(activity, arg)


def spec(incident_id: str) -> RoomSpec:
    return RoomSpec(
        incident_id=incident_id,
        idempotency_key=f"incident-{incident_id}:room:1",
        name=f"inc-{incident_id} Checkout errors",
        url=f"http://warroom.example/api/v1/incidents/{incident_id}",
    )


def card(version: int, status: IncidentStatus = IncidentStatus.TRIGGERED) -> StatusCard:
    return StatusCard(
        incident_id="c1",
        title="Checkout errors",
        severity=Severity.HIGH,
        status=status,
        version=version,
        url="http://warroom.example/api/v1/incidents/c1",
        buttons=[CardButton(action=Action.ACKNOWLEDGE, label="Acknowledge")],
    )


# ---------------------------------------------------------------------------- the platforms


class _Forced(random.Random):
    """A sandbox RNG whose next draws inject one chosen fault, then none."""

    def __init__(self) -> None:
        super().__init__(0)
        self.next: str | None = None

    def random(self) -> float:
        return 0.0 if self.next else 1.0

    def choice(self, seq):  # type: ignore[no-untyped-def, override]
        fault, self.next = self.next, None
        return fault


def _sandbox(tmp_path: Path, settings: Settings, store: Store) -> Harness:
    activities = ImActivities(store, settings)
    platform = SandboxPlatform(store.db)
    users = {e: platform.lookup_user(email=e, phone=None, now=_now()) or "" for e in (ANN, BOB)}
    forced = _Forced()
    real = activities.platform_adapter("sandbox")
    assert isinstance(real, SandboxAdapter)
    real.rng, real.fault_rate = forced, 1.0
    kinds = {"rate_limited": "rate_limited", "server_error": "server_error", "timeout_after": "timeout_after_effect"}
    assert set(kinds.values()) == set(FAULTS)

    def refuse() -> None:  # the sandbox has no permissions: a room it refuses to post in stands for one
        for room in platform.rooms():
            platform.dismiss_room(room.chat_id, _now())

    def rooms(incident_id: str) -> int:
        return sum(1 for r in platform.rooms() if r.incident_id == incident_id and r.state == "active")

    return Harness(
        name="sandbox",
        activities=activities,
        users=users,
        rooms=rooms,
        members=lambda chat: {m.user_id for m in platform.room(chat).members if m.state == "joined"},
        card_version=lambda chat, h: next(m.card_version or 0 for m in platform.messages(chat) if str(m.id) == h),
        texts=lambda chat: [m.text for m in platform.messages(chat) if m.card is None],
        ended=lambda chat: platform.room(chat).state == "dismissed",
        pings=lambda text: set(re.findall(r"<(U[A-Z0-9]+|warroom-bot)>", text)),
        fault=lambda kind, op="post": setattr(forced, "next", kinds[kind]),
        refuse=refuse,
    )


def _slack(fake: FakeSlack, settings: Settings, store: Store) -> Harness:
    settings = settings.model_copy(
        update={
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_BASE_URL": fake.url,
            "WARROOM_SLACK_TIMEOUT": 1.0,
        }
    )
    users = {e: fake.add_user(e) for e in (ANN, BOB)}
    kinds = {"rate_limited": ("ratelimited", {"retry_after": 30}), "server_error": ("server_error", {}),
             "timeout_after": ("timeout_after", {"delay": 2.0})}  # fmt: skip

    def fault(kind: str, op: str = "post") -> None:
        name, kw = kinds[kind]
        method = {"post": "chat.postMessage", "create": "conversations.create"}[op]
        fake.inject(method, name, times=1 if kind != "server_error" else 3, **kw)

    def shown(chat: str, handle: str) -> int:
        blocks = json.dumps((fake.channels[chat].message(handle) or {}).get("blocks"))
        return int(re.search(r"card v(\d+)", blocks).group(1))  # type: ignore[union-attr]

    return Harness(
        name="slack",
        activities=ImActivities(store, settings),
        users=users,
        rooms=lambda iid: sum(1 for c in fake.channels.values() if f"incident={iid} " in c.purpose and not c.archived),
        members=lambda chat: fake.channels[chat].members - {next(iter(fake.users))},
        card_version=shown,
        texts=lambda chat: [m["text"] for m in fake.bot_messages(chat) if not m.get("blocks")],
        ended=lambda chat: fake.channels[chat].archived,
        pings=lambda text: set(re.findall(r"<[@!]([A-Za-z0-9]+)[|>]", text)),
        fault=fault,
        refuse=lambda: fake.inject("chat.postMessage", "error", code="missing_scope"),
    )


def _lark(fake: lark_api.FakeLark, settings: Settings, store: Store) -> Harness:
    settings = settings.model_copy(
        update={
            "LARK_APP_ID": fake.app_id,
            "LARK_APP_SECRET": fake.app_secret,
            "LARK_DOMAIN": fake.domain,
            "LARK_ENCRYPT_KEY": "k" * 16,
            "LARK_VERIFICATION_TOKEN": "t",
            "LARK_TIMEOUT_SECONDS": 1.0,
        }
    )
    fake.reset_seconds = 30
    users = {e: fake.add_user(name=e.split("@")[0], email=e) for e in (ANN, BOB)}
    kinds = {"rate_limited": ["429"], "server_error": ["503", "503", "503"], "timeout_after": ["timeout_after"]}

    def shown(chat: str, handle: str) -> int:
        return next(iter(lark_api.card_buttons(fake.messages[handle].content).values()))["card_version"]

    return Harness(
        name="lark",
        activities=ImActivities(store, settings),
        users=users,
        rooms=lambda iid: sum(1 for c in fake.live_chats() if c.name.startswith(f"inc-{iid} ")),
        members=lambda chat: set(fake.chats[chat].members),
        card_version=shown,
        texts=lambda chat: [json.loads(m.content)["text"] for m in fake.chat_messages(chat) if m.msg_type == "text"],
        ended=lambda chat: fake.chats[chat].deleted,
        pings=lambda text: set(re.findall(r'<at user_id="([^"]+)"', text, re.IGNORECASE)),
        fault=lambda kind, op="post": fake.fail({"post": "message.create", "create": "chat.create"}[op], *kinds[kind]),
        refuse=lambda: fake.fail("message.create", "99991672"),
    )


def _dingtalk(fake: FakeDingTalk, settings: Settings, store: Store) -> Harness:
    owner = fake.add_user("Owner")
    settings = settings.model_copy(update=fake.settings(owner))
    users = {e: fake.add_user(e.split("@")[0], email=e) for e in (ANN, BOB)}
    kinds = {"rate_limited": ["qps"], "server_error": ["500", "500", "500"], "timeout_after": ["timeout_after"]}
    return Harness(
        name="dingtalk",
        activities=ImActivities(store, settings),
        users=users,
        rooms=lambda iid: sum(1 for g in fake.live_groups() if g.title.startswith(f"inc-{iid} ")),
        members=lambda chat: fake.groups[chat].members - {owner},
        card_version=lambda chat, h: int(fake.cards[h].params["card_version"]),
        texts=lambda chat: [m.text for m in fake.group_messages(chat)],
        ended=lambda chat: fake.groups[chat].disbanded,
        pings=fake.pings,
        fault=lambda kind, op="post": fake.fail({"post": "robot.send", "create": "scene.create"}[op], *kinds[kind]),
        refuse=lambda: fake.fail("robot.send", "Forbidden.AccessDenied.AccessTokenPermissionDenied"),
    )


def _wecom(fake: FakeWeCom, settings: Settings, store: Store) -> Harness:
    """Two duty accounts join every room, so a group exists as soon as the room is opened (WeCom needs
    two members); the status messages the adapter posts for the card are not counted as texts."""
    from warroom.im.wecom.card import NOTE

    duty = {fake.add_user("Duty One"), fake.add_user("Duty Two")}
    settings = settings.model_copy(update=fake.settings(WECOM_DUTY_USER_IDS=",".join(sorted(duty))))
    users = {e: fake.add_user(e.split("@")[0], biz_mail=e) for e in (ANN, BOB)}
    kinds = {"rate_limited": ["45009"], "server_error": ["500", "500", "500"], "timeout_after": ["timeout_after"]}

    def shown(chat: str, handle: str) -> int:
        # Duty accounts get no application card, so the group shows the versions: one status message
        # per version, in order (a retry posting again would count one too many).
        return sum(1 for t in fake.texts(chat) if NOTE in t)

    return Harness(
        name="wecom",
        activities=ImActivities(store, settings),
        users=users,
        rooms=lambda iid: sum(1 for c in fake.chats.values() if c.names[0].startswith(f"inc-{iid} ")),
        members=lambda chat: set(fake.chats[chat].members) - duty,
        card_version=shown,
        texts=lambda chat: [t for t in fake.texts(chat) if NOTE not in t],
        ended=lambda chat: fake.chats[chat].name.startswith("[closed] "),
        pings=lambda text: set(re.findall(r"<@([^>]+)>", text)) | ({"all"} if "@all" in text else set()),
        fault=lambda kind, op="post": fake.fail({"post": "appchat.send", "create": "appchat.create"}[op], *kinds[kind]),
        refuse=lambda: fake.fail("appchat.send", "60011"),
    )


def _memory(settings: Settings, store: Store) -> Harness:
    activities = ImActivities(store, settings.model_copy(update={"MEMORY_TOKEN": "m-secret"}))
    adapter: Any = activities.platform_adapter("memory")
    chats = adapter.chats
    return Harness(
        name="memory",
        activities=activities,
        users=dict(adapter.users),
        rooms=lambda iid: sum(1 for c in chats.values() if c.name.startswith(f"inc-{iid} ")),
        members=lambda chat: set(chats[chat].members),
        card_version=lambda chat, h: chats[chat].cards[h].version,
        texts=lambda chat: list(chats[chat].messages.values()),
        ended=lambda chat: chats[chat].name.startswith("[closed] "),
        pings=lambda text: set(re.findall(r"@(\S+)", text)),
        fault=lambda kind, op="post": adapter.faults.append(kind),
        refuse=lambda: adapter.faults.append("forbidden"),
    )


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.now(UTC)


@pytest_asyncio.fixture(params=PLATFORMS)
async def harness(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> AsyncIterator[Harness]:
    store = Store(settings.database_url)
    try:
        if request.param == "sandbox":
            h = _sandbox(tmp_path, settings, store)
            yield h
        elif request.param == "slack":
            if not SPEC_PATH.exists():
                pytest.skip(f"Slack's OpenAPI spec not found at {SPEC_PATH}")
            async with running_fake_slack() as fake:
                h = _slack(fake, settings, store)
                yield h
                assert fake.spec_violations == []
        elif request.param == "lark":
            with lark_api.FakeLark(late_seconds=1.5) as fake:
                h = _lark(fake, settings, store)
                yield h
        elif request.param == "dingtalk":
            with FakeDingTalk(late_seconds=1.5) as fake:
                h = _dingtalk(fake, settings, store)
                yield h
        elif request.param == "wecom":
            with FakeWeCom(late_seconds=2.5) as wecom:
                h = _wecom(wecom, settings, store)
                yield h
        else:
            with installed(tmp_path / "site", {"memory": "tests.platforms.memory:plugin"}):
                h = _memory(settings, store)
                yield h
        await h.activities.aclose()
    finally:
        store.close()


async def retried(call: Callable[[], Awaitable[Any]], attempts: int = 6) -> Any:
    """What Temporal does with a retryable failure: call again."""
    for _ in range(attempts - 1):
        try:
            return await call()
        except (TransientImError, RateLimited):
            continue
    return await call()


async def opened(h: Harness, incident_id: str = "c1") -> str:
    ref = await retried(lambda: h.adapter.create_room(spec(incident_id)))
    return ref.chat_id


# ---------------------------------------------------------------------------- the suite


async def test_a_retried_or_concurrent_create_makes_one_room(harness: Harness) -> None:
    first, concurrent = await asyncio.gather(*(retried(lambda: harness.adapter.create_room(spec("c1"))) for _ in "ab"))
    again = await harness.adapter.create_room(spec("c1"))  # a retry after a lost answer
    assert again.chat_id == first.chat_id == concurrent.chat_id
    assert harness.rooms("c1") == 1


async def test_a_create_that_timed_out_after_creating_is_retried_into_the_same_room(harness: Harness) -> None:
    harness.fault("timeout_after", "create")
    with pytest.raises(TransientImError):
        await harness.adapter.create_room(spec("c2"))
    ref = await retried(lambda: harness.adapter.create_room(spec("c2")))
    assert ref.chat_id and harness.rooms("c2") == 1


async def test_inviting_someone_already_present_is_success(harness: Harness) -> None:
    chat = await opened(harness)
    ann = harness.users[ANN]
    assert [r.ok for r in await harness.adapter.add_members(chat, [ann])] == [True]
    assert [r.ok for r in await harness.adapter.add_members(chat, [ann, harness.users[BOB]])] == [True, True]
    assert {ann, harness.users[BOB]} <= harness.members(chat)


async def test_card_posted_once_then_shown_newer(harness: Harness) -> None:
    chat = await opened(harness)
    post = PostCardInput(platform=harness.name, chat_id=chat, card=card(1), key="c1:card:1")
    handle = await harness.run(harness.activities.post_card, post)
    assert await harness.run(harness.activities.post_card, post) == handle  # a retry finds the first card
    assert harness.card_version(chat, handle) == 1
    update = UpdateCardInput(
        platform=harness.name, chat_id=chat, handle=handle, card=card(2, IncidentStatus.ACKNOWLEDGED)
    )
    before = len(harness.texts(chat))
    await harness.run(harness.activities.update_card, update)
    await harness.run(harness.activities.update_card, update)  # a retry changes nothing more
    if harness.adapter.capabilities.edit_card:
        assert harness.card_version(chat, handle) == 2 and len(harness.texts(chat)) == before
    else:  # the core posts the new status instead, once per version
        assert harness.card_version(chat, handle) == 1
        news = harness.texts(chat)[before:]
        assert len(news) == 1 and "acknowledged" in news[0]


async def test_a_message_mentions_people_as_data_and_its_text_pings_nobody(harness: Harness) -> None:
    chat = await opened(harness)
    ann, bob = harness.users[ANN], harness.users[BOB]
    hostile = f'<!channel> <!everyone> <@{bob}> <{bob}> <at user_id="all"></at> <AT user_id="{bob}"> @{bob} @all &'
    msg = PostMessageInput(
        platform=harness.name, chat_id=chat, text=hostile, key="m1", mentions=[Mention(im_user_id=ann)]
    )
    await harness.run(harness.activities.post_message, msg)
    await harness.run(harness.activities.post_message, msg)  # a retry: still one message
    [posted] = harness.texts(chat)
    assert harness.pings(posted) == {ann}, posted


async def test_history_where_the_platform_has_one(harness: Harness) -> None:
    chat = await opened(harness)
    await harness.adapter.post_message(chat, "status: mitigated", "h1")
    history = await harness.adapter.fetch_history(chat)
    if harness.adapter.capabilities.history:
        assert [m.text for m in history if "mitigated" in m.text]
    else:  # the assistant reads the transcript it captured from events alone
        assert history == []


async def test_dismissing_twice_ends_the_room_once(harness: Harness) -> None:
    chat = await opened(harness)
    dismiss = DismissInput(platform=harness.name, chat_id=chat, name="inc-c1 Checkout errors")
    await harness.run(harness.activities.dismiss_room, dismiss)
    await harness.run(harness.activities.dismiss_room, dismiss)
    assert harness.ended(chat)
    if harness.adapter.capabilities.dismissal is Dismissal.NONE:  # a closing message, once
        assert sum("closed" in t for t in harness.texts(chat)) == 1


@pytest.mark.parametrize("fault", ["rate_limited", "server_error", "timeout_after"])
async def test_faults_become_typed_errors_and_a_retry_posts_once(harness: Harness, fault: str) -> None:
    chat = await opened(harness)
    harness.fault(fault)
    try:
        await harness.adapter.post_message(chat, "hello", "k1")
    except RateLimited as e:
        assert fault == "rate_limited" and e.retry_after and e.retry_after > 0
    except TransientImError:
        assert fault in ("server_error", "timeout_after")
    else:
        pytest.fail(f"{harness.name}: a {fault} fault was not reported")
    if fault == "rate_limited":
        return  # nothing was applied, and a retry waits as long as the platform said
    await retried(lambda: harness.adapter.post_message(chat, "hello", "k1"))
    assert harness.texts(chat).count("hello") == 1  # after a timeout that had posted it too


async def test_a_missing_permission_is_a_permanent_refusal(harness: Harness) -> None:
    chat = await opened(harness)
    harness.refuse()
    with pytest.raises(PermanentImError):
        await harness.adapter.post_message(chat, "hello", "k1")
