"""The Slack adapter with the real slack-sdk client against the fake Slack Web API (which checks
every call against Slack's OpenAPI spec): naming, exactly-once creation and posting, error
mapping, user cache, invitations, the card, history paging, callbacks, budgets, `doctor`."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from typer.testing import CliRunner

from starters.cli import app as cli_app
from tests.fakes.slack_api import (
    BOT_USER_ID,
    SIGNING_SECRET,
    SPEC_PATH,
    TOKEN,
    FakeSlack,
    running_fake_slack,
)
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
from warroom.im.patience import patient_until
from warroom.im.slack import naming
from warroom.im.slack.adapter import SlackAdapter
from warroom.im.slack.blocks import CARD_EVENT_TYPE
from warroom.im.slack.limits import Budget, TokenBucket
from warroom.models import Action

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason=f"Slack's OpenAPI spec not found at {SPEC_PATH}")

# Arguments newer than the 2021 spec that the adapter may send (all on docs.slack.dev today).
NEWER_ARGS = {"metadata", "include_all_metadata", "force", "unfurl_links", "unfurl_media"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fake_server() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack() as fake:
        yield fake


@pytest_asyncio.fixture(loop_scope="session")
async def fake(fake_server: FakeSlack) -> AsyncIterator[FakeSlack]:
    fake_server.reset()
    yield fake_server
    assert fake_server.spec_violations == []
    for method, args in fake_server.unknown_args.items():
        assert args <= NEWER_ARGS, f"{method} got arguments Slack's spec does not know: {args - NEWER_ARGS}"


@pytest_asyncio.fixture(loop_scope="session")
async def slack(fake: FakeSlack) -> AsyncIterator[SlackAdapter]:
    adapter = SlackAdapter(token=TOKEN, signing_secret=SIGNING_SECRET, base_url=fake.url, timeout=1.0, rate_scale=5)
    yield adapter
    await adapter.aclose()


def spec(incident_id: str = "abc123", generation: int = 1, title: str = "Checkout errors in EU") -> RoomSpec:
    return RoomSpec(
        incident_id=incident_id,
        idempotency_key=f"incident-{incident_id}:room:{generation}",
        name=f"inc-{incident_id} {title}"[:80],
        url=f"http://warroom.example/api/v1/incidents/{incident_id}",
    )


def card(version: int = 1, status: str = "triggered", **kw) -> StatusCard:
    return StatusCard.model_validate(
        {
            "incident_id": "abc123",
            "title": "Checkout errors",
            "severity": "high",
            "status": status,
            "version": version,
            "members": [CardMember(name="Ann", state="invited"), CardMember(name="Carol", state="unlinked")],
            "last_action": "",
            "url": "http://warroom.example/api/v1/incidents/abc123",
            "buttons": [
                CardButton(action=Action.ACKNOWLEDGE, label="Acknowledge"),
                CardButton(action=Action.SNOOZE, label="Snooze 2h", minutes=120),
                CardButton(action=Action.CLOSE, label="Close"),
            ],
        }
        | kw
    )


def request(fake: FakeSlack, body: bytes, *, path: str = "/im/slack/events", **sign_kw) -> CallbackRequest:
    ctype = "application/x-www-form-urlencoded" if body.startswith(b"payload=") else "application/json"
    headers = {k.lower(): v for k, v in fake.sign(body, **sign_kw).items()} | {"content-type": ctype}
    return CallbackRequest(method="POST", path=path, headers=headers, body=body)


# ------------------------------------------------------------------------------------ naming


def test_channel_names_follow_slack_rules_and_are_deterministic():
    created = datetime(2025, 3, 7, 23, 59, tzinfo=UTC)
    name = naming.channel_name(
        naming.DEFAULT_TEMPLATE, incident_id="7f3a9c01", title="Checkout 5xx — EU/West (Café)!", created=created
    )
    assert name == "inc-20250307-7f3a9c01-checkout-5xx-eu-west-cafe"
    long = naming.channel_name(naming.DEFAULT_TEMPLATE, incident_id="Abc.123", title="x" * 200, created=created)
    assert len(long) == 80 and long.startswith("inc-20250307-abc-123-x")  # the slug is cut, never the id
    assert naming.channel_name("inc-{id}-{slug}", incident_id="a1", title="数据库故障", created=None) == "inc-a1"
    assert naming.channel_name("War-Room_{id}", incident_id="A1", title="", created=None) == "war-room_a1"
    for n in naming.candidates(long):
        assert len(n) <= 80 and naming.clean(n) == n
    assert naming.candidates(long) == naming.candidates(long)
    assert len(set(naming.candidates(long))) == 10
    with pytest.raises(ValueError):
        naming.check_template("inc-{slug}")  # no id: names would collide
    with pytest.raises(ValueError):
        naming.check_template("inc-{id}-{nope}")


# ------------------------------------------------------------------------------------ rooms


async def test_create_room_sets_marker_and_is_idempotent(fake, slack):
    ref = await slack.create_room(spec())
    ch = fake.channels[ref.chat_id]
    assert ch.is_private and ch.name == "inc-abc123-checkout-errors-in-eu"
    assert "[warroom incident=abc123 key=incident-abc123:room:1]" in ch.purpose
    assert ref.join_url == f"https://warroom-test.slack.com/archives/{ref.chat_id}"
    again = await slack.create_room(spec())  # a retry: name_taken, recognised by the marker
    assert again.chat_id == ref.chat_id
    assert len(fake.channels) == 1
    assert fake.count("conversations.create", "name_taken") == 1


async def test_create_room_recovers_when_the_answer_is_lost(fake, slack):
    fake.inject("conversations.create", "timeout_after", delay=2.0)
    with pytest.raises(TransientImError):
        await slack.create_room(spec("lost1"))
    # The channel exists, without its purpose marker yet; the retry adopts it (our bot made it).
    [ch] = fake.channels.values()
    assert ch.purpose == ""
    ref = await slack.create_room(spec("lost1"))
    assert ref.chat_id == ch.id and len(fake.channels) == 1
    assert "key=incident-lost1:room:1" in ch.purpose

    fake.inject("conversations.create", "drop_after")
    with pytest.raises(TransientImError):
        await slack.create_room(spec("lost2"))
    assert (await slack.create_room(spec("lost2"))).chat_id == fake.channels_named("inc-lost2")[0].id
    assert len(fake.channels_named("inc-lost2")) == 1


async def test_name_taken_by_others_picks_the_next_name_and_reopen_unarchives(fake, slack):
    fake.add_channel("inc-abc123-checkout-errors-in-eu", creator="U9OTHER")  # somebody else's, visible
    fake.add_channel("inc-abc123-checkout-errors-in-eu-2", private=True, creator="U9OTHER")  # invisible to us
    ref = await slack.create_room(spec())
    assert ref.name == "inc-abc123-checkout-errors-in-eu-3"
    # The room is dismissed (archived); the incident is reopened and a new room wanted: same channel.
    await slack.dismiss_room(ref.chat_id)
    await slack.dismiss_room(ref.chat_id)  # already archived: success
    assert fake.channels[ref.chat_id].archived
    again = await slack.create_room(spec(generation=2))
    assert again.chat_id == ref.chat_id and not fake.channels[ref.chat_id].archived
    assert "key=incident-abc123:room:2" in fake.channels[ref.chat_id].purpose
    # When Slack refuses to unarchive (a workspace policy), the room gets the next free name.
    await slack.dismiss_room(ref.chat_id)
    fake.inject("conversations.unarchive", "error", code="user_is_bot")
    third = await slack.create_room(spec(generation=3))
    assert third.name == "inc-abc123-checkout-errors-in-eu-4" and fake.channels[ref.chat_id].archived
    # An archived channel marked for another incident is never taken over.
    other = await slack.create_room(spec("zzz9", title="Other"))
    await slack.dismiss_room(other.chat_id)
    fake.channels[other.chat_id].name = "inc-yyy8-other"
    fresh = await slack.create_room(spec("yyy8", title="Other"))
    assert fresh.chat_id != other.chat_id and fresh.name == "inc-yyy8-other-2"


# ------------------------------------------------------------------------------------ errors


async def test_slack_failures_become_typed_errors(fake, slack):
    fake.inject("users.lookupByEmail", "ratelimited", retry_after=7)
    with pytest.raises(RateLimited) as rl:
        await slack.lookup_user(email="ann@example.com", phone=None)
    assert rl.value.retry_after == 7
    # the method's budget is now blocked for Retry-After: a second call does not hit Slack
    calls = len(fake.calls)
    with pytest.raises(RateLimited):
        await slack.lookup_user(email="ann@example.com", phone=None)
    assert len(fake.calls) == calls
    slack.api.budget = Budget(scale=5)

    fake.inject("conversations.create", "server_error", status=500)
    with pytest.raises(TransientImError):
        await slack.create_room(spec("e1"))
    fake.inject("conversations.create", "drop")
    with pytest.raises(TransientImError):
        await slack.create_room(spec("e1"))
    assert fake.channels == {}

    # slack-sdk repeats nothing by itself: the activity repeats the adapter's call (activities/in_place.py).
    ann = fake.add_user("ann@example.com")
    fake.inject("users.lookupByEmail", "server_error", status=503)
    with pytest.raises(TransientImError):
        await slack.lookup_user(email="ann@example.com", phone=None)
    assert await slack.lookup_user(email="ann@example.com", phone=None) == ann
    assert fake.count("users.lookupByEmail", None) == 3

    fake.scopes.discard("groups:write")
    with pytest.raises(PermanentImError) as perm:
        await slack.create_room(spec("e2"))
    assert perm.value.code == "missing_scope"
    assert "groups:write" in str(perm.value) and "warroom doctor" in str(perm.value)
    fake.scopes.add("groups:write")

    bad = SlackAdapter(token="xoxb-wrong", signing_secret=SIGNING_SECRET, base_url=fake.url, timeout=1.0)
    with pytest.raises(PermanentImError) as auth:
        await bad.create_room(spec("e3"))
    assert auth.value.code == "invalid_auth" and "SLACK_BOT_TOKEN" in str(auth.value)
    await bad.aclose()

    ref = await slack.create_room(spec("e4"))
    fake.channels[ref.chat_id].members.discard(BOT_USER_ID)
    fake.channels[ref.chat_id].is_private = False
    with pytest.raises(PermanentImError) as nic:
        await slack.post_message(ref.chat_id, "hello", "k")
    assert nic.value.code == "not_in_channel" and "/invite" in str(nic.value)


# ------------------------------------------------------------------------------------ people


async def test_user_lookup_is_cached_and_concurrent_lookups_share_a_call(fake, slack):
    ann = fake.add_user("ann@example.com")
    found = await asyncio.gather(*(slack.lookup_user(email="Ann@Example.com", phone=None) for _ in range(5)))
    assert found == [ann] * 5
    assert await slack.lookup_user(email="nobody@example.com", phone=None) is None
    assert await slack.lookup_user(email="nobody@example.com", phone=None) is None
    assert await slack.lookup_user(email=None, phone="+15551234567") is None  # Slack has no phone lookup
    assert fake.count("users.lookupByEmail", "ok") == 1
    assert fake.count("users.lookupByEmail", "users_not_found") == 1
    slack.users.clock = lambda: time.monotonic() + 3601  # the cache expires
    assert await slack.lookup_user(email="ann@example.com", phone=None) == ann
    assert fake.count("users.lookupByEmail", "ok") == 2


async def test_invites_are_batched_and_already_in_channel_is_success(fake, slack):
    ann, bob, gone = fake.add_user("ann@x.io"), fake.add_user("bob@x.io"), fake.add_user("gone@x.io", deleted=True)
    ref = await slack.create_room(spec())
    results = await slack.add_members(ref.chat_id, [ann, bob])
    assert [r.ok for r in results] == [True, True] and fake.count("conversations.invite") == 1
    again = await slack.add_members(ref.chat_id, [ann, bob, gone])
    assert {r.im_user_id: r.ok for r in again} == {ann: True, bob: True, gone: False}
    assert "user_not_found" in next(r.detail for r in again if r.im_user_id == gone)
    assert fake.joins[(ref.chat_id, ann)] == 1 and fake.joins[(ref.chat_id, bob)] == 1
    await slack.remove_members(ref.chat_id, [bob, bob, gone])
    assert bob not in fake.channels[ref.chat_id].members


# ------------------------------------------------------------------------------------ the card


async def test_card_posted_once_pinned_updated_in_order(fake, slack):
    ref = await slack.create_room(spec())
    fake.inject("chat.postMessage", "drop_after")  # posted, but the answer is lost
    with pytest.raises(TransientImError):
        await slack.post_card(ref.chat_id, card(1), "incident-abc123:card:1")
    msg = await slack.post_card(ref.chat_id, card(1), "incident-abc123:card:1")  # the retry finds it
    cards = fake.bot_messages(ref.chat_id, CARD_EVENT_TYPE)
    assert [m["ts"] for m in cards] == [msg]
    await slack.pin_card(ref.chat_id, msg)  # the core pins it (the platform's capabilities say it can)
    assert fake.channels[ref.chat_id].pins == {msg}
    buttons = fake.buttons(ref.chat_id, msg)
    assert set(buttons) == {"wr:acknowledge:", "wr:snooze:120", "wr:close:", "wr-open"}
    assert json.loads(buttons["wr:snooze:120"]["value"]) == {"a": "snooze", "v": 1, "i": "abc123", "m": 120}
    assert buttons["wr-open"]["url"].endswith("/incidents/abc123")
    assert fake.channels[ref.chat_id].topic.startswith("HIGH · triggered · Checkout errors")
    text = json.dumps(cards[0]["blocks"])
    assert "not found on Slack" in text  # the unlinked responder is shown

    await slack.update_card(ref.chat_id, msg, card(3, "acknowledged", last_action="ann acknowledged"))
    await slack.update_card(ref.chat_id, msg, card(2, "triggered"))  # late and older: skipped
    shown = fake.channels[ref.chat_id].message(msg)
    assert "card v3" in json.dumps(shown["blocks"]) and "ann acknowledged" in json.dumps(shown["blocks"])
    assert fake.count("chat.update") == 1
    assert fake.channels[ref.chat_id].topic.startswith("HIGH · acknowledged")
    topic_calls = fake.count("conversations.setTopic")
    await slack.update_card(ref.chat_id, msg, card(4, "acknowledged", last_action="more"))
    assert fake.count("conversations.setTopic") == topic_calls  # same topic: no new call
    # a fresh process (memory lost) finds the same card instead of posting another
    fresh = SlackAdapter(token=TOKEN, signing_secret=SIGNING_SECRET, base_url=fake.url)
    assert await fresh.post_card(ref.chat_id, card(1), "incident-abc123:card:1") == msg
    await fresh.aclose()
    assert len(fake.bot_messages(ref.chat_id, CARD_EVENT_TYPE)) == 1


async def test_the_cards_impact_section_shows_its_line_literally(fake, slack):
    """The impact line comes from labels and alerts (anyone's text): shown, never a ping or a link."""
    ref = await slack.create_room(spec())
    hostile = "Services <!channel> pay*ments*, <https://evil.example|log in> · Users @here & <@U0000001>"
    msg = await slack.post_card(ref.chat_id, card(1, impact=hostile), "card-key")
    blocks = fake.channels[ref.chat_id].message(msg)["blocks"]
    [section] = [b for b in blocks if b.get("block_id") == "wr-impact"]
    shown = section["text"]["text"]
    assert shown.startswith("*Impact*\n") and "&lt;!channel&gt;" in shown
    assert "&lt;https://evil.example|log in&gt;" in shown
    assert "<!" not in shown and "<http" not in shown and "<@" not in shown
    await slack.update_card(ref.chat_id, msg, card(2))
    assert not [b for b in fake.channels[ref.chat_id].message(msg)["blocks"] if b.get("block_id") == "wr-impact"]


async def test_messages_notices_and_history(fake, slack):
    ann = fake.add_user("ann@x.io")
    ref = await slack.create_room(spec())
    await slack.add_members(ref.chat_id, [ann])
    await slack.post_card(ref.chat_id, card(1), "card-key")
    first = await slack.post_message(ref.chat_id, "hello", "msg-1", mentions=[Mention(im_user_id="U0000001")])
    assert (await slack.post_message(ref.chat_id, "hello", "msg-1")) == first
    assert fake.channels[ref.chat_id].message(first.message_id)["text"] == "<@U0000001> hello"
    hostile = await slack.post_message(ref.chat_id, "<!channel> <https://evil.example|Re-login> & <U0000001>", "m-2")
    assert fake.channels[ref.chat_id].message(hostile.message_id)["text"] == (
        "&lt;!channel&gt; &lt;https://evil.example|Re-login&gt; &amp; &lt;U0000001&gt;"  # text pings nobody
    )
    await slack.post_notice(ref.chat_id, ann, "acknowledge refused: out of date.", "n-1")
    await slack.post_notice(ref.chat_id, ann, "acknowledge refused: out of date.", "n-1")
    assert [e["user"] for e in fake.ephemerals] == [ann]
    stranger = fake.add_user("stranger@x.io")  # not in the channel: falls back to a normal post
    await slack.post_notice(ref.chat_id, stranger, "refused", "n-2")
    assert any(m["text"] == f"<@{stranger}> refused" for m in fake.bot_messages(ref.chat_id))

    since = datetime.now(UTC)
    await asyncio.sleep(0.01)
    for i in range(450):
        fake.user_message(ref.chat_id, ann, f"line {i}")
    history = await slack.fetch_history(ref.chat_id)
    assert [m.text for m in history if m.author == ann] == [f"line {i}" for i in range(450)]
    assert not any("Checkout errors" in m.text for m in history)  # the card is not a chat message
    assert all(a.at <= b.at for a, b in itertools.pairwise(history))
    assert fake.count("conversations.history") >= 3  # paged
    recent = await slack.fetch_history(ref.chat_id, since=since)
    assert len(recent) == 450


# ------------------------------------------------------------------------------------ inbound


async def test_callbacks_are_verified_then_parsed(fake, slack):
    ann = fake.add_user("ann@x.io")
    ref = await slack.create_room(spec())
    msg = await slack.post_card(ref.chat_id, card(5), "card-key")
    body = fake.block_actions(ref.chat_id, msg, ann, "wr:snooze:120")
    [click] = slack.handle_callback(request(fake, body, path="/im/slack/interactions")).events
    assert isinstance(click, ActionClicked)
    assert (click.chat_id, click.im_user_id, click.action, click.minutes, click.card_version) == (
        ref.chat_id,
        ann,
        Action.SNOOZE,
        120,
        5,
    )
    again = request(fake, body)
    replay = slack.handle_callback(again)  # the API drops it by its key; the event id cache too
    assert replay.events == [] and replay.replay_key == again.headers["x-slack-signature"]
    assert slack.handle_callback(request(fake, body, timestamp=int(time.time()) - 5)).events == []  # same event id

    for bad, reason in (
        (request(fake, body, secret="forged"), "bad signature"),
        (request(fake, body, timestamp=int(time.time()) - 301), "stale"),
        (CallbackRequest(method="POST", path="/im/slack/events", headers={}, body=body), "missing"),
    ):
        with pytest.raises(CallbackRejected) as rej:
            slack.handle_callback(bad)
        assert rej.value.status == 401 and reason in rej.value.reason
    tampered = request(fake, body)
    tampered.body = body.replace(b"snooze", b"close_")
    with pytest.raises(CallbackRejected):
        slack.handle_callback(tampered)

    link = fake.block_actions(ref.chat_id, msg, ann, "wr-open")
    assert slack.handle_callback(request(fake, link)).events == []  # the link button is not an action

    challenge = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"}).encode()
    assert slack.handle_callback(request(fake, challenge)).answer() == {"challenge": "c-123"}

    mention = fake.user_message(ref.chat_id, ann, f"<@{BOT_USER_ID}> what changed?")
    [m] = slack.handle_callback(request(fake, mention)).events
    assert isinstance(m, MessageReceived) and m.mentions_bot and m.im_user_id == ann
    as_app_mention = json.loads(mention)
    as_app_mention["event"]["type"], as_app_mention["event_id"] = "app_mention", "Ev-other"
    assert slack.handle_callback(request(fake, json.dumps(as_app_mention).encode())).events == []  # same message
    retry = request(fake, mention)
    retry.headers |= {"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"}
    assert slack.handle_callback(retry).events == []  # we were slow, but we had it
    retry.headers["x-slack-retry-reason"] = "http_error"  # our answer was an error: let it through again
    assert [e.event_id for e in slack.handle_callback(retry).events] == [m.event_id]

    [gone] = slack.handle_callback(request(fake, fake.archive_by_user(ref.chat_id, ann))).events
    assert isinstance(gone, RoomGone) and gone.chat_id == ref.chat_id and gone.im_user_id == ann
    ours = fake.archive_by_user(ref.chat_id, BOT_USER_ID)
    assert slack.handle_callback(request(fake, ours)).events == []  # our own dismissal

    for junk in (
        b"{not json",
        b"[1, 2]",
        json.dumps({"type": "event_callback", "event": ["not", "an", "object"]}).encode(),
        b"payload=" + json.dumps({"type": "block_actions", "user": "U1", "actions": [{}]}).encode(),
        b"payload=%5B%5D",
    ):
        with pytest.raises(CallbackRejected) as malformed:
            slack.handle_callback(request(fake, junk))
        assert malformed.value.status == 400, junk


# ------------------------------------------------------------------------------------ budgets


async def test_budget_spaces_calls_and_hands_long_waits_to_temporal():
    now = [0.0]
    budget = Budget(max_wait=5.0, clock=lambda: now[0])
    waits = [budget.reserve("conversations.create") for _ in range(10)]  # Tier 2 (20/min): a burst of 10
    assert waits == [0.0] * 10
    with pytest.raises(RateLimited) as rl:  # the next token comes in 6 s: longer than max_wait
        budget.reserve("conversations.create")
    assert rl.value.retry_after == pytest.approx(6.0)
    now[0] += 3
    assert budget.reserve("conversations.create") == pytest.approx(3.0)  # short waits are slept
    with patient_until(time.monotonic() + 10, "incident-a/1"):  # an activity attempt with 10 s left
        assert budget.reserve("conversations.create") == pytest.approx(9.0)  # waits its turn
    with patient_until(time.monotonic() + 10, "incident-b/1"):
        with pytest.raises(RateLimited) as rl:  # its turn is in 15 s: the attempt fails, the turn is kept
            budget.reserve("conversations.create")
        assert rl.value.retry_after == pytest.approx(15.0)
    with pytest.raises(RateLimited) as rl:
        budget.reserve("conversations.create")
    assert rl.value.retry_after == pytest.approx(21.0)  # a newcomer queues behind the kept turn
    now[0] += 15
    with patient_until(time.monotonic() + 10, "incident-b/1"):  # the retry, back after the delay
        assert budget.reserve("conversations.create") == 0.0  # takes its turn, not a newcomer's
    with pytest.raises(RateLimited) as rl:
        budget.reserve("conversations.create")
    assert rl.value.retry_after == pytest.approx(6.0)
    now[0] += 60
    assert budget.reserve("conversations.create") == 0.0
    # 1 message per second per channel, after a burst of 3
    posts = [budget.reserve("chat.postMessage", "C1") for _ in range(5)]
    assert posts[:3] == [0, 0, 0] and posts[3] == pytest.approx(1.0) and posts[4] == pytest.approx(2.0)
    assert budget.reserve("chat.postMessage", "C2") == 0.0  # another channel has its own
    budget.blocked("chat.update", 3)
    assert budget.reserve("chat.update") == pytest.approx(3.0)
    bucket = TokenBucket(rate=1.0, capacity=2, clock=lambda: now[0])
    assert bucket.wait() == 0.0
    bucket.take()
    bucket.take()
    assert bucket.wait() == pytest.approx(1.0)


# ------------------------------------------------------------------------------------ doctor


def _doctor(env: dict[str, str]) -> tuple[int, dict]:
    result = CliRunner().invoke(cli_app, ["doctor", "--platform", "slack", "--json"], env=env)
    return result.exit_code, json.loads(result.stdout)


async def test_doctor_names_missing_scopes_and_settings(fake, tmp_path):
    env = {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_BASE_URL": fake.url,
        "WARROOM_PUBLIC_URL": "https://warroom.example.com",
        "WARROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'doctor.db'}",
    }
    code, report = await asyncio.to_thread(_doctor, env)
    assert code == 0 and report["ok"], report
    assert {c["name"] for c in report["checks"]} >= {"auth.test", "scope groups:write", "signing secret", "events URL"}

    fake.scopes -= {"pins:write", "groups:history"}
    code, report = await asyncio.to_thread(
        _doctor, env | {"SLACK_SIGNING_SECRET": "", "WARROOM_PUBLIC_URL": "http://localhost:8000"}
    )
    failed = {c["name"]: c for c in report["checks"] if not c["ok"]}
    assert code == 1 and not report["ok"]
    assert set(failed) == {
        "scope pins:write",
        "scope groups:history",
        "signing secret",
        "events URL",
        "interactivity URL",
    }
    assert "OAuth & Permissions" in failed["scope pins:write"]["fix"]

    code, report = await asyncio.to_thread(_doctor, env | {"SLACK_BOT_TOKEN": "xoxb-wrong"})
    failed = {c["name"]: c for c in report["checks"] if not c["ok"]}
    assert code == 1 and "invalid_auth" in failed["auth.test"]["detail"]


async def test_a_hostile_title_reaches_slack_as_text_in_the_card_fallback_and_the_topic(fake, slack):
    ref = await slack.create_room(spec())
    hostile = card(1).model_copy(update={"title": "<!channel> <https://evil.example|Re-login> & co"})
    handle = await slack.post_card(ref.chat_id, hostile, "hostile-card")
    text = fake.channels[ref.chat_id].message(handle)["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt; &lt;https://evil.example|Re-login&gt; &amp; co" in text
    assert (
        "<!channel>" not in fake.channels[ref.chat_id].topic and "&lt;!channel&gt;" in fake.channels[ref.chat_id].topic
    )
