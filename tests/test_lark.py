"""Feishu/Lark: the adapter through the real lark-oapi client against a protocol-faithful fake
Open Platform (`tests/fakes/lark_api.py`), callback verification, and the whole stack (Temporal
dev server, worker, HTTP API) with the fake standing in for Lark.

Assertions are made at the fake platform's own records (chats, members, messages, pins), not
only through War Room's view of itself. Every eventual state is polled for (`eventually`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.client import Client

from activities.im import ImActivities
from starters.api.app import create_app
from tests.fakes import lark_api
from tests.fakes.lark_api import FakeLark
from warroom.errors import CallbackRejected, PermanentImError, RateLimited, TransientImError
from warroom.im.base import (
    ActionClicked,
    CallbackRequest,
    CardButton,
    CardMember,
    Mention,
    MessageReceived,
    RoomGone,
    RoomSpec,
    StatusCard,
)
from warroom.im.lark.adapter import LarkAdapter, chat_description, chat_name, lark_uuid
from warroom.im.lark.api import LarkApi
from warroom.im.registry import build_adapter
from warroom.models import Action, IncidentStatus, MemberState, Severity
from warroom.settings import Settings
from warroom.store import Store
from workers.main import build_worker

from .conftest import eventually

KEY = "test-encrypt-key"
TOKEN = "test-verification-token"
ANN, BOB, CAROL, EVE = "ann@example.com", "+8613800000001", "carol@example.com", "eve@example.com"
T = TypeVar("T")


# ---------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def fake() -> Iterator[FakeLark]:
    with FakeLark(late_seconds=1.5) as f:
        yield f


def make_adapter(fake: FakeLark, **kw: Any) -> LarkAdapter:
    api = LarkApi(app_id=fake.app_id, app_secret=fake.app_secret, domain=fake.domain, timeout=1.0)
    return LarkAdapter(api, encrypt_key=KEY, verification_token=TOKEN, **kw)


@pytest_asyncio.fixture
async def adapter(fake: FakeLark) -> AsyncIterator[LarkAdapter]:
    a = make_adapter(fake)
    yield a
    await a.aclose()


async def retried(call: Callable[[], Awaitable[T]], attempts: int = 8) -> T:
    """What Temporal does with an activity: retry transient failures, after the platform's delay."""
    for _ in range(attempts - 1):
        try:
            return await call()
        except RateLimited as e:
            await asyncio.sleep(min(e.retry_after, 1.5))
        except TransientImError:
            await asyncio.sleep(0.05)
    return await call()


def spec(incident_id: str = "i1", title: str = "Checkout is down", generation: int = 1) -> RoomSpec:
    url = f"https://warroom.example.com/api/v1/incidents/{incident_id}"
    return RoomSpec(
        incident_id=incident_id,
        idempotency_key=f"incident-{incident_id}:room:{generation}",
        name=f"inc-{incident_id} {title}"[:80],
        topic=f"[high] {title} — {url}",
        url=url,
    )


def card(version: int, status: IncidentStatus = IncidentStatus.TRIGGERED, **kw: Any) -> StatusCard:
    kw.setdefault(
        "members",
        [CardMember(name="Ann", state=MemberState.INVITED), CardMember(name="Carol", state=MemberState.UNLINKED)],
    )
    return StatusCard(
        incident_id="i1",
        title="Checkout is down",
        severity=Severity.HIGH,
        status=status,
        version=version,
        url="https://warroom.example.com/api/v1/incidents/i1",
        buttons=[
            CardButton(action=Action.ACKNOWLEDGE, label="Acknowledge"),
            CardButton(action=Action.SNOOZE, label="Snooze 2h", minutes=120),
            CardButton(action=Action.CLOSE, label="Close"),
        ],
        **kw,
    )


def request(headers: dict[str, str], body: bytes) -> CallbackRequest:
    return CallbackRequest(
        method="POST", path="/im/lark/events", headers={k.lower(): v for k, v in headers.items()}, body=body
    )


def status_of(content: str) -> str:
    return json.loads(content)["header"]["text_tag_list"][0]["text"]["content"].lower()


# ---------------------------------------------------------------------------- outbound


async def test_create_room_makes_one_chat_under_retries_and_concurrency(fake: FakeLark, adapter: LarkAdapter):
    fake.creating_seconds = 0.3  # Lark's "the group is being created" window for a repeated uuid
    fake.fail("chat.create", "timeout_after", "drop_after", "503", "502")
    first = await retried(lambda: adapter.create_room(spec()))
    again = await asyncio.gather(*(retried(lambda: adapter.create_room(spec())) for _ in range(6)))
    assert {r.chat_id for r in again} == {first.chat_id}
    assert [c.chat_id for c in fake.live_chats()] == [first.chat_id]
    creates = fake.ops("chat.create")
    assert len(creates) >= 5 and {c.query["uuid"] for c in creates} == {lark_uuid(spec().idempotency_key)}
    assert all(len(c.query["uuid"]) <= 50 for c in creates)

    chat = fake.chats[first.chat_id]
    assert "Checkout is down" in chat.name and chat.name.startswith("inc-i1")
    assert chat.description.endswith(spec().url) and len(chat.description) <= 100
    assert chat.bot_manager and chat.owner_id == fake.bot_open_id
    link = await adapter.join_url(first.chat_id)  # asked for beside the invites and the card
    assert link and chat.link_token and chat.link_token in link

    other = await adapter.create_room(spec(generation=2))  # a new generation is a new room
    assert other.chat_id != first.chat_id


def test_card_json_escapes_text_and_fits_lark_size_limit():
    from warroom.im.lark.card import content

    many = [CardMember(name=f"*person {i}* " + "x" * 900, state=MemberState.INVITED) for i in range(200)]
    text = content(card(3, members=[CardMember(name="a_b <c>", state=MemberState.UNLINKED), *many]))
    assert len(text.encode()) <= 28 * 1024
    body = json.loads(text)
    members_md = body["body"]["elements"][1]["content"]
    assert "a&#95;b &#60;c&#62; (not linked" in members_md and "more" in members_md
    assert body["config"]["update_multi"] is True and body["schema"] == "2.0"


def test_names_and_descriptions_fit_lark_limits():
    long = spec(title="x" * 300)
    assert len(chat_name(long)) <= 60 and chat_name(long).startswith("inc-i1 x")
    assert len(chat_description(long)) <= 100 and chat_description(long).endswith(long.url)
    assert len(lark_uuid("k" * 500)) <= 50 and lark_uuid("a") != lark_uuid("b")


async def test_lookups_share_one_batch_call_for_emails_and_phones(fake: FakeLark, adapter: LarkAdapter):
    ann = fake.add_user(name="Ann", email=ANN)
    bob = fake.add_user(name="Bob", mobile=BOB)
    found = await asyncio.gather(
        adapter.lookup_user(email="Ann@Example.com", phone=None),
        adapter.lookup_user(email=None, phone=BOB),
        adapter.lookup_user(email=CAROL, phone=None),
        adapter.lookup_user(email=None, phone="+14155550100"),
    )
    assert found == [ann, bob, None, None]
    calls = fake.ops("user.batch_get_id")
    assert len(calls) == 1
    assert calls[0].query["user_id_type"] == "open_id"
    assert set(calls[0].body["emails"]) == {ANN, CAROL} and set(calls[0].body["mobiles"]) == {BOB, "+14155550100"}

    many = [f"user{i}@example.com" for i in range(120)]
    for e in many[:60]:
        fake.add_user(name=e, email=e)
    result = await adapter.lookup_users(emails=many, phones=[BOB])
    assert sum(1 for v in result.by_email.values() if v) == 60 and result.by_phone[BOB] == bob
    assert all(len(c.body.get("emails", [])) <= 50 for c in fake.ops("user.batch_get_id"))


async def test_member_changes_are_serialized_per_chat_and_batched(fake: FakeLark, adapter: LarkAdapter):
    ref = await adapter.create_room(spec())
    people = [fake.add_user(name=f"p{i}", email=f"p{i}@example.com") for i in range(120)]
    chunks = [people[0:40], people[40:80], people[80:120], people[0:10]]  # the last: already members
    # Concurrent changes on one chat: Lark would answer 232019; the adapter's per-chat lock queues them.
    results = await asyncio.gather(*(adapter.add_members(ref.chat_id, c) for c in chunks))
    assert all(r.ok for rs in results for r in rs)
    assert set(fake.chats[ref.chat_id].members) == {fake.bot_open_id, *people}
    assert all(len(c.body["id_list"]) <= 50 for c in fake.ops("members.add"))

    unknown = await adapter.add_members(ref.chat_id, ["ou_nobody", "not-an-open-id", people[0]])
    assert [(r.ok, bool(r.detail)) for r in unknown] == [(False, True), (False, True), (True, False)]

    await adapter.remove_members(ref.chat_id, [people[0], people[0], "ou_nobody"])  # absent: still success
    assert people[0] not in fake.chats[ref.chat_id].members
    assert fake.ops("members.add")[0].query == {"member_id_type": "open_id", "succeed_type": "1"}


async def test_card_is_posted_once_pinned_and_patched_in_order(fake: FakeLark, adapter: LarkAdapter):
    ref = await adapter.create_room(spec())
    fake.fail("message.create", "timeout_after")
    fake.fail("pin.create", "503")
    m = await retried(lambda: adapter.post_card(ref.chat_id, card(1), "incident-i1:card:1"))
    await retried(lambda: adapter.pin_card(ref.chat_id, m))  # the core pins what it posted
    cards = [x for x in fake.chat_messages(ref.chat_id) if x.msg_type == "interactive"]
    assert [x.message_id for x in cards] == [m]  # the retried post is deduplicated by uuid
    posted = json.loads(cards[0].content)
    assert posted["schema"] == "2.0" and posted["config"]["update_multi"] is True
    assert cards[0].pinned and fake.chats[ref.chat_id].top_notice == m
    buttons = lark_api.card_buttons(cards[0].content)
    assert buttons["Snooze 2h"] == {
        "warroom": 1,
        "incident_id": "i1",
        "action": "snooze",
        "card_version": 1,
        "minutes": 120,
    }
    assert set(buttons) == {"Acknowledge", "Snooze 2h", "Close"}

    # A burst of updates, arriving out of order: coalesced, newest wins, within 5 PATCH/s.
    versions = [5, 2, 9, 3, 12, 7, 4, 11, 6, 10, 8]
    statuses = {v: IncidentStatus.ACKNOWLEDGED if v < 12 else IncidentStatus.CLOSED for v in versions}
    await asyncio.gather(*(adapter.update_card(ref.chat_id, m, card(v, statuses[v])) for v in versions))
    msg = fake.messages[m]
    assert status_of(msg.content) == "closed" and "card v12" in msg.content
    assert 1 <= msg.patches <= 3
    await adapter.update_card(ref.chat_id, m, card(8, IncidentStatus.ACKNOWLEDGED))  # late and old
    assert status_of(fake.messages[m].content) == "closed"


async def test_the_cards_impact_line_is_shown_literally(fake: FakeLark, adapter: LarkAdapter):
    """The impact line comes from labels and alerts (anyone's text): never a mention, link or markup."""
    ref = await adapter.create_room(spec())
    hostile = 'Services [log in](https://evil.example) <at id=all></at> **pay** · Users <font color="red">all</font>'
    m = await adapter.post_card(ref.chat_id, card(1, impact=hostile), "k-impact")
    content = fake.messages[m].content
    lines = [ln for e in json.loads(content)["body"]["elements"] for ln in e.get("content", "").splitlines()]
    [line] = [ln for ln in lines if ln.startswith("**Impact:** Services ")]
    for markup in ("[log in](", "<at", "**pay**", "<font"):
        assert markup not in line, (markup, line)
    await adapter.update_card(ref.chat_id, m, card(2))
    assert "Impact" not in fake.messages[m].content


async def test_lark_per_message_patch_limit_becomes_rate_limited(fake: FakeLark):
    a = make_adapter(fake, min_patch_interval=0.0)  # without the adapter's own pacing
    ref = await a.create_room(spec())
    m = await a.post_card(ref.chat_id, card(1), "k")
    with pytest.raises(RateLimited) as info:
        for v in range(2, 12):
            await a.update_card(ref.chat_id, m, card(v))
    assert info.value.code == "230020" and info.value.retry_after == 1.0
    assert fake.messages[m].patches == lark_api.PATCH_QPS


@pytest.mark.parametrize(
    ("fault", "kind", "retry_after"),
    [
        ("429", RateLimited, 3.0),  # gateway limit: wait what x-ogw-ratelimit-reset says
        ("99991400", RateLimited, 3.0),
        ("230020", RateLimited, 1.0),  # business limits come without the header: per-second limits
        ("232019", RateLimited, 1.0),
        ("500", TransientImError, None),
        ("502", TransientImError, None),
        ("503", TransientImError, None),
        ("232068", TransientImError, None),
        ("drop", TransientImError, None),
        ("drop_after", TransientImError, None),
        ("timeout_after", TransientImError, None),
        ("token", TransientImError, None),
        ("99991672", PermanentImError, None),
    ],
)
async def test_errors_map_to_retry_decisions(fake: FakeLark, adapter: LarkAdapter, fault, kind, retry_after):
    fake.reset_seconds = 3
    ref = await adapter.create_room(spec())
    fake.fail("message.create", fault)
    with pytest.raises(kind) as info:
        await adapter.post_message(ref.chat_id, "hello", "k1")
    assert info.value.platform == "lark"
    if retry_after is not None:
        assert info.value.retry_after == retry_after
    if kind is PermanentImError:
        assert "Permissions & Scopes" in str(info.value)
    await adapter.post_message(ref.chat_id, "hello", "k1")  # the retry succeeds, once
    assert len([m for m in fake.chat_messages(ref.chat_id) if m.msg_type == "text"]) == 1


async def test_business_limits_without_the_header_wait_one_second(fake: FakeLark, adapter: LarkAdapter):
    ref = await adapter.create_room(spec())
    fake.fail("members.add", "232019")
    with pytest.raises(RateLimited) as info:
        await adapter.add_members(ref.chat_id, [fake.add_user(name="x", email="x@example.com")])
    assert info.value.retry_after == 1.0


async def test_revoked_token_is_fetched_again(fake: FakeLark, adapter: LarkAdapter):
    ref = await adapter.create_room(spec())
    tokens_before = len(fake.ops("token"))
    fake.revoke_tokens()
    with pytest.raises(TransientImError):
        await adapter.post_message(ref.chat_id, "hi", "k")
    await adapter.post_message(ref.chat_id, "hi", "k")
    assert len(fake.ops("token")) == tokens_before + 1


async def test_permanent_errors_say_what_to_do(fake: FakeLark, adapter: LarkAdapter):
    ref = await adapter.create_room(spec())
    fake.chats[ref.chat_id].members.remove(fake.bot_open_id)  # someone removed the bot
    with pytest.raises(PermanentImError, match="add the War Room bot back"):
        await adapter.post_message(ref.chat_id, "hello", "k")

    wrong = LarkAdapter(LarkApi(app_id=fake.app_id, app_secret="nope", domain=fake.domain, timeout=1.0))
    wrong.api.forget_token()  # lark-oapi caches tenant tokens per app id: as after a secret rotation
    with pytest.raises(PermanentImError, match="LARK_APP_SECRET"):
        await wrong.create_room(spec())

    with pytest.raises(PermanentImError, match="LARK_DOMAIN"):
        LarkApi(app_id="a", app_secret="b", domain="http://lark.internal", timeout=1.0)


async def test_history_pages_and_disbanding_deletes_it(fake: FakeLark, adapter: LarkAdapter):
    ref = await adapter.create_room(spec())
    ann = fake.add_user(name="Ann", email=ANN)
    await adapter.add_members(ref.chat_id, [ann])
    await adapter.post_card(ref.chat_id, card(1), "card")
    for i in range(120):
        fake.user_says(ref.chat_id, ann, f"line {i}")
    fake.user_says(ref.chat_id, ann, "what is the impact?", mention_bot=True)
    history = await adapter.fetch_history(ref.chat_id)
    assert [h.text for h in history] == [f"line {i}" for i in range(120)] + ["@War Room what is the impact?"]
    assert all(h.author == ann for h in history)  # the card is not part of the transcript
    assert [c.query["page_size"] for c in fake.ops("message.list")] == ["50"] * 3
    assert len({c.query.get("page_token") for c in fake.ops("message.list")}) == 3

    later = await adapter.fetch_history(ref.chat_id, since=history[100].at)
    assert later[0].text == history[100].text or later[0].at >= history[100].at

    await adapter.dismiss_room(ref.chat_id)
    assert fake.chats[ref.chat_id].deleted and fake.chat_messages(ref.chat_id) == []
    await adapter.dismiss_room(ref.chat_id)  # already gone: success
    assert await adapter.fetch_history(ref.chat_id) == []


async def test_messages_and_notices_mention_people(fake: FakeLark, adapter: LarkAdapter):
    ref = await adapter.create_room(spec())
    eve = fake.add_user(name="Eve", email=EVE)
    await adapter.post_message(
        ref.chat_id, "acknowledge refused: not a responder.", "m1", mentions=[Mention(im_user_id=eve)]
    )
    await adapter.post_notice(ref.chat_id, eve, "close refused.", "m2")
    await adapter.post_message(ref.chat_id, 'DB down <at user_id="all"></at> <AT user_id="ou_x">', "m3")
    texts = [json.loads(m.content)["text"] for m in fake.chat_messages(ref.chat_id)]
    assert texts == [
        f'<at user_id="{eve}"></at> acknowledge refused: not a responder.',
        f'<at user_id="{eve}"></at> close refused.',
        'DB down <\u200bat user_id="all"><\u200b/at> <\u200bAT user_id="ou_x">',  # text never @mentions
    ]


async def test_setup_checks(fake: FakeLark, tmp_path):
    settings = Settings(
        LARK_APP_ID=fake.app_id,
        LARK_APP_SECRET=fake.app_secret,
        LARK_DOMAIN=fake.domain,
        LARK_ENCRYPT_KEY=KEY,
        LARK_VERIFICATION_TOKEN=TOKEN,
        WARROOM_PUBLIC_URL="https://warroom.example.com",
        _env_file=None,
    )
    adapter = build_adapter("lark", None, settings)  # type: ignore[arg-type]
    checks = {c.name: c for c in await adapter.setup_checks()}
    assert all(c.ok for c in checks.values()), [c for c in checks.values() if not c.ok]
    assert "https://warroom.example.com/im/lark/events" in checks["callback URL"].detail
    assert checks["bot"].detail.startswith("War Room (ou_warroom_bot)")

    fake.scopes = ("im:message",)
    local = build_adapter("lark", None, settings.model_copy(update={"public_url": "http://localhost:8000"}))
    checks = {c.name: c for c in await local.setup_checks()}
    assert not checks["callback URL"].ok and "WARROOM_PUBLIC_URL" in checks["callback URL"].fix
    missing = checks["scope for: create group chats"]
    assert not missing.ok and f"/app/{fake.app_id}/auth?q=im%3Achat%3Acreate" in missing.fix
    assert checks["scope for: send messages and cards as the bot"].ok

    broken = build_adapter(
        "lark",
        None,
        settings.model_copy(
            update={"LARK_APP_SECRET": SecretStr("wrong"), "LARK_ENCRYPT_KEY": SecretStr(""), "LARK_APP_ID": "other"}
        ),
    )
    checks = {c.name: c for c in await broken.setup_checks()}
    assert not checks["tenant access token"].ok and "LARK_APP_SECRET" in checks["tenant access token"].fix
    assert not checks["encrypt key"].ok and "LARK_ENCRYPT_KEY" in checks["encrypt key"].fix

    with pytest.raises(PermanentImError, match="LARK_APP_ID"):
        build_adapter("lark", None, Settings(_env_file=None))


# ---------------------------------------------------------------------------- inbound


def test_decryption_matches_lark_oapi():
    from lark_oapi.core.utils.decryptor import AESCipher

    from warroom.im.lark.callbacks import decrypt

    for text in ("", "{}", "x" * 15, "x" * 16, json.dumps({"challenge": "飞书", "n": list(range(50))})):
        sealed = lark_api.encrypt(KEY, text)
        assert decrypt(hashlib.sha256(KEY.encode()).digest(), sealed) == AESCipher(KEY).decrypt_str(sealed) == text
    with pytest.raises(ValueError):
        decrypt(hashlib.sha256(b"other").digest(), lark_api.encrypt(KEY, "{}"))


async def test_url_verification_plain_and_encrypted(fake: FakeLark, adapter: LarkAdapter):
    challenge = lark_api.url_verification(token=TOKEN, challenge="c-123")
    for encrypted in (False, True):
        headers, body = lark_api.callback(challenge, encrypt_key=KEY, encrypted=encrypted, signed=False)
        assert adapter.handle_callback(request(headers, body)).answer() == {"challenge": "c-123"}
    headers, body = lark_api.callback(lark_api.url_verification(token="wrong", challenge="c"), encrypt_key=KEY)
    with pytest.raises(CallbackRejected) as info:
        adapter.handle_callback(request(headers, body))
    assert info.value.status == 401


async def test_signed_encrypted_card_action_becomes_an_action_click(fake: FakeLark, adapter: LarkAdapter):
    value = {"warroom": 1, "incident_id": "i1", "action": "snooze", "minutes": 120, "card_version": 3}
    event = lark_api.card_action(token=TOKEN, chat_id="oc_1", message_id="om_1", open_id="ou_ann", value=value)
    headers, body = lark_api.callback(event, encrypt_key=KEY)
    result = adapter.handle_callback(request(headers, body))
    assert result.events == [
        ActionClicked(
            event_id=event["header"]["event_id"],
            chat_id="oc_1",
            im_user_id="ou_ann",
            action=Action.SNOOZE,
            minutes=120,
            card_version=3,
        )
    ]
    assert result.answer()["toast"]["type"] == "info" and "120 min" in result.answer()["toast"]["content"]

    plain_headers, plain_body = lark_api.callback(event, encrypt_key=KEY, encrypted=False)  # signed, not encrypted
    assert adapter.handle_callback(request(plain_headers, plain_body)).events[0].action is Action.SNOOZE

    foreign = lark_api.card_action(token=TOKEN, chat_id="oc_1", message_id="om_1", open_id="ou_a", value={"x": 1})
    headers, body = lark_api.callback(foreign, encrypt_key=KEY)
    assert adapter.handle_callback(request(headers, body)).events == []


async def test_forged_stale_replayed_and_wrong_token_callbacks_are_rejected(fake: FakeLark, adapter: LarkAdapter):
    value = {"warroom": 1, "incident_id": "i1", "action": "acknowledge", "card_version": 1}
    event = lark_api.card_action(token=TOKEN, chat_id="oc_1", message_id="om_1", open_id="ou_ann", value=value)

    def rejected(headers: dict[str, str], body: bytes) -> CallbackRejected:
        with pytest.raises(CallbackRejected) as info:
            adapter.handle_callback(request(headers, body))
        assert info.value.status == 401, info.value.reason
        return info.value

    headers, body = lark_api.callback(event, encrypt_key="someone-elses-key")
    assert "signature" in rejected(headers, body).reason.lower()
    headers, body = lark_api.callback(event, encrypt_key=KEY)
    assert "signature" in rejected(headers, body.replace(b'"}', b'" }')).reason.lower()  # tampered
    headers, body = lark_api.callback(event, encrypt_key=KEY, signed=False)
    assert "signature" in rejected(headers, body).reason.lower()
    headers, body = lark_api.callback(event, encrypt_key=KEY, timestamp=int(time.time()) - 600)
    assert "stale" in rejected(headers, body).reason
    headers, body = lark_api.callback(event, encrypt_key=KEY, timestamp=int(time.time()) + 600)
    assert "stale" in rejected(headers, body).reason
    wrong = json.loads(json.dumps(event))
    wrong["header"]["token"] = "not-the-token"
    headers, body = lark_api.callback(wrong, encrypt_key=KEY)
    assert "verification token" in rejected(headers, body).reason

    headers, body = lark_api.callback(event, encrypt_key=KEY)
    first = adapter.handle_callback(request(headers, body))
    assert first.events and first.replay_key == headers["X-Lark-Signature"].lower()  # the API takes it once
    assert adapter.handle_callback(request(headers, body)).replay_key == first.replay_key  # a replay: same key
    headers, body = lark_api.callback(event, encrypt_key=KEY)  # Lark's own re-delivery: re-signed
    again = adapter.handle_callback(request(headers, body))
    assert again.events[0].event_id == event["header"]["event_id"] and again.replay_key != first.replay_key

    unconfigured = LarkAdapter(adapter.api)
    with pytest.raises(CallbackRejected) as info:
        unconfigured.handle_callback(request(headers, body))
    assert info.value.status == 503 and "LARK_ENCRYPT_KEY" in info.value.reason


async def test_messages_mentions_and_disbanding_are_parsed(fake: FakeLark, adapter: LarkAdapter):
    ref = await adapter.create_room(spec())
    ann = fake.add_user(name="Ann", email=ANN)
    for mention, expected in ((True, True), (False, False)):
        event = fake.user_says(ref.chat_id, ann, "status?", mention_bot=mention)
        event["header"]["token"] = TOKEN
        headers, body = lark_api.callback(event, encrypt_key=KEY)
        (got,) = adapter.handle_callback(request(headers, body)).events
        assert isinstance(got, MessageReceived)
        assert (got.chat_id, got.im_user_id, got.mentions_bot) == (ref.chat_id, ann, expected)
        assert got.text == ("@War Room status?" if mention else "status?")
    adapter.bot_open_id = "ou_someone_else"  # known bot id: only a mention of *this* bot counts
    event = fake.user_says(ref.chat_id, ann, "status?", mention_bot=True)
    event["header"]["token"] = TOKEN
    headers, body = lark_api.callback(event, encrypt_key=KEY)
    assert adapter.handle_callback(request(headers, body)).events[0].mentions_bot is False

    gone = lark_api.chat_disbanded(token=TOKEN, chat_id=ref.chat_id, open_id=ann)
    headers, body = lark_api.callback(gone, encrypt_key=KEY)
    assert adapter.handle_callback(request(headers, body)).events == [
        RoomGone(event_id=gone["header"]["event_id"], chat_id=ref.chat_id, im_user_id=ann)
    ]
    other = lark_api.envelope("im.chat.member.user.added_v1", {"chat_id": ref.chat_id}, token=TOKEN)
    headers, body = lark_api.callback(other, encrypt_key=KEY)
    assert adapter.handle_callback(request(headers, body)).events == []


# ---------------------------------------------------------------------------- the real stack


def lark_settings(settings: Settings, fake: FakeLark) -> Settings:
    return settings.model_copy(
        update={
            "LARK_APP_ID": fake.app_id,
            "LARK_APP_SECRET": SecretStr(fake.app_secret),
            "LARK_DOMAIN": fake.domain,
            "LARK_ENCRYPT_KEY": SecretStr(KEY),
            "LARK_VERIFICATION_TOKEN": SecretStr(TOKEN),
            "LARK_TIMEOUT_SECONDS": 1.0,
            "public_url": "https://warroom.example.com",
        }
    )


async def test_a_worker_loads_lark_oapi_before_it_polls_only_for_the_platforms_it_serves(
    store: Store, settings: Settings, fake: FakeLark
):
    """lark-oapi takes seconds to import: paid inside the first activity, it came out of that
    activity's timeouts at every worker restart (in the chaos run no room opened at all)."""
    s = lark_settings(settings, fake)
    im = ImActivities(store, s)
    assert "lark" in im.prepare()
    assert im.platform_adapter("lark").api._client is not None  # type: ignore[attr-defined]
    await im.aclose()
    elsewhere = ImActivities(store, s.model_copy(update={"platform_regions": "lark=eu"}))
    assert "lark" not in elsewhere.prepare()  # the region's worker serves it, not this one
    regional = ImActivities(store, s.model_copy(update={"platform_regions": "lark=eu", "region": "eu"}))
    assert regional.prepare() == ["lark"]
    await regional.aclose()


@pytest_asyncio.fixture
async def stack(
    client: Client, store: Store, settings: Settings, fake: FakeLark
) -> AsyncIterator[tuple[httpx.AsyncClient, FakeLark, Store]]:
    s = lark_settings(settings, fake)
    worker, im = build_worker(client, store, s)
    app = create_app(s, client=client, store=store)
    async with (
        worker,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=60) as http,
    ):
        yield http, fake, store
    await im.aclose()


async def post_callback(http: httpx.AsyncClient, payload: dict[str, Any], **kw: Any) -> httpx.Response:
    headers, body = lark_api.callback(payload, encrypt_key=KEY, **kw)
    return await http.post("/im/lark/events", content=body, headers=headers)


async def incident_view(http: httpx.AsyncClient, incident_id: str) -> dict[str, Any]:
    r = await http.get(f"/api/v1/incidents/{incident_id}")
    assert r.status_code == 200, r.text
    return r.json()


def texts(fake: FakeLark, chat_id: str) -> list[str]:
    return [json.loads(m.content)["text"] for m in fake.chat_messages(chat_id) if m.msg_type == "text"]


def kinds(view: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in view["timeline"]]


async def test_lifecycle_through_the_real_stack(stack):
    http, fake, _ = stack
    ann = fake.add_user(name="Ann", email=ANN)
    bob = fake.add_user(name="Bob", mobile=BOB)
    eve = fake.add_user(name="Eve", email=EVE)
    fake.fail("members.add", "232019", "drop")
    fake.fail("message.create", "230020")
    fake.fail("message.patch", "503")

    r = await http.post(
        "/api/v1/incidents",
        json={
            "id": f"lk-{uuid.uuid4().hex[:8]}",
            "title": "Payments are failing",
            "severity": "high",
            "responders": [{"email": ANN}, {"name": "Bob", "phone": BOB}, {"email": CAROL}],
        },
    )
    assert r.status_code == 201, r.text
    incident_id = r.json()["id"]

    r = await http.post(f"/api/v1/incidents/{incident_id}/war-room", json={"platform": "lark"})
    assert r.status_code in (200, 201), r.text
    chat_id = r.json()["chat_id"]
    assert r.json()["platform"] == "lark" and r.json()["join_url"].startswith("https://applink.feishu.cn/")
    chat = fake.chats[chat_id]
    assert "Payments are failing" in chat.name and chat.description.endswith(f"/api/v1/incidents/{incident_id}")

    view = await view_when(http, incident_id, lambda v: kinds(v).count("member.invited") == 2, timeout=30)
    assert set(chat.members) == {fake.bot_open_id, ann, bob}
    members = {m["email"] or m["name"]: m for m in view["war_room"]["members"]}
    assert members[CAROL]["state"] == "unlinked" and members[ANN]["im_user_id"] == ann
    first = fake.ops("user.batch_get_id")[0].body  # everyone resolved in one call, by email and by phone
    assert (set(first["emails"]), first["mobiles"]) == ({ANN, CAROL}, [BOB])

    card_msg = await eventually(lambda: [m for m in fake.chat_messages(chat_id) if m.msg_type == "interactive"])
    assert len(card_msg) == 1 and card_msg[0].pinned and chat.top_notice == card_msg[0].message_id
    await eventually(lambda: "not linked" in fake.messages[card_msg[0].message_id].content, timeout=30)
    buttons = lark_api.card_buttons(fake.messages[card_msg[0].message_id].content)

    # Eve is in the chat but no responder: her click is refused, in the room, with an @mention.
    fake.chats[chat_id].members.append(eve)
    click = lark_api.card_action(
        token=TOKEN, chat_id=chat_id, message_id=card_msg[0].message_id, open_id=eve, value=buttons["Acknowledge"]
    )
    r = await post_callback(http, click)
    assert r.status_code == 200 and "toast" in r.json()
    refusal = await eventually(lambda: [t for t in texts(fake, chat_id) if "refused" in t], timeout=30)
    assert refusal[0].startswith(f'<at user_id="{eve}"></at> acknowledge refused')

    # Ann acknowledges from the card: the incident changes and the card is patched in place.
    click = lark_api.card_action(
        token=TOKEN, chat_id=chat_id, message_id=card_msg[0].message_id, open_id=ann, value=buttons["Acknowledge"]
    )
    r = await post_callback(http, click)
    assert r.status_code == 200 and r.json()["toast"]["type"] == "info"
    assert (await post_callback(http, click)).status_code == 200  # Lark re-delivers: deduplicated by event id
    view = await view_when(http, incident_id, lambda v: "action.acknowledge" in kinds(v), timeout=30)
    assert view["incident"]["status"] == "acknowledged"
    assert next(e for e in view["timeline"] if e["kind"] == "action.acknowledge")["actor"] == ANN
    await eventually(lambda: status_of(fake.messages[card_msg[0].message_id].content) == "acknowledged", timeout=30)
    assert kinds(view).count("action.acknowledge") == 1

    # A forged click changes nothing.
    headers, body = lark_api.callback(click, encrypt_key="forged")
    assert (await http.post("/im/lark/events", content=body, headers=headers)).status_code == 401

    # Someone @mentions the bot: accepted (the transcript and the assistant take it from there).
    said = fake.user_says(chat_id, ann, "what changed?", mention_bot=True)
    said["header"]["token"] = TOKEN
    assert (await post_callback(http, said)).status_code == 200

    r = await http.post(f"/api/v1/incidents/{incident_id}/actions", json={"action": "close", "actor": ANN})
    assert r.status_code in (200, 202), r.text
    r = await http.delete(f"/api/v1/incidents/{incident_id}/war-room")
    assert r.status_code in (200, 202), r.text
    await eventually(lambda: fake.chats[chat_id].deleted, timeout=30)
    assert fake.chat_messages(chat_id) == []  # Lark deletes the history with the chat
    view = await view_when(
        http, incident_id, lambda v: "room.dismissed" in kinds(v) and v["war_room"]["state"] == "dismissed", timeout=30
    )
    assert view["war_room"]["state"] == "dismissed"
    assert kinds(view).count("action.refused") == 1  # Eve's; Ann's re-delivered click was deduplicated
    order = [c.op for c in fake.calls if c.op in ("message.create", "chat.delete")]
    assert order[-1] == "chat.delete" and "dismissed" in json.dumps(fake.ops("message.create")[-1].body)


async def test_exactly_one_chat_under_duplicate_and_concurrent_creates_with_faults(stack):
    http, fake, store = stack
    fake.add_user(name="Ann", email=ANN)
    r = await http.post(
        "/api/v1/incidents",
        json={"id": f"lk-{uuid.uuid4().hex[:8]}", "title": "Search is slow", "responders": [{"email": ANN}]},
    )
    incident_id = r.json()["id"]
    # The first create takes effect but its answer comes too late; then a dropped connection
    # after the effect; then the gateway's rate limit.
    fake.fail("chat.create", "timeout_after", "drop_after", "429")

    answers = await asyncio.gather(
        *(http.post(f"/api/v1/incidents/{incident_id}/war-room", json={"platform": "lark"}) for _ in range(8))
    )
    assert all(a.status_code in (200, 201, 202) for a in answers), [a.text for a in answers]
    view = await view_when(
        http, incident_id, lambda v: v["war_room"]["state"] == "active" and "room.created" in kinds(v), timeout=40
    )
    chat_id = view["war_room"]["chat_id"]
    assert {a.json()["chat_id"] for a in answers if a.json().get("chat_id")} == {chat_id}
    assert [c.chat_id for c in fake.live_chats()] == [chat_id]
    creates = fake.ops("chat.create")
    assert fake.pending_faults("chat.create") == []  # all three faults were met (429 never reaches Lark's app)
    assert len(creates) == 3 and len({c.query["uuid"] for c in creates}) == 1
    assert kinds(view).count("room.created") == 1

    again = await http.post(f"/api/v1/incidents/{incident_id}/war-room", json={"platform": "lark"})
    assert again.status_code == 200 and again.json()["chat_id"] == chat_id
    assert len(fake.live_chats()) == 1
    assert store.rooms.incident_for_chat("lark", chat_id) == incident_id


async def test_chat_disbanded_by_hand_is_recorded(stack):
    http, fake, _ = stack
    ann = fake.add_user(name="Ann", email=ANN)
    r = await http.post(
        "/api/v1/incidents",
        json={"id": f"lk-{uuid.uuid4().hex[:8]}", "title": "Disk full", "responders": [{"email": ANN}]},
    )
    incident_id = r.json()["id"]
    r = await http.post(f"/api/v1/incidents/{incident_id}/war-room", json={"platform": "lark"})
    chat_id = r.json()["chat_id"]
    fake.chats[chat_id].deleted = True  # a group owner disbanded it in the Lark client; Lark tells us:
    r = await post_callback(http, lark_api.chat_disbanded(token=TOKEN, chat_id=chat_id, open_id=ann))
    assert r.status_code == 200
    view = await view_when(
        http, incident_id, lambda v: v["war_room"]["state"] == "dismissed" and "room.dismissed" in kinds(v), timeout=30
    )
    gone = [e for e in view["timeline"] if e["kind"] == "room.dismissed"]
    assert len(gone) == 1 and gone[0]["source"] == "lark" and ann in gone[0]["detail"]


async def test_callback_route_verifies_before_anything_else(stack):
    http, _, _ = stack
    headers, body = lark_api.callback(lark_api.url_verification(token=TOKEN, challenge="abc"), encrypt_key=KEY)
    r = await http.post("/im/lark/events", content=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"challenge": "abc"}
    value = {"warroom": 1, "incident_id": "x", "action": "close", "card_version": 1}
    event = lark_api.card_action(token=TOKEN, chat_id="oc_none", message_id="om", open_id="ou_x", value=value)
    for kw in ({"signed": False}, {"timestamp": int(time.time()) - 3600}):
        headers, body = lark_api.callback(event, encrypt_key=KEY, **kw)
        r = await http.post("/im/lark/events", content=body, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "rejected"
    # A verified click on a chat that is no war room: answered (Lark must not retry), nothing happens.
    assert (await post_callback(http, event)).status_code == 200


async def view_when(
    http: httpx.AsyncClient, incident_id: str, pred: Callable[[dict[str, Any]], bool], *, timeout: float = 30
) -> dict[str, Any]:
    """The incident's view (incident, war room, timeline) once `pred` holds for it."""

    async def check() -> dict[str, Any] | None:
        v = await incident_view(http, incident_id)
        return v if pred(v) else None

    return await eventually(check, timeout=timeout)
