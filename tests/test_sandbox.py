"""The sandbox IM: the platform (rooms, members, messages in SQL) and its adapter (latency, fault
injection, signed callbacks) behind the same interface as the real platforms."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from warroom.errors import CallbackRejected, ImError, PermanentImError, RateLimited, TransientImError
from warroom.im.base import (
    ActionClicked,
    CallbackRequest,
    CardButton,
    MessageReceived,
    RoomSpec,
    StatusCard,
)
from warroom.im.sandbox.adapter import FAULTS, SIGNATURE_WINDOW_SECONDS, SandboxAdapter, sign
from warroom.im.sandbox.platform import BOT_USER_ID, SandboxPlatform
from warroom.im.sandbox.tables import SandboxCallRow, SandboxMessageRow
from warroom.models import Action, IncidentStatus, Severity
from warroom.store import Database, migrate

SECRET = "s3cret"
PUBLIC_URL = "http://warroom.test:8000/"


# ---- fixtures ----------------------------------------------------------------------------------


def _database(path: Path) -> Database:
    url = f"sqlite:///{path}"
    migrate(url)
    return Database(url)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = _database(tmp_path / "sandbox.db")
    yield d
    d.dispose()


@pytest.fixture
def platform(db: Database) -> SandboxPlatform:
    return SandboxPlatform(db)


@pytest.fixture
def adapter(platform: SandboxPlatform) -> SandboxAdapter:
    return SandboxAdapter(platform, public_url=PUBLIC_URL, signing_secret=SECRET)


def faulty(platform: SandboxPlatform, seed: int = 7, **kw: object) -> SandboxAdapter:
    return SandboxAdapter(platform, fault_rate=1.0, rng=random.Random(seed), signing_secret=SECRET, **kw)  # type: ignore[arg-type]


def spec(key: str = "incident-i1:room:1", incident_id: str = "i1") -> RoomSpec:
    return RoomSpec(incident_id=incident_id, idempotency_key=key, name=f"inc-{incident_id} checkout down", topic="t")


def card(version: int, status: IncidentStatus = IncidentStatus.TRIGGERED) -> StatusCard:
    return StatusCard(
        incident_id="i1",
        title="checkout down",
        severity=Severity.HIGH,
        status=status,
        version=version,
        buttons=[CardButton(action=Action.ACKNOWLEDGE, label="Acknowledge")],
    )


def calls(db: Database) -> list[tuple[str, str | None, str | None]]:
    with db.session() as s:
        rows = s.scalars(select(SandboxCallRow).order_by(SandboxCallRow.id)).all()
        return [(r.method, r.chat_id, r.fault) for r in rows]


def message_count(db: Database, key: str | None = None) -> int:
    q = select(func.count()).select_from(SandboxMessageRow)
    if key is not None:
        q = q.where(SandboxMessageRow.idempotency_key == key)
    with db.session() as s:
        return s.scalar(q) or 0


def user_id_for(contact: str) -> str:
    return "U" + hashlib.sha256(contact.encode()).hexdigest()[:10].upper()


# ---- rooms -------------------------------------------------------------------------------------


async def test_create_room_is_idempotent_by_key(adapter: SandboxAdapter, platform: SandboxPlatform) -> None:
    first = await adapter.create_room(spec())
    again = await adapter.create_room(spec())
    assert first == again
    assert first.chat_id.startswith("C")
    assert first.name == "inc-i1 checkout down"
    assert first.join_url == f"http://warroom.test:8000/sandbox#room={first.chat_id}"
    assert await adapter.join_url(first.chat_id) == first.join_url
    other = await adapter.create_room(spec(key="incident-i1:room:2"))
    assert other.chat_id != first.chat_id
    rooms = platform.rooms()
    assert sorted(r.chat_id for r in rooms) == sorted([first.chat_id, other.chat_id])
    room = platform.room(first.chat_id)
    assert (room.incident_id, room.state, room.topic) == ("i1", "active", "t")
    assert room.members == [] and room.messages == []


def test_create_room_concurrently_under_one_key(platform: SandboxPlatform) -> None:
    now = datetime.now(UTC)
    barrier = threading.Barrier(4)
    out: list[str] = []

    def run() -> None:
        barrier.wait()
        out.append(platform.create_room(key="k", incident_id="i1", name="n", topic="", now=now))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(out) == 4 and len(set(out)) == 1
    assert len(platform.rooms()) == 1


# ---- directory ---------------------------------------------------------------------------------


async def test_lookup_provisions_users_deterministically(
    adapter: SandboxAdapter, platform: SandboxPlatform, tmp_path: Path
) -> None:
    alice = await adapter.lookup_user(email="alice@example.com", phone=None)
    assert alice == user_id_for("alice@example.com")
    assert await adapter.lookup_user(email="alice@example.com", phone=None) == alice
    pat = await adapter.lookup_user(email=None, phone="+15550100")
    assert pat == user_id_for("+15550100")
    assert await adapter.lookup_user(email=None, phone=None) is None

    # email and phone: provisioned under the email, then found by either
    carol = await adapter.lookup_user(email="carol@example.com", phone="+15550199")
    assert carol == user_id_for("carol@example.com")
    assert await adapter.lookup_user(email=None, phone="+15550199") == carol
    # an unknown email with a known phone finds the person by phone
    assert await adapter.lookup_user(email="carol.new@example.com", phone="+15550199") == carol

    users = {u.id: u for u in platform.users()}
    assert set(users) == {alice, pat, carol}
    assert (users[alice].name, users[alice].email, users[alice].phone) == ("alice", "alice@example.com", None)
    assert (users[pat].name, users[pat].phone) == ("user +15550100", "+15550100")
    assert (users[carol].email, users[carol].phone) == ("carol@example.com", "+15550199")

    # deterministic across installations: a fresh sandbox gives the same ids
    other_db = _database(tmp_path / "other.db")
    try:
        other = SandboxAdapter(SandboxPlatform(other_db))
        assert await other.lookup_user(email="alice@example.com", phone=None) == alice
        assert await other.lookup_user(email=None, phone="+15550100") == pat
    finally:
        other_db.dispose()


# ---- members -----------------------------------------------------------------------------------


async def test_add_members_is_idempotent(adapter: SandboxAdapter, platform: SandboxPlatform) -> None:
    chat = (await adapter.create_room(spec())).chat_id
    alice = await adapter.lookup_user(email="alice@example.com", phone=None)
    bob = await adapter.lookup_user(email="bob@example.com", phone=None)
    assert alice and bob
    for _ in range(3):
        results = await adapter.add_members(chat, [alice, bob])
        assert [(r.im_user_id, r.ok) for r in results] == [(alice, True), (bob, True)]
    members = {m.user_id: m for m in platform.room(chat).members}
    assert {uid: (m.state, m.joins) for uid, m in members.items()} == {alice: ("joined", 1), bob: ("joined", 1)}
    assert members[alice].email == "alice@example.com" and members[alice].name == "alice"
    assert platform.is_member(chat, alice)

    # removal is idempotent too; rejoining counts a second join
    await adapter.remove_members(chat, [bob])
    await adapter.remove_members(chat, [bob, "UNOBODY"])
    assert not platform.is_member(chat, bob)
    await adapter.add_members(chat, [bob])
    await adapter.add_members(chat, [bob])
    bob_member = next(m for m in platform.room(chat).members if m.user_id == bob)
    assert (bob_member.state, bob_member.joins) == ("joined", 2)


def test_add_members_concurrently_joins_once(platform: SandboxPlatform) -> None:
    now = datetime.now(UTC)
    chat = platform.create_room(key="k", incident_id="i1", name="n", topic="", now=now)
    uid = platform.lookup_user(email="alice@example.com", phone=None, now=now)
    assert uid
    barrier = threading.Barrier(4)
    out: list[object] = []

    def run() -> None:
        barrier.wait()
        try:
            out.append(platform.add_members(chat, [uid], now))
        except Exception as e:
            out.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert out == [[]] * 4
    assert [(m.user_id, m.joins) for m in platform.room(chat).members] == [(uid, 1)]


async def test_add_unknown_user_fails_for_that_user_only(adapter: SandboxAdapter, platform: SandboxPlatform) -> None:
    chat = (await adapter.create_room(spec())).chat_id
    alice = await adapter.lookup_user(email="alice@example.com", phone=None)
    assert alice
    results = await adapter.add_members(chat, ["UNOBODY", alice])
    assert results[0].im_user_id == "UNOBODY" and results[0].ok is False and results[0].detail == "no such user"
    assert results[1].ok is True and results[1].detail == ""
    assert [m.user_id for m in platform.room(chat).members] == [alice]


async def test_calls_on_an_unknown_room_are_permanent_errors(adapter: SandboxAdapter) -> None:
    with pytest.raises(PermanentImError) as e:
        await adapter.add_members("CNOPE", ["U1"])
    assert e.value.code == "not_found" and e.value.platform == "sandbox"
    with pytest.raises(PermanentImError):
        await adapter.post_message("CNOPE", "hi", "k")
    with pytest.raises(PermanentImError):
        await adapter.dismiss_room("CNOPE")


# ---- messages and cards ------------------------------------------------------------------------


async def test_post_card_and_message_once_per_key(adapter: SandboxAdapter, platform: SandboxPlatform) -> None:
    chat = (await adapter.create_room(spec())).chat_id
    c1 = await adapter.post_card(chat, card(1), "card:1")
    assert await adapter.post_card(chat, card(1), "card:1") == c1
    m1 = await adapter.post_message(chat, "hello", "msg:1")
    assert await adapter.post_message(chat, "hello", "msg:1") == m1
    assert await adapter.post_message(chat, "hello again (different text, same key)", "msg:1") == m1
    m2 = await adapter.post_message(chat, "hello", "msg:2")
    assert len({c1, m1.message_id, m2.message_id}) == 3
    messages = platform.room(chat).messages
    assert [(m.author, m.text, m.card_version) for m in messages] == [
        (BOT_USER_ID, "", 1),
        (BOT_USER_ID, "hello", None),
        (BOT_USER_ID, "hello", None),
    ]
    assert messages[0].card == card(1).model_dump(mode="json")
    assert messages[0].author_name == "War Room"


async def test_update_card_never_lets_an_older_version_win(adapter: SandboxAdapter, platform: SandboxPlatform) -> None:
    chat = (await adapter.create_room(spec())).chat_id
    ref = await adapter.post_card(chat, card(1), "card:1")

    def shown() -> tuple[int | None, str, int]:
        m = next(m for m in platform.messages(chat) if str(m.id) == ref)
        assert m.card is not None
        return m.card_version, m.card["status"], m.edits

    await adapter.update_card(chat, ref, card(3, IncidentStatus.CLOSED))
    assert shown() == (3, "closed", 1)
    await adapter.update_card(chat, ref, card(2, IncidentStatus.ACKNOWLEDGED))  # late retry
    assert shown() == (3, "closed", 1)
    await adapter.update_card(chat, ref, card(3, IncidentStatus.ACKNOWLEDGED))  # same version
    assert shown() == (3, "closed", 1)
    await adapter.update_card(chat, ref, card(4, IncidentStatus.TRIGGERED))
    assert shown() == (4, "triggered", 2)

    text = await adapter.post_message(chat, "not a card", "msg:1")
    with pytest.raises(PermanentImError):
        await adapter.update_card(chat, text.message_id, card(9))
    other = (await adapter.create_room(spec(key="other"))).chat_id
    with pytest.raises(PermanentImError):
        await adapter.update_card(other, ref, card(9))
    with pytest.raises(PermanentImError):
        await adapter.update_card(chat, "999999", card(9))


async def test_fetch_history_excludes_cards(adapter: SandboxAdapter, platform: SandboxPlatform) -> None:
    chat = (await adapter.create_room(spec())).chat_id
    alice = await adapter.lookup_user(email="alice@example.com", phone=None)
    assert alice
    await adapter.add_members(chat, [alice])
    await adapter.post_card(chat, card(1), "card:1")
    m1 = await adapter.post_message(chat, "room opened", "msg:1")
    t0 = datetime.now(UTC)
    platform.post(chat, author=alice, text="@warroom what broke?", key=None, now=t0 + timedelta(seconds=1))
    history = await adapter.fetch_history(chat)
    assert [(h.author, h.text) for h in history] == [(BOT_USER_ID, "room opened"), (alice, "@warroom what broke?")]
    assert history[0].message_id == m1.message_id
    assert all(h.chat_id == chat and h.at.tzinfo is not None for h in history)
    since = await adapter.fetch_history(chat, since=t0)
    assert [h.text for h in since] == ["@warroom what broke?"]


async def test_dismiss_is_idempotent_and_final(adapter: SandboxAdapter, platform: SandboxPlatform) -> None:
    chat = (await adapter.create_room(spec())).chat_id
    alice = await adapter.lookup_user(email="alice@example.com", phone=None)
    assert alice
    await adapter.add_members(chat, [alice])
    ref = await adapter.post_card(chat, card(1), "card:1")
    await adapter.post_message(chat, "bye", "msg:bye")
    await adapter.dismiss_room(chat)
    await adapter.dismiss_room(chat)
    room = platform.room(chat)
    assert room.state == "dismissed"

    for name, call in (
        ("add_members", lambda: adapter.add_members(chat, [alice])),
        ("remove_members", lambda: adapter.remove_members(chat, [alice])),
        ("post_message", lambda: adapter.post_message(chat, "too late", "msg:late")),
        ("post_card", lambda: adapter.post_card(chat, card(2), "card:late")),
        ("update_card", lambda: adapter.update_card(chat, ref, card(2))),
    ):
        with pytest.raises(PermanentImError) as e:
            await call()
        assert e.value.code == "archived", name
    assert platform.room(chat).messages[0].card_version == 1
    # the history of a dismissed room stays readable (the post-incident review needs it)
    assert [h.text for h in await adapter.fetch_history(chat)] == ["bye"]
    # and creating the room again under the same key does not resurrect it as a new chat
    assert (await adapter.create_room(spec())).chat_id == chat


# ---- fault injection and latency ---------------------------------------------------------------


async def test_every_call_faults_at_rate_one(platform: SandboxPlatform, db: Database) -> None:
    good = SandboxAdapter(platform)
    chat = (await good.create_room(spec())).chat_id
    ref = await good.post_card(chat, card(1), "card:1")
    user = await good.lookup_user(email="alice@example.com", phone=None)
    assert user
    before = len(calls(db))

    def operations(bad: SandboxAdapter):  # type: ignore[no-untyped-def]
        return [
            ("create_room", lambda: bad.create_room(spec(key="x"))),
            ("lookup_user", lambda: bad.lookup_user(email="zed@example.com", phone=None)),
            ("add_members", lambda: bad.add_members(chat, [user])),
            ("remove_members", lambda: bad.remove_members(chat, ["UNOBODY"])),
            ("post_card", lambda: bad.post_card(chat, card(1), "card:x")),
            ("update_card", lambda: bad.update_card(chat, ref, card(1))),
            ("post_message", lambda: bad.post_message(chat, "hi", "msg:x")),
            ("fetch_history", lambda: bad.fetch_history(chat)),
        ]

    bad = faulty(platform, seed=1234)
    raised: list[tuple[str, type[ImError]]] = []
    for _ in range(6):
        for method, op in operations(bad):
            with pytest.raises((RateLimited, TransientImError)) as e:
                await op()
            assert e.value.platform == "sandbox"
            if isinstance(e.value, RateLimited):
                assert e.value.retry_after > 0
            raised.append((method, type(e.value)))
    recorded = calls(db)[before:]
    assert [m for m, _, _ in recorded] == [m for m, _ in raised]
    faults = [f for _, _, f in recorded]
    assert all(f in FAULTS for f in faults)
    assert set(faults) == set(FAULTS)  # 48 seeded draws hit every kind of fault
    for (_, error), fault in zip(raised, faults, strict=True):
        assert error is (RateLimited if fault == "rate_limited" else TransientImError)
    assert {c for _, c, _ in recorded} == {None, chat}  # chat id recorded for room calls

    # the same seed injects the same faults (chaos runs are reproducible)
    again = faulty(platform, seed=1234)
    mark = len(calls(db))
    for _ in range(6):
        for _, op in operations(again):
            with pytest.raises(ImError):
                await op()
    assert [f for _, _, f in calls(db)[mark:]] == faults


async def _until_fault(db: Database, fault: str, call) -> None:  # type: ignore[no-untyped-def]
    """Repeat `call` (which must fail) until the sandbox records that it injected `fault`."""
    for _ in range(200):
        with pytest.raises(ImError):
            await call()
        if calls(db)[-1][2] == fault:
            return
    raise AssertionError(f"{fault} was never injected")


async def test_timeout_after_effect_applies_the_effect_so_retries_must_be_idempotent(
    platform: SandboxPlatform, db: Database
) -> None:
    good = SandboxAdapter(platform)
    bad = faulty(platform, seed=99)

    # create_room: the failed calls before the timeout created nothing, the timeout created the room
    def room_count() -> int:
        return len(platform.rooms())

    async def create() -> None:
        before = room_count()
        try:
            await bad.create_room(spec())
        finally:
            fault = calls(db)[-1][2]
            assert room_count() == before + (1 if fault == "timeout_after_effect" and before == 0 else 0)

    await _until_fault(db, "timeout_after_effect", create)
    assert room_count() == 1
    chat = (await good.create_room(spec())).chat_id  # the retry finds the same chat
    assert room_count() == 1 and platform.rooms()[0].chat_id == chat

    # post_message: the timed-out call did post; the retry returns that message, no duplicate
    await _until_fault(db, "timeout_after_effect", lambda: bad.post_message(chat, "hello", "msg:1"))
    assert message_count(db, "msg:1") == 1
    ref = await good.post_message(chat, "hello", "msg:1")
    assert message_count(db, "msg:1") == 1
    for _ in range(5):  # more faulty retries never duplicate it either
        with pytest.raises(ImError):
            await bad.post_message(chat, "hello", "msg:1")
    assert message_count(db, "msg:1") == 1
    assert [m.id for m in platform.messages(chat)] == [int(ref.message_id)]

    # post_card likewise
    await _until_fault(db, "timeout_after_effect", lambda: bad.post_card(chat, card(1), "card:1"))
    card_ref = await good.post_card(chat, card(1), "card:1")
    assert message_count(db, "card:1") == 1
    assert message_count(db) == 2

    # add_members: the member joined during the timed-out call; the retry keeps a single join
    alice = await good.lookup_user(email="alice@example.com", phone=None)
    assert alice
    await _until_fault(db, "timeout_after_effect", lambda: bad.add_members(chat, [alice]))
    assert platform.is_member(chat, alice)
    assert [r.ok for r in await good.add_members(chat, [alice])] == [True]
    assert [(m.user_id, m.joins) for m in platform.room(chat).members] == [(alice, 1)]

    # update_card: the timed-out update is shown; retrying it is a no-op, not a second edit
    await _until_fault(db, "timeout_after_effect", lambda: bad.update_card(chat, card_ref, card(2)))
    await good.update_card(chat, card_ref, card(2))
    shown = next(m for m in platform.messages(chat) if m.card is not None)
    assert (shown.card_version, shown.edits) == (2, 1)

    # dismiss: done by the timed-out call; the retry succeeds
    await _until_fault(db, "timeout_after_effect", lambda: bad.dismiss_room(chat))
    assert platform.room(chat).state == "dismissed"
    await good.dismiss_room(chat)


async def test_rate_limited_and_server_error_have_no_effect(platform: SandboxPlatform, db: Database) -> None:
    good = SandboxAdapter(platform)
    chat = (await good.create_room(spec())).chat_id
    bad = faulty(platform, seed=5)
    for n in range(30):
        key = f"msg:{n}"
        with pytest.raises(ImError):
            await bad.post_message(chat, "x", key)
        fault = calls(db)[-1][2]
        assert message_count(db, key) == (1 if fault == "timeout_after_effect" else 0), fault


async def test_latency_is_honoured(platform: SandboxPlatform) -> None:
    slow = SandboxAdapter(platform, latency_ms=150)
    started = time.monotonic()
    chat = (await slow.create_room(spec())).chat_id
    await slow.post_message(chat, "hi", "k")
    elapsed = time.monotonic() - started
    assert elapsed >= 0.28  # two calls, 150 ms each (loosely)
    assert elapsed < 20


async def test_a_call_takes_the_latency_and_its_effect_is_stamped_with_the_answer(platform: SandboxPlatform) -> None:
    """Like a remote platform, the sandbox applies the effect while the caller waits: the call
    takes the latency, not the latency plus the effect, and the platform's records say when it
    answered (not earlier)."""
    slow = SandboxAdapter(platform, latency_ms=200)
    chat = (await slow.create_room(spec())).chat_id
    slow_effect = platform.post

    def post(*args, **kw):  # type: ignore[no-untyped-def]
        time.sleep(0.1)  # the platform's own work: within the latency
        return slow_effect(*args, **kw)

    platform.post = post  # type: ignore[method-assign]
    before = datetime.now(UTC)
    started = time.monotonic()
    await slow.post_message(chat, "hi", "k")
    assert 0.19 <= time.monotonic() - started < 0.29
    (message,) = platform.room(chat).messages  # type: ignore[union-attr]
    assert message.created_at >= before + timedelta(milliseconds=199)


# ---- callbacks ---------------------------------------------------------------------------------


def signed(
    payload: dict | bytes,
    *,
    ts: str | None = None,
    secret: str = SECRET,
    drop: tuple[str, ...] = (),
) -> CallbackRequest:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    ts = ts if ts is not None else str(int(time.time()))
    headers = {
        "x-sandbox-timestamp": ts,
        "x-sandbox-signature": sign(secret, ts, raw),
        "content-type": "application/json",
    }
    for h in drop:
        headers.pop(h)
    return CallbackRequest(method="POST", path="/im/sandbox/events", headers=headers, body=raw)


def click(**kw: object) -> dict:
    payload = {
        "type": "action",
        "event_id": "ev-1",
        "chat_id": "C1",
        "user_id": "UALICE",
        "action": "snooze",
        "minutes": 30,
        "card_version": 4,
    }
    payload.update(kw)
    return {k: v for k, v in payload.items() if v is not None}


def test_valid_action_callback(adapter: SandboxAdapter) -> None:
    result = adapter.handle_callback(signed(click()))
    assert result.reply.status == 200 and result.answer() == {"ok": True}
    assert result.events == [
        ActionClicked(
            event_id="ev-1", chat_id="C1", im_user_id="UALICE", action=Action.SNOOZE, minutes=30, card_version=4
        )
    ]
    ack = adapter.handle_callback(signed(click(action="acknowledge", minutes=None, card_version=None))).events[0]
    assert isinstance(ack, ActionClicked)
    assert (ack.action, ack.minutes, ack.card_version) == (Action.ACKNOWLEDGE, None, None)


def test_valid_message_callback(adapter: SandboxAdapter) -> None:
    base = {"type": "message", "event_id": "ev-2", "chat_id": "C1", "message_id": "17", "user_id": "UBOB"}
    asked = adapter.handle_callback(signed(base | {"text": "@warroom what is the impact?"})).events[0]
    assert asked == MessageReceived(
        event_id="ev-2",
        chat_id="C1",
        message_id="17",
        im_user_id="UBOB",
        text="@warroom what is the impact?",
        mentions_bot=True,
    )
    chat = adapter.handle_callback(signed(base | {"text": "looking at the db"})).events[0]
    assert isinstance(chat, MessageReceived) and chat.mentions_bot is False


def test_timestamp_inside_the_window_is_accepted(adapter: SandboxAdapter) -> None:
    for skew in (-(SIGNATURE_WINDOW_SECONDS - 5), SIGNATURE_WINDOW_SECONDS - 5):
        assert adapter.handle_callback(signed(click(), ts=str(int(time.time()) + skew))).events


def _rejected(adapter: SandboxAdapter, request: CallbackRequest) -> CallbackRejected:
    with pytest.raises(CallbackRejected) as e:
        adapter.handle_callback(request)
    return e.value


def _tampered() -> CallbackRequest:
    req = signed(click())
    return req.model_copy(update={"body": req.body.replace(b"snooze", b"close")})


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: signed(click(), secret="wrong"), "bad signature"),
        (_tampered, "bad signature"),
        (lambda: signed(click(), drop=("x-sandbox-signature",)), "missing"),
        (lambda: signed(click(), drop=("x-sandbox-timestamp",)), "missing"),
        (lambda: signed(click(), drop=("x-sandbox-timestamp", "x-sandbox-signature")), "missing"),
        (lambda: signed(click(), ts=str(int(time.time()) - SIGNATURE_WINDOW_SECONDS - 5)), "stale"),
        (lambda: signed(click(), ts=str(int(time.time()) + SIGNATURE_WINDOW_SECONDS + 5)), "stale"),
        (lambda: signed(click(), ts="0"), "stale"),
        (lambda: signed(click(), ts="yesterday"), "not a unix time"),
        (lambda: signed(click(), ts=f"{time.time():.3f}"), "not a unix time"),
    ],
    ids=[
        "wrong-secret",
        "tampered-body",
        "no-signature",
        "no-timestamp",
        "no-headers",
        "stale",
        "future",
        "epoch",
        "word-timestamp",
        "float-timestamp",
    ],
)
def test_unauthenticated_callbacks_are_401(adapter: SandboxAdapter, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    e = _rejected(adapter, make())
    assert e.status == 401
    assert reason in e.reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed"),
        (b"\xff\xfe\x00", "malformed"),
        (b"[1, 2]", "malformed"),
        (b'"action"', "malformed"),
        (b"", "malformed"),
        (click(type="reaction"), "unknown callback type 'reaction'"),
        ({"event_id": "ev"}, "unknown callback type None"),
        (click(chat_id=None), "malformed"),
        (click(user_id=None), "malformed"),
        (click(event_id=None), "malformed"),
        (click(action=None), "malformed"),
        (click(action="explode"), "malformed"),
        (click(minutes="soon"), "malformed"),
        ({"type": "message", "event_id": "e", "chat_id": "C1", "user_id": "U", "text": "hi"}, "malformed"),
    ],
    ids=[
        "bad-json",
        "not-utf8",
        "array",
        "string",
        "empty",
        "unknown-type",
        "no-type",
        "no-chat",
        "no-user",
        "no-event-id",
        "no-action",
        "bad-action",
        "bad-minutes",
        "message-without-id",
    ],
)
def test_malformed_callbacks_are_400(adapter: SandboxAdapter, payload: dict | bytes, reason: str) -> None:
    e = _rejected(adapter, signed(payload))
    assert e.status == 400
    assert reason in e.reason


def test_no_secret_configured_rejects_everything(platform: SandboxPlatform) -> None:
    unconfigured = SandboxAdapter(platform, signing_secret="")
    for req in (signed(click()), signed(click(), secret=""), signed(click(), drop=("x-sandbox-signature",))):
        e = _rejected(unconfigured, req)
        assert e.status == 503
        assert "no signing secret" in e.reason


def test_rate_limit_answers_with_the_wait_until_the_next_call_is_allowed() -> None:
    from warroom.im.sandbox.adapter import _RateLimit

    limit = _RateLimit(10)  # 10 calls a second, bursts of 10
    assert all(limit.take() == 0 for _ in range(10))
    wait = limit.take()
    assert 0 < wait <= 0.1
