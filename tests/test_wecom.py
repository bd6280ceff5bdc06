"""WeCom: the adapter through the real wechatpy against a wire-protocol fake
(`tests/fakes/wecom_api.py`), the callback crypto cross-checked with wechatpy's WeChatCrypto, and
the whole stack (Temporal dev server, worker, `warroom api` served by uvicorn) with the fake
standing in for WeCom.

Assertions are made at the fake platform's records (groups, members, messages, cards, codes).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from wechatpy.enterprise.crypto import WeChatCrypto

from starters.api.app import create_app
from tests.fakes.wecom_api import Chat, FakeWeCom
from tests.serving import serving
from warroom.card import CLOSING_TEXT, closed_name
from warroom.errors import CallbackRejected, ImError, PermanentImError, RateLimited, TransientImError
from warroom.im.base import (
    ActionClicked,
    CallbackRequest,
    CardButton,
    CardHandle,
    CardMember,
    MessageReceived,
    RoomSpec,
    StatusCard,
)
from warroom.im.plugin import PlatformContext
from warroom.im.wecom import adapter as adapter_module
from warroom.im.wecom import card as cards
from warroom.im.wecom import naming, text
from warroom.im.wecom.adapter import WeComAdapter, build_wecom_adapter
from warroom.im.wecom.api import WeComApi
from warroom.im.wecom.callbacks import Callbacks
from warroom.im.wecom.errors import FIXES, LIMIT_CODES
from warroom.im.wecom.settings import WeComSettings
from warroom.im.wecom.state import State
from warroom.models import Action, IncidentStatus, MemberState, Severity
from warroom.settings import Settings
from warroom.store import Store
from workers.main import build_worker

from .conftest import eventually

T = TypeVar("T")


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    with FakeWeCom(late_seconds=2.5) as f:
        yield f


def make_api(fake: FakeWeCom, **extra: Any) -> WeComApi:
    s = fake.settings(**extra)
    return WeComApi(corp_id=s["WECOM_CORP_ID"], secret=s["WECOM_SECRET"], agent_id=s["WECOM_AGENT_ID"],
                    api_base_url=s["WECOM_API_BASE_URL"], timeout=s["WECOM_TIMEOUT_SECONDS"])  # fmt: skip


async def retried(call: Callable[[], Awaitable[T]], attempts: int = 8) -> T:
    """What Temporal does with an activity: retry transient failures, after the platform's delay."""
    for _ in range(attempts - 1):
        try:
            return await call()
        except RateLimited as e:
            await asyncio.sleep(min(e.retry_after, 0.1))
        except TransientImError:
            await asyncio.sleep(0.05)
    return await call()


# ---------------------------------------------------------------------------- token and errors


async def test_token_at_the_base_url_shared_and_refreshed_once_when_refused(fake: FakeWeCom):
    ann = fake.add_user("Ann", email="ann@example.com")
    api = make_api(fake)
    assert await api.userid_by_email("ann@example.com", 2) == ann
    assert len(fake.ops("gettoken")) == 1  # fetched from the fake, not qyapi.weixin.qq.com
    again = make_api(fake)  # another adapter of the same app in this process: the same token
    assert again.client is api.client
    for _ in range(3):
        await again.userid_by_email("ann@example.com", 2)
    assert len(fake.ops("gettoken")) == 1
    fake.fail("user.by_email", "42001")  # expired early: one refresh, the call succeeds
    assert await api.userid_by_email("ann@example.com", 2) == ann
    assert len(fake.ops("gettoken")) == 2
    fake.fail("user.by_email", "40014", "40014", "40014")  # refused over and over: no recursion
    with pytest.raises(TransientImError):
        await api.userid_by_email("ann@example.com", 2)
    assert len(fake.ops("gettoken")) == 3 and fake.pending_faults("user.by_email") == ["40014"]
    wrong = make_api(fake, WECOM_SECRET="not-the-secret")
    with pytest.raises(PermanentImError) as info:
        await wrong.userid_by_email("ann@example.com", 2)
    assert "WECOM_SECRET" in str(info.value)


async def test_errcodes_become_retry_decisions_with_what_to_fix(fake: FakeWeCom):
    api = make_api(fake)
    fake.fail("user.getuserid", "45009", "45033", "500", "502", "-1", "timeout_after")
    for expected in (RateLimited, RateLimited, TransientImError, TransientImError, TransientImError, TransientImError):
        with pytest.raises(expected):
            await api.userid_by_mobile("13800000001")
    assert await api.userid_by_mobile("13800000001") is None  # a miss is no error
    for code, words in ((60011, "root department"), (86008, "created by this app"), (40003, "userid"),
                        (86999, "86xxx"), (40056, "WECOM_AGENT_ID")):  # fmt: skip
        fake.fail("appchat.update", str(code))
        with pytest.raises(PermanentImError) as info:
            await api.update_chat("c1", name="x")
        assert words in str(info.value) and info.value.code == str(code)


# Every errcode War Room names, each through wechatpy against the fake: (retry decision, words the
# message must hold). A refused token is refreshed once first; refused twice it is retried later.
ERRCODE_PATHS = {
    **{str(c): (PermanentImError, FIXES[c].split(":")[0][:40]) for c in FIXES},
    **{str(c): (RateLimited, "frequency") for c in LIMIT_CODES},
    "-1": (TransientImError, "busy"),
    "86999": (PermanentImError, "86xxx"),
    "40014": (TransientImError, "token"),
    "42001": (TransientImError, "token"),
    "40001": (TransientImError, "token"),
}


@pytest.mark.parametrize("code", sorted(ERRCODE_PATHS))
async def test_every_errcode_path(fake: FakeWeCom, code: str):
    api = make_api(fake)
    await api.access_token()
    expected, words = ERRCODE_PATHS[code]
    refused_twice = code in ("40001", "40014", "42001")
    fake.fail("appchat.update", *([code, code] if refused_twice else [code]))
    with pytest.raises(ImError) as info:
        await api.update_chat("wrsomechat", name="x")
    assert type(info.value) is expected and words in str(info.value), str(info.value)
    assert fake.pending_faults("appchat.update") == []  # asked once (twice around a token refresh), no loop
    if isinstance(info.value, PermanentImError):
        assert info.value.code == code and f"errcode {code}" in str(info.value)
    if isinstance(info.value, RateLimited):
        assert info.value.retry_after > 0


# ---------------------------------------------------------------------------- the adapter

ANN, CAROL = "ann@example.com", "carol@example.com"
BOB = "+86 138 0000 0002"


def make_adapter(fake: FakeWeCom, **extra: Any) -> WeComAdapter:
    settings = WeComSettings(_env_file=None, **fake.settings(**extra))  # type: ignore[call-arg]
    adapter = build_wecom_adapter(PlatformContext(settings=settings, public_url="https://warroom.example.com"))
    assert isinstance(adapter, WeComAdapter)
    return adapter


def spec(incident_id: str = "i1", title: str = "Checkout is down", generation: int = 1) -> RoomSpec:
    return RoomSpec(
        incident_id=incident_id,
        idempotency_key=f"incident-{incident_id}:room:{generation}",
        name=f"inc-{incident_id} {title}",
        url=f"https://warroom.example.com/incidents/{incident_id}",
        generation=generation,
    )


def status_card(version: int, status: IncidentStatus = IncidentStatus.TRIGGERED, **extra: Any) -> StatusCard:
    buttons = [CardButton(action=Action.ACKNOWLEDGE, label="Acknowledge"),
               CardButton(action=Action.SNOOZE, label="Snooze 1h", minutes=60),
               CardButton(action=Action.CLOSE, label="Close")]  # fmt: skip
    return StatusCard(
        incident_id="i1",
        title="Checkout is down",
        severity=Severity.HIGH,
        status=status,
        version=version,
        members=[
            CardMember(name="Ann", state=MemberState.INVITED),
            CardMember(name="Carol", state=MemberState.UNLINKED),
        ],
        url="https://warroom.example.com/incidents/i1",
        buttons=buttons,
        **extra,
    )


async def test_a_room_waits_for_two_people_then_one_group_under_faults(fake: FakeWeCom):
    ann, bob = fake.add_user("Ann"), fake.add_user("Bob")
    a = make_adapter(fake)
    long = spec(title="Payment gateway returns 502 for every card payment in the EU and more")
    ref = await a.create_room(long)
    assert len(ref.chat_id) <= 32 and ref.chat_id.isalnum() and ref.join_url is None
    assert (await a.create_room(long)).chat_id == ref.chat_id and fake.chats == {}  # nobody yet: no group
    (alone,) = await a.add_members(ref.chat_id, [ann])
    assert alone.ok and "second member" in alone.detail and fake.chats == {}  # in the record, no group yet
    fake.fail("appchat.create", "timeout_after", "500", "45009")  # made by the first, answered late
    results = await asyncio.gather(*(retried(lambda: a.add_members(ref.chat_id, [bob])) for _ in range(5)))
    assert all(r[0].ok for r in results)
    chat = fake.chats[ref.chat_id]
    assert list(fake.chats) == [ref.chat_id] and set(chat.members) == {ann, bob} and chat.owner == ann
    assert len(chat.name) <= 50 and chat.name.startswith("inc-i1 Payment") and chat.name == ref.name
    other = make_adapter(fake)  # another process retrying the create: "chatid exists", confirmed ours
    other.state = a.state
    assert (await other.create_room(long)).chat_id == ref.chat_id and len(fake.chats) == 1
    assert (await a.create_room(spec(generation=2))).chat_id != ref.chat_id  # reopened: a new group


async def test_a_duty_account_makes_one_person_rooms_and_foreign_groups_are_refused(fake: FakeWeCom):
    ann, duty = fake.add_user("Ann"), fake.add_user("Duty")
    a = make_adapter(fake, WECOM_DUTY_USER_IDS=duty)
    ref = await a.create_room(spec("i2"))
    (r,) = await a.add_members(ref.chat_id, [ann])
    assert r.ok and set(fake.chats[ref.chat_id].members) == {ann, duty} and fake.chats[ref.chat_id].owner == ann
    await a.remove_members(ref.chat_id, [ann, duty])  # neither the owner nor the duty account leaves
    assert set(fake.chats[ref.chat_id].members) == {ann, duty}
    taken = spec("i3")
    fake.chats[naming.chat_id(taken)] = Chat(naming.chat_id(taken), "someone else's group", ann, [ann, duty])
    with pytest.raises(PermanentImError) as info:
        await a.create_room(taken)
    assert info.value.code == "chat_taken"
    fake.visible_root = False
    ref = await a.create_room(spec("i4"))
    with pytest.raises(PermanentImError) as info:
        await a.add_members(ref.chat_id, [ann])
    assert "root department" in str(info.value)


async def test_people_by_both_email_types_and_phone_misses_cached(fake: FakeWeCom):
    ann = fake.add_user("Ann", biz_mail=ANN)
    dora = fake.add_user("Dora", email="dora@gmail.example")
    bob = fake.add_user("Bob", mobile="13800000002")
    a = make_adapter(fake)
    assert await a.lookup_user(email=ANN, phone=None) == ann
    assert await a.lookup_user(email="dora@gmail.example", phone=None) == dora  # 个人邮箱 (email_type 2)
    assert await a.lookup_user(email=None, phone=BOB) == bob
    assert await a.lookup_user(email=CAROL, phone="13800000099") is None
    misses = fake.lookup_misses
    for _ in range(3):  # asked again: answered from the cache (WeCom blocks a day after many misses)
        assert await a.lookup_user(email=CAROL, phone="13800000099") is None
    assert fake.lookup_misses == misses
    again = make_adapter(fake)  # another process (or a restart) sharing the database: the number's miss is known
    again.state = a.state
    assert await again.lookup_user(email=None, phone="13800000099") is None and fake.lookup_misses == misses
    assert {c.body["email_type"] for c in fake.ops("user.by_email")} == {1, 2}
    assert [c.body["mobile"] for c in fake.ops("user.getuserid")] == ["13800000002", "13800000099"]


async def test_members_in_batches_and_one_unknown_id_fails_alone(fake: FakeWeCom):
    a = make_adapter(fake)
    people = [fake.add_user(f"m{i}") for i in range(250)]
    ref = await a.create_room(spec())
    results = await a.add_members(ref.chat_id, [*people, people[0], "nobodyknown"])
    assert all(r.ok for r in results[:-1]) and not results[-1].ok
    assert set(fake.chats[ref.chat_id].members) == set(people)
    assert all(len(c.body.get("add_user_list", [])) <= 100 for c in fake.ops("appchat.update"))
    await a.remove_members(ref.chat_id, [people[1], people[0]])  # people[0] owns the group: stays
    assert people[1] not in fake.chats[ref.chat_id].members and people[0] in fake.chats[ref.chat_id].members


async def test_status_in_the_group_and_a_card_per_responder_updated_with_single_use_codes(fake: FakeWeCom):
    ann, bob = fake.add_user("Ann"), fake.add_user("Bob")
    a = make_adapter(fake)
    ref = await a.create_room(spec())
    chat = ref.chat_id
    await a.post_card(chat, status_card(1), "i1:card:1")  # before the group exists: kept, posted at creation
    assert fake.group_messages == [] and fake.cards == {}
    await a.add_members(chat, [ann, bob])
    (status,) = fake.texts(chat)
    assert "triggered" in status and "Carol (not linked" in status and "warroom.example.com/incidents/i1" in status
    assert {c.userid for c in fake.cards.values()} == {ann, bob}
    first = fake.latest_card(ann)
    assert first.task_id == naming.task_id(chat, 1, ann) and len(first.card["button_list"]) == 3
    assert first.card["button_list"][1]["key"] == cards.button_key(Action.SNOOZE, 1, 60)
    fake.fail("card.update", "timeout_after")  # the update arrived, its answer did not: retried
    handle = CardHandle(f"wecom:{chat}")
    await retried(lambda: a.update_card(chat, handle, status_card(2, IncidentStatus.ACKNOWLEDGED)))
    assert fake.texts(chat)[-1].count("acknowledged") == 1 and len(fake.texts(chat)) == 2
    assert first.card["main_title"]["title"].startswith("🟠 acknowledged") and first.updates == 1
    # the send's code is spent: without a click the next version is a new card…
    await a.update_card(chat, handle, status_card(3, IncidentStatus.ACKNOWLEDGED, last_action="Ann acknowledged"))
    assert len(fake.cards_of(ann)) == 2 and fake.latest_card(ann).task_id == naming.task_id(chat, 3, ann)
    # …while a click hands a fresh code, kept for that card's next update
    query, body, code = fake.click(ann, fake.latest_card(ann).task_id, cards.button_key(Action.CLOSE, 3, None))
    result = a.handle_callback(CallbackRequest(method="POST", path="/im/wecom/callback", headers={}, query=query,
                                               body=body))  # fmt: skip
    (event,) = result.events
    assert isinstance(event, ActionClicked) and event.action is Action.CLOSE and event.card_version == 3
    assert event.chat_id == chat and event.im_user_id == ann
    await asyncio.gather(*(a.update_card(chat, handle, status_card(v, IncidentStatus.CLOSED)) for v in (4, 5, 6)))
    await a.update_card(chat, handle, status_card(4))  # an older version never wins
    assert code in fake.used_codes and len(fake.cards_of(ann)) == 2
    replayed = a.handle_callback(CallbackRequest(method="POST", path="/im/wecom/callback", headers={}, query=query,
                                                 body=body))  # fmt: skip
    assert replayed.events and a.state.cards(chat)[ann].response_code == ""  # the spent code stays spent
    assert "closed" in fake.latest_card(ann).card["main_title"]["title"]
    assert all(m[1] == "template_card" for m in fake.app_messages)
    assert len([t for t in fake.texts(chat) if "closed" in t]) <= 2  # coalesced: not one per version


async def test_per_person_budget_defers_cards_instead_of_losing_them(fake: FakeWeCom, monkeypatch):
    ann, bob = fake.add_user("Ann"), fake.add_user("Bob")
    a = make_adapter(fake)
    chat = (await a.create_room(spec())).chat_id
    await a.add_members(chat, [ann, bob])
    monkeypatch.setattr(adapter_module, "PER_PERSON_PER_MINUTE", 1)
    await a.post_card(chat, status_card(1), "k")
    with pytest.raises(RateLimited) as info:
        await a.update_card(chat, CardHandle("h"), status_card(2))
    assert info.value.retry_after > 0 and "a minute" in str(info.value)


def test_posted_text_never_pings_or_hides_a_link():
    hostile = '@all [login](https://evil.example) <font color="warning">x</font> <@u123>'
    out = text.with_mentions(hostile, ["u1", "bad id"])
    assert out.startswith("<@u1> ") and "<@bad" not in out
    assert "@all" not in out and "<@u123>" not in out and "](" not in out and "<font" not in out
    assert out.replace(text.WORD_JOINER, "").replace(text.ZWSP, "") == "<@u1> " + hostile
    card = status_card(1).model_copy(update={"title": hostile})
    md = cards.status_markdown(card)
    assert "@all" not in md and "](https://evil" not in md and "<@u123>" not in md


async def test_dismissal_posts_closing_renames_and_silences_the_room(fake: FakeWeCom):
    ann, bob = fake.add_user("Ann"), fake.add_user("Bob")
    a = make_adapter(fake)
    ref = await a.create_room(spec(title="x" * 60))
    await a.add_members(ref.chat_id, [ann, bob])
    await a.post_message(ref.chat_id, CLOSING_TEXT, f"closing:{ref.chat_id}")
    await a.post_message(ref.chat_id, CLOSING_TEXT, f"closing:{ref.chat_id}")  # retried: posted once
    await a.rename_room(ref.chat_id, closed_name(ref.name))
    chat = fake.chats[ref.chat_id]
    assert chat.name.startswith("[closed] inc-i1") and len(chat.name) <= 50
    assert fake.texts(ref.chat_id) == [CLOSING_TEXT]
    await a.post_message(ref.chat_id, "late", "late-1")
    await a.update_card(ref.chat_id, CardHandle("h"), status_card(9))
    assert fake.texts(ref.chat_id) == [CLOSING_TEXT] and fake.cards == {}  # nothing after closing
    assert set(chat.members) == {ann, bob}  # WECOM_REMOVE_MEMBERS_ON_CLOSE off: the members stay


async def test_dismissal_can_remove_everyone_but_the_owner(fake: FakeWeCom):
    people = [fake.add_user(f"p{i}") for i in range(150)]
    a = make_adapter(fake, WECOM_REMOVE_MEMBERS_ON_CLOSE="true")
    ref = await a.create_room(spec("i9"))
    await a.add_members(ref.chat_id, people)
    chat = fake.chats[ref.chat_id]
    fake.fail("appchat.update", "pass", "pass", "500")  # renamed, the first 100 removed, then a failure
    with pytest.raises(TransientImError):
        await a.rename_room(ref.chat_id, closed_name(ref.name))
    await a.rename_room(ref.chat_id, closed_name(ref.name))  # retried: the rest leave
    assert chat.members == [chat.owner] and chat.name.startswith("[closed] ")
    assert all(len(c.body.get("del_user_list", [])) <= 100 for c in fake.ops("appchat.update"))


# ---------------------------------------------------------------------------- the real stack


def wecom_settings(settings: Settings, fake: FakeWeCom, **extra: Any) -> Settings:
    return settings.model_copy(update={**fake.settings(**extra), "public_url": "https://warroom.example.com"})


@pytest_asyncio.fixture
async def stack(
    client: Client, store: Store, settings: Settings, fake: FakeWeCom
) -> AsyncIterator[tuple[httpx.AsyncClient, FakeWeCom]]:
    s = wecom_settings(settings, fake)
    worker, im = build_worker(client, store, s)
    app = create_app(s, client=client, store=store)
    async with worker, serving(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        yield http, fake
    await im.aclose()


async def view_when(http: httpx.AsyncClient, incident_id: str, pred: Callable[[dict[str, Any]], bool],
                    timeout: float = 30) -> dict[str, Any]:  # fmt: skip
    async def check() -> dict[str, Any] | None:
        r = await http.get(f"/api/v1/incidents/{incident_id}")
        assert r.status_code == 200, r.text
        return r.json() if pred(r.json()) else None

    return await eventually(check, timeout=timeout)


def kinds(view: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in view["timeline"]]


def version_of(message: Any) -> int:
    return int(message.card["button_list"][0]["key"].split(":")[2])


def key_of(message: Any, action: Action) -> str:
    return next(b["key"] for b in message.card["button_list"] if b["key"].startswith(f"wr:{action.value}:"))


async def callback(http: httpx.AsyncClient, query: dict[str, str], body: bytes) -> httpx.Response:
    return await http.post("/im/wecom/callback", params=query, content=body, headers={"content-type": "text/xml"})


async def test_lifecycle_through_the_real_stack(stack):
    http, fake = stack
    ann = fake.add_user("Ann", biz_mail=ANN)
    bob = fake.add_user("Bob", mobile="13800000002")
    eve = fake.add_user("Eve", email="eve@example.com")
    fake.fail("appchat.update", "45009", "500")
    fake.fail("card.update", "500")

    incident_id = f"wc-{uuid.uuid4().hex[:8]}"
    responders = [{"email": ANN}, {"name": "Bob", "phone": BOB}, {"email": CAROL}]
    body = {"id": incident_id, "title": "Payments are failing", "severity": "high", "responders": responders}
    r = await http.post("/api/v1/incidents", json=body)
    assert r.status_code == 201, r.text
    started = time.monotonic()
    r = await http.post(f"/api/v1/incidents/{incident_id}/war-room", json={"platform": "wecom"})
    room_ready = time.monotonic() - started
    assert r.status_code in (200, 201), r.text
    chat_id = r.json()["chat_id"]
    assert r.json()["platform"] == "wecom" and not r.json()["join_url"]

    view = await view_when(http, incident_id, lambda v: kinds(v).count("member.invited") == 2)
    chat = fake.chats[chat_id]
    assert set(chat.members) == {ann, bob} and chat.owner in (ann, bob) and chat.name.startswith(f"inc-{incident_id}")
    members = {m["email"] or m["name"]: m for m in view["war_room"]["members"]}
    assert members[CAROL]["state"] == "unlinked" and members[ANN]["im_user_id"] == ann
    await eventually(lambda: fake.cards_of(ann) and fake.cards_of(bob))
    await eventually(lambda: any("carol (not linked" in t for t in fake.texts(chat_id)), timeout=30)

    # WeCom's URL check: the decrypted echostr, as plain text; a forged one is refused.
    r = await http.get("/im/wecom/callback", params=fake.url_check("echo-42"))
    assert r.status_code == 200 and r.text == "echo-42" and r.headers["content-type"].startswith("text/plain")
    forged = {**fake.url_check("x"), "msg_signature": "0" * 40}
    assert (await http.get("/im/wecom/callback", params=forged)).status_code == 401

    # Eve is no responder: her (authentic) click is refused, told to her alone, and nothing changes.
    card = await eventually(lambda: fake.latest_card(ann) if version_of(fake.latest_card(ann)) >= 1 else None)
    query, body_, _ = fake.click(eve, card.task_id, key_of(card, Action.ACKNOWLEDGE))
    assert (await callback(http, query, body_)).status_code == 200
    await eventually(lambda: (eve, "text") in fake.app_messages, timeout=30)
    # A click on an outdated version is refused too.
    query, body_, _ = fake.click(ann, card.task_id, "wr:close:0:")
    assert (await callback(http, query, body_)).status_code == 200
    await eventually(lambda: fake.app_messages.count((ann, "text")) == 1, timeout=30)

    # Forged, stale, wrong-corp and malformed requests: 4xx, nothing changes.
    query, body_, _ = fake.click(ann, card.task_id, key_of(card, Action.CLOSE))
    assert (await callback(http, {**query, "msg_signature": "f" * 40}, body_)).status_code == 401
    old = str(int(time.time()) - 3600)
    assert (await callback(http, *fake.click(ann, card.task_id, key_of(card, Action.CLOSE), timestamp=old)[:2])
            ).status_code == 401  # fmt: skip
    assert (await callback(http, *fake.click(ann, card.task_id, key_of(card, Action.CLOSE),
                                             corp_id="wwsomeoneelse")[:2])).status_code == 403  # fmt: skip
    assert (await callback(http, query, b"<xml><Encrypt>%%%</Encrypt></xml>")).status_code in (400, 401)
    assert (await callback(http, query, b"not xml")).status_code == 400

    # Ann acknowledges: the incident changes, the group is told, both cards are updated.
    current = version_of(fake.latest_card(ann))
    card = fake.latest_card(ann)
    query, body_, code = fake.click(ann, card.task_id, key_of(card, Action.ACKNOWLEDGE))
    texts_before = len(fake.texts(chat_id))
    clicked = time.monotonic()
    assert (await callback(http, query, body_)).status_code == 200
    assert (await callback(http, query, body_)).status_code == 200  # WeCom redelivers: answered, taken once
    await eventually(lambda: any("acknowledged" in t for t in fake.texts(chat_id)[texts_before:]), timeout=30,
                     interval=0.01)  # fmt: skip
    click_to_group = time.monotonic() - clicked
    view = await view_when(http, incident_id, lambda v: "action.acknowledge" in kinds(v))
    assert view["incident"]["status"] == "acknowledged" and kinds(view).count("action.acknowledge") == 1
    assert next(e for e in view["timeline"] if e["kind"] == "action.acknowledge")["actor"] == ANN
    await eventually(lambda: "acknowledged" in fake.latest_card(ann).card["main_title"]["title"], timeout=30)
    await eventually(lambda: "acknowledged" in fake.latest_card(bob).card["main_title"]["title"], timeout=30)
    assert code in fake.used_codes and version_of(fake.latest_card(ann)) > current  # the click's code updated it

    # Ann asks the app 1:1 (a self-built app hears no group messages): answered to her, on the timeline.
    before = [t for u, t in fake.app_texts if u == ann]
    r = await callback(http, *fake.text_message(ann, "what changed?"))
    assert r.status_code == 200 and r.text == ""
    answer = await eventually(lambda: [t for u, t in fake.app_texts if u == ann][len(before) :], timeout=30)
    assert answer and not any(answer[0] in t for t in fake.texts(chat_id))  # not in the group
    await view_when(http, incident_id, lambda v: "ai.answer" in kinds(v))
    r = await callback(http, *fake.text_message(eve, "status?"))  # in no war room: told so at once
    envelope = {
        k: re.search(rf"<{k}>(?:<!\[CDATA\[)?([^<\]]+)", r.text) for k in ("MsgSignature", "TimeStamp", "Nonce")
    }
    sig, ts, nonce = (m.group(1) for m in envelope.values() if m)
    plain = WeChatCrypto(fake.token, fake.aes_key, fake.corp_id).decrypt_message(r.text, sig, ts, nonce)
    assert "no open war room" in plain and f"<ToUserName><![CDATA[{eve}]]>" in plain

    r = await http.post(f"/api/v1/incidents/{incident_id}/actions", json={"action": "close", "actor": ANN})
    assert r.status_code in (200, 202), r.text
    r = await http.delete(f"/api/v1/incidents/{incident_id}/war-room")
    assert r.status_code in (200, 202), r.text
    await eventually(lambda: chat.name.startswith("[closed] "), timeout=30)
    view = await view_when(http, incident_id, lambda v: v["war_room"]["state"] == "dismissed")
    assert "room.dismissed" in kinds(view) and fake.texts(chat_id)[-1] == CLOSING_TEXT
    assert len(chat.name) <= 50 and set(chat.members) == {ann, bob}
    print(f"\nWeCom on the fake: room ready {room_ready * 1000:.0f} ms, click → group message "
          f"{click_to_group * 1000:.0f} ms")  # fmt: skip


async def test_five_concurrent_creates_under_faults_make_one_group_and_each_card_once(stack):
    http, fake = stack
    ann = fake.add_user("Ann", biz_mail=ANN)
    bob = fake.add_user("Bob", mobile="13800000002")
    incident_id = f"wc-{uuid.uuid4().hex[:8]}"
    r = await http.post("/api/v1/incidents", json={"id": incident_id, "title": "Search is slow",
                        "responders": [{"email": ANN}, {"phone": BOB}]})  # fmt: skip
    assert r.status_code == 201, r.text
    fake.fail("appchat.create", "timeout_after", "45009", "500")
    fake.fail("message.send", "timeout_after", "500", "45033")
    fake.fail("appchat.send", "500")
    answers = await asyncio.gather(
        *(http.post(f"/api/v1/incidents/{incident_id}/war-room", json={"platform": "wecom"}) for _ in range(5))
    )
    assert all(a.status_code in (200, 201, 202) for a in answers), [a.text for a in answers]
    view = await view_when(http, incident_id, lambda v: v["war_room"]["state"] == "active" and
                           kinds(v).count("member.invited") == 2, timeout=60)  # fmt: skip
    chat_id = view["war_room"]["chat_id"]
    assert list(fake.chats) == [chat_id] and set(fake.chats[chat_id].members) == {ann, bob}
    await eventually(lambda: fake.cards_of(ann) and fake.cards_of(bob), timeout=30)
    await asyncio.sleep(1.0)
    assert len(fake.cards_of(ann)) == 1 and len(fake.cards_of(bob)) == 1 and kinds(view).count("room.created") == 1
    assert len([t for t in fake.texts(chat_id) if "triggered" in t]) == 1


# ---------------------------------------------------------------------------- inbound


def request(method: str, query: dict[str, str], body: bytes = b"") -> CallbackRequest:
    return CallbackRequest(method=method, path="/im/wecom/callback", headers={}, query=query, body=body)


def test_the_callback_sender_encrypts_like_wechatpy_both_ways(fake: FakeWeCom):
    from wechatpy.enterprise.crypto import WeChatCrypto

    theirs = WeChatCrypto(fake.token, fake.aes_key, fake.corp_id)
    q = fake.url_check("echo-1")  # ours, opened by wechatpy
    assert theirs.check_signature(q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"]) == "echo-1"
    query, body, _ = fake.click("ann", "wr" + "0" * 30 + "_v1_x", "wr:acknowledge:1:")
    plain = theirs.decrypt_message(body.decode(), query["msg_signature"], query["timestamp"], query["nonce"])
    assert "<Event><![CDATA[template_card_event]]></Event>" in plain
    cb = Callbacks(WeComSettings(_env_file=None, **fake.settings()), State())  # type: ignore[call-arg]
    inner = (
        f"<xml><ToUserName>{fake.corp_id}</ToUserName><MsgType>event</MsgType><Event>template_card_event</Event>"
        f"<FromUserName>ann</FromUserName><CreateTime>1</CreateTime><TaskId>wr{'0' * 30}_v2_x</TaskId>"
        "<EventKey>wr:close:2:</EventKey></xml>"
    )
    ts = str(int(time.time()))
    envelope = theirs.encrypt_message(inner, "nonce1", ts)  # wechatpy's, opened by ours
    sig = re.search(r"<MsgSignature><!\[CDATA\[(\w+)\]\]>", envelope).group(1)  # type: ignore[union-attr]
    (event,) = cb.handle(request("POST", {"msg_signature": sig, "timestamp": ts, "nonce": "nonce1"},
                                 envelope.encode())).events  # fmt: skip
    assert isinstance(event, ActionClicked) and event.action is Action.CLOSE and event.card_version == 2


def test_callbacks_are_verified_before_anything_else(fake: FakeWeCom):
    cb = Callbacks(WeComSettings(_env_file=None, **fake.settings()), State())  # type: ignore[call-arg]

    def refused(req: CallbackRequest) -> CallbackRejected:
        with pytest.raises(CallbackRejected) as info:
            cb.handle(req)
        return info.value

    assert cb.handle(request("GET", fake.url_check("hello"))).reply.body == b"hello"
    assert refused(request("GET", {**fake.url_check(), "msg_signature": "0" * 40})).status == 401
    assert refused(request("GET", fake.url_check(timestamp=str(int(time.time()) - 7200)))).code == "stale"
    assert refused(request("GET", {})).code == "unsigned"
    task = "wr" + "1" * 30 + "_v3_abcd"
    query, body, _ = fake.click("ann", task, "wr:snooze:3:120")
    first = cb.handle(request("POST", query, body))
    (event,) = first.events
    assert event.minutes == 120 and event.card_version == 3 and event.chat_id == "wr" + "1" * 30
    again = cb.handle(request("POST", query, body))  # the same request: the same replay key, the same event id
    assert again.replay_key == first.replay_key and again.events[0].event_id == event.event_id
    assert refused(request("POST", {**query, "msg_signature": "f" * 40}, body)).status == 401
    wrong_corp = fake.click("ann", task, "wr:close:3:", corp_id="wwother")
    assert refused(request("POST", wrong_corp[0], wrong_corp[1])).status == 403
    assert refused(request("POST", query, b"<!DOCTYPE x [<!ENTITY a 'b'>]><xml/>")).status == 400
    assert refused(request("POST", query, b"not xml")).status == 400
    assert refused(request("PUT", query, body)).status == 405
    q2, b2, _ = fake.click("ann", "not-ours", "wr:close:3:")
    assert refused(request("POST", q2, b2)).status == 400  # a TaskId War Room never made
    q3, b3, _ = fake.click("ann", task, "someone-elses-button")
    assert cb.handle(request("POST", q3, b3)).events == []  # not a War Room button: answered, ignored
    q4, b4 = fake.text_message("ann", "what changed?")
    assert cb.handle(request("POST", q4, b4)).events == []  # ann is in no war room: a passive reply says so
    for iid, chat in (("inc-a", "wr" + "a" * 30), ("inc-b", "wr" + "b" * 30)):
        cb.state.add_room(chat, iid, iid)
        room = cb.state.room(chat)
        assert room is not None
        cb.state.save_room(room, created=True, members=["ann", "bob"])
    (asked,) = cb.handle(request("POST", *fake.text_message("bob", "inc-b: is it mitigated?"))).events
    assert isinstance(asked, MessageReceived) and asked.chat_id == "wr" + "b" * 30 and asked.mentions_bot
    assert asked.message_id.startswith("dm:bob:")
    which = cb.handle(request("POST", *fake.text_message("bob", "is it mitigated?")))
    assert which.events == [] and b"<Encrypt>" in which.reply.body  # asks which of the two
    other = WeComSettings(_env_file=None, **fake.settings(WECOM_AGENT_ID="999"))  # type: ignore[call-arg]
    with pytest.raises(CallbackRejected) as info:
        Callbacks(other, State()).handle(request("POST", query, body))
    assert info.value.code == "wrong_agent"
    assert refused(CallbackRequest(method="POST", path="/", headers={})).code == "unsigned"
    bare = WeComSettings(_env_file=None, WECOM_CORP_ID="x")  # type: ignore[call-arg]
    with pytest.raises(CallbackRejected) as info:
        Callbacks(bare, State()).handle(request("POST", query, body))
    assert info.value.status == 503


# ---------------------------------------------------------------------------- setup and figures


async def test_doctor_checks_token_agent_visible_range_apis_and_callback(fake: FakeWeCom):
    a = make_adapter(fake)
    checks = {c.name: c for c in await a.setup_checks()}
    assert all(c.ok for c in checks.values()), [c for c in checks.values() if not c.ok]
    assert {"access token", "agent", "visible range", "api appchat (groups)", "callback keys", "callback URL"} <= set(
        checks
    )
    assert "/im/wecom/callback" in checks["callback URL"].detail
    fake.visible_root = False  # the app sees one department only: no groups (60011)
    checks = {c.name: c for c in await a.setup_checks()}
    assert not checks["visible range"].ok and "root department" in checks["visible range"].fix
    fake.fail("appchat.get", "60011")
    checks = {c.name: c for c in await a.setup_checks()}
    assert not checks["api appchat (groups)"].ok and "可见范围" in checks["api appchat (groups)"].fix
    wrong = make_adapter(fake, WECOM_SECRET="wrong", WECOM_ENCODING_AES_KEY="short")
    checks = {c.name: c for c in await wrong.setup_checks()}
    assert not checks["access token"].ok and "WECOM_SECRET" in checks["access token"].fix
    assert not checks["callback keys"].ok and "EncodingAESKey" in checks["callback keys"].fix


async def test_two_duty_accounts_make_the_group_at_once_and_hand_it_to_a_responder(fake: FakeWeCom):
    d1, d2, ann = fake.add_user("Duty One"), fake.add_user("Duty Two"), fake.add_user("Ann")
    a = make_adapter(fake, WECOM_DUTY_USER_IDS=f"{d1}, {d2}")
    ref = await a.create_room(spec("i5"))
    chat = fake.chats[ref.chat_id]
    assert set(chat.members) == {d1, d2} and chat.owner == d1  # the room exists as soon as it is opened
    await a.post_message(ref.chat_id, "hello", "k1")
    assert fake.texts(ref.chat_id) == ["hello"]
    (r,) = await a.add_members(ref.chat_id, [ann])
    assert r.ok and chat.owner == ann and set(chat.members) == {d1, d2, ann}


async def test_room_ready_and_click_to_group_message_on_the_fake_without_faults(stack):
    """Figures for the report (not timed assertions): room ready and click → group message, next to
    the fake's own floor (one call's round trip through wechatpy: room ready needs at least four in a
    row (appchat/get, lookups, appchat/create, then status ∥ cards); click → group message one)."""
    http, fake = stack
    ann = fake.add_user("Ann", biz_mail=ANN)
    bob = fake.add_user("Bob", biz_mail="bob@example.com")
    probe = make_api(fake)
    calls = []
    for _ in range(5):
        started = time.monotonic()
        await probe.get_chat("wrnosuchchat")
        calls.append(time.monotonic() - started)
    ready, click = [], []
    for _ in range(5):
        incident_id = f"wc-{uuid.uuid4().hex[:8]}"
        r = await http.post("/api/v1/incidents", json={"id": incident_id, "title": "Disk full",
                            "responders": [{"email": ANN}, {"email": "bob@example.com"}]})  # fmt: skip
        assert r.status_code == 201, r.text
        started = time.monotonic()
        r = await http.post(f"/api/v1/incidents/{incident_id}/war-room", json={"platform": "wecom"})
        chat_id = r.json()["chat_id"]
        await eventually(lambda c=chat_id: c in fake.chats and fake.texts(c), interval=0.005)
        ready.append(time.monotonic() - started)
        await view_when(http, incident_id, lambda v: "card.posted" in kinds(v) and "member.invited" in kinds(v))
        card = await eventually(lambda c=chat_id: next((m for m in fake.cards_of(ann) if m.task_id.startswith(c)),
                                                       None))  # fmt: skip
        before = len(fake.texts(chat_id))
        query, body, _ = fake.click(ann, card.task_id, key_of(card, Action.ACKNOWLEDGE))
        started = time.monotonic()
        assert (await callback(http, query, body)).status_code == 200
        await eventually(lambda c=chat_id, n=before: len(fake.texts(c)) > n, interval=0.005)
        click.append(time.monotonic() - started)
    assert bob and len(fake.chats) == 5
    p50 = lambda xs: sorted(xs)[len(xs) // 2] * 1000  # noqa: E731
    print(f"\nWeCom fake, p50 of 5: one call {p50(calls):.1f} ms; room ready (group made, status posted) "
          f"{p50(ready):.0f} ms; click → group message {p50(click):.0f} ms")  # fmt: skip


async def test_a_lone_responder_acts_from_their_card_until_a_second_one_makes_the_group(stack):
    """No duty account: a room with one linked person has no group yet, says so, and that person's
    buttons work; the second linked responder makes the group (both in it, both invited, both with
    a card), member changes follow, and once dismissed nothing reaches the group any more."""
    http, fake = stack
    ann = fake.add_user("Ann", biz_mail=ANN)
    bob = fake.add_user("Bob", mobile="13800000002")
    incident_id = f"wc-{uuid.uuid4().hex[:8]}"
    r = await http.post("/api/v1/incidents", json={"id": incident_id, "title": "Queue backlog",
                        "responders": [{"email": ANN}]})  # fmt: skip
    assert r.status_code == 201, r.text
    r = await http.post(f"/api/v1/incidents/{incident_id}/war-room", json={"platform": "wecom"})
    assert r.status_code in (200, 201), r.text
    chat_id = r.json()["chat_id"]
    view = await view_when(http, incident_id, lambda v: "member.invited" in kinds(v))
    invited = next(e for e in view["timeline"] if e["kind"] == "member.invited")
    assert "waiting for a second member" in invited["detail"] and invited["outcome"] == "ok"
    assert chat_id not in fake.chats and fake.group_messages == []  # no group of one
    card = await eventually(lambda: fake.cards_of(ann) and fake.latest_card(ann), timeout=30)
    query, body, _ = fake.click(ann, card.task_id, key_of(card, Action.ACKNOWLEDGE))
    assert (await callback(http, query, body)).status_code == 200
    again = fake.redeliver(body)  # WeCom's retry: sealed anew (other nonce, signature, ciphertext)
    assert again[0]["msg_signature"] != query["msg_signature"]
    assert (await callback(http, *again)).status_code == 200
    view = await view_when(http, incident_id, lambda v: v["incident"]["status"] == "acknowledged")
    await asyncio.sleep(0.5)
    view = await view_when(http, incident_id, lambda v: True)
    assert kinds(view).count("action.acknowledge") == 1 and "action.refused" not in kinds(view)
    await eventually(lambda: "acknowledged" in fake.latest_card(ann).card["main_title"]["title"], timeout=30)

    # Bob is linked: the group is made with both, the status posted there, Bob gets his card.
    r = await http.put(f"/api/v1/incidents/{incident_id}/responders",
                       json={"responders": [{"email": ANN}, {"name": "Bob", "phone": BOB}]})  # fmt: skip
    assert r.status_code == 200, r.text
    await eventually(lambda: chat_id in fake.chats and set(fake.chats[chat_id].members) == {ann, bob}, timeout=30)
    assert fake.chats[chat_id].owner == ann
    await eventually(lambda: any("acknowledged" in t for t in fake.texts(chat_id)), timeout=30)
    await eventually(lambda: fake.cards_of(bob), timeout=30)
    view = await view_when(http, incident_id, lambda v: kinds(v).count("member.invited") == 2)
    assert {m["state"] for m in view["war_room"]["members"]} == {"invited"}
    # Ann's click code updated her card once; with no code left the next version is a new card, never
    # two of one version
    sent = [m.task_id.split("_")[1] for m in fake.cards_of(ann)]
    assert len(sent) == len(set(sent)) and fake.latest_card(ann).updates <= 1

    # Bob leaves the incident: marked, kept in the group (the deployment's membership policy,
    # WarRoomConfig.remove_members, is off; the adapter's removal is tested above).
    r = await http.put(f"/api/v1/incidents/{incident_id}/responders", json={"responders": [{"email": ANN}]})
    assert r.status_code == 200, r.text
    await view_when(http, incident_id, lambda v: "member.removed" in kinds(v))
    assert set(fake.chats[chat_id].members) == {ann, bob}

    # Closed and dismissed: the closing message, the rename, then silence.
    r = await http.post(f"/api/v1/incidents/{incident_id}/actions", json={"action": "close", "actor": ANN})
    assert r.status_code in (200, 202), r.text
    r = await http.delete(f"/api/v1/incidents/{incident_id}/war-room")
    assert r.status_code in (200, 202), r.text
    await view_when(http, incident_id, lambda v: v["war_room"]["state"] == "dismissed")
    assert fake.texts(chat_id)[-1] == CLOSING_TEXT and fake.chats[chat_id].name.startswith("[closed] ")
    texts, cards_sent = len(fake.texts(chat_id)), len(fake.cards)
    r = await http.put(f"/api/v1/incidents/{incident_id}/responders",
                       json={"responders": [{"email": ANN}, {"name": "Bob", "phone": BOB}]})  # fmt: skip
    assert r.status_code == 200, r.text
    late = await callback(http, *fake.click(ann, fake.latest_card(ann).task_id, "wr:reopen:99:")[:2])
    assert late.status_code == 200
    await asyncio.sleep(2.0)
    assert len(fake.texts(chat_id)) == texts and len(fake.cards) == cards_sent


async def test_wecom_calls_run_on_the_china_region_queue_and_no_token_reaches_history(
    client: Client, store: Store, settings: Settings, fake: FakeWeCom
):
    """WARROOM_PLATFORM_REGIONS=wecom=cn: every WeCom activity is queued on `<queue>-cn` and run by
    the cn worker, the rest by the global one; the app's access tokens stay in the processes."""
    from starters.service import WarRoomService

    from .test_regions import CN, GLOBAL, _life, ran, running

    fake.add_user("Ann", biz_mail="ann@example.com")
    bound = wecom_settings(settings, fake).model_copy(update={"platform_regions": "wecom=cn"})
    assert WarRoomService(client, store, bound).config().im_task_queues == {"wecom": f"{bound.task_queue}-cn"}
    regional = bound.model_copy(update={"region": "cn"})
    async with running(client, store, bound, GLOBAL), running(client, store, regional, CN):
        workflow_id = await _life(WarRoomService(client, store, bound), "wecom")
    runs = await ran(client, workflow_id)
    im = [r for r in runs if r.kind.startswith("im_")]
    assert {"im_open_room", "im_update_card", "im_dismiss_room"} <= {r.kind for r in im}
    assert {(r.task_queue, r.identity) for r in im} == {(f"{bound.task_queue}-cn", CN)}
    assert fake.ops("message.send") and fake.tokens  # Ann's card went out, with a token
    history = (await client.get_workflow_handle(workflow_id).fetch_history()).to_json()
    assert not [t for t in fake.tokens if t in history] and fake.secret not in history


async def test_bulk_linking_through_the_cli(stack):
    """`warroom users link --platform wecom`: everyone known from incidents, by corp mail, personal
    mail or phone; the ones WeCom does not know are listed as not linked, with why."""
    from .test_cli import Cli

    http, fake = stack
    ann = fake.add_user("Ann", biz_mail=ANN)
    dora = fake.add_user("Dora", email="dora@gmail.example")
    bob = fake.add_user("Bob", mobile="13800000002")
    responders = [{"email": ANN}, {"email": "dora@gmail.example"}, {"name": "Bob", "phone": BOB}, {"email": CAROL}]
    r = await http.post("/api/v1/incidents", json={"title": "Link them", "responders": responders})
    assert r.status_code == 201, r.text
    cli = Cli(str(http.base_url).rstrip("/"))
    linked = await cli.json("users", "link", "--platform", "wecom")
    assert linked["platform"] == "wecom"
    assert {m["im_user_id"] for m in linked["linked"]} == {ann, dora, bob}
    (carol,) = linked["unlinked"]
    assert carol["responder_id"] == CAROL and carol["im_user_id"] is None and carol["detail"]
    users = await cli.json("users", "list", "--platform", "wecom")
    assert {u["email"] for u in users["items"] if u.get("im_user_id")} >= {ANN, "dora@gmail.example"}
