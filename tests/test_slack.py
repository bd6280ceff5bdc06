"""Slack war rooms on the real stack: Temporal dev server, worker, SQL store and the HTTP API,
with the real slack-sdk client talking to the fake Slack Web API (checked against Slack's
OpenAPI spec) and Slack's callbacks signed like Slack signs them.

Every assertion about the room is made on the fake Slack's own state (channels, members, messages,
pins, ephemerals), not only on War Room's view of itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import pytest_asyncio

from starters.api.app import create_app
from tests.fakes.slack_api import BOT_USER_ID, SIGNING_SECRET, SPEC_PATH, TOKEN, FakeSlack, running_fake_slack
from warroom import selflink
from warroom.im.slack.blocks import CARD_EVENT_TYPE
from warroom.settings import Settings

from .conftest import eventually

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason=f"Slack's OpenAPI spec not found at {SPEC_PATH}")

API = "/api/v1"
ANN, BOB, CAROL, EVE = "ann@example.com", "bob@example.com", "carol@example.com", "eve@example.com"
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


def slack_settings(tmp_path: Any, fake: FakeSlack, **more: Any) -> Settings:
    """conftest's settings, with Slack as the default platform and its API at the fake (the
    sandbox beside it); `more`: other settings by their variable names."""
    return Settings(
        WARROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'warroom.db'}",
        WARROOM_TASK_QUEUE=f"tq-{uuid.uuid4().hex[:8]}",
        WARROOM_SANDBOX_SIGNING_SECRET="test-secret",
        WARROOM_IM_PLATFORM="slack",
        WARROOM_PUBLIC_URL="https://warroom.example.com",
        WARROOM_SESSION_SECRET="slack-tests",  # self-link offers are signed with it
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_BASE_URL=fake.url,
        WARROOM_SLACK_TIMEOUT=1.5,
        _env_file=None,
        **more,
    )


@pytest.fixture
def settings(tmp_path, fake: FakeSlack) -> Settings:
    return slack_settings(tmp_path, fake)


@pytest_asyncio.fixture(loop_scope="session")
async def http(client, worker, store, settings) -> AsyncIterator[httpx.AsyncClient]:
    async with _api(create_app(settings, client=client, store=store)) as h:
        yield h


def _api(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://warroom.test", timeout=60)


# ---------------------------------------------------------------------------------- helpers


async def create_incident(http: httpx.AsyncClient, *emails: str, title: str = "Checkout is down", **kw: Any) -> str:
    body = {"id": f"s{uuid.uuid4().hex[:8]}", "title": title, "responders": [{"email": e} for e in emails]} | kw
    r = await http.post(f"{API}/incidents", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def incident(http: httpx.AsyncClient, iid: str) -> dict[str, Any]:
    r = await http.get(f"{API}/incidents/{iid}")
    assert r.status_code == 200, r.text
    return r.json()


async def open_room(http: httpx.AsyncClient, iid: str) -> dict[str, Any]:
    r = await http.post(f"{API}/incidents/{iid}/war-room", json={})
    assert r.status_code in (200, 201, 202), r.text
    return await ready_room(http, iid)


async def ready_room(http: httpx.AsyncClient, iid: str, *, timeout: float = 30) -> dict[str, Any]:
    """The room once it is active with its card posted and nobody left pending."""

    async def check() -> dict[str, Any] | None:
        room = (await incident(http, iid))["war_room"]
        done = room["state"] == "active" and room.get("card_handle")
        return room if done and all(m["state"] != "pending" for m in room["members"]) else None

    return await eventually(check, timeout=timeout)


def kinds(store, iid: str) -> list[str]:
    return [e.kind for e in store.timeline.list(iid)]


def entries(store, iid: str, kind: str, n: int) -> list[Any]:
    """The timeline entries of `kind` once there are exactly `n` (the timeline is written after
    the step's IM calls, so a poll must wait for it)."""
    found = [e for e in store.timeline.list(iid) if e.kind == kind]
    return found if len(found) == n else []


def card_of(fake: FakeSlack, channel: str) -> dict[str, Any]:
    [card] = fake.bot_messages(channel, CARD_EVENT_TYPE)
    return card


def card_text(fake: FakeSlack, channel: str) -> str:
    return json.dumps(card_of(fake, channel)["blocks"], ensure_ascii=False)


async def deliver(http: httpx.AsyncClient, fake: FakeSlack, body: bytes, **sign_kw: Any) -> httpx.Response:
    form = body.startswith(b"payload=")
    headers = fake.sign(body, **sign_kw) | {
        "content-type": "application/x-www-form-urlencoded" if form else "application/json"
    }
    return await http.post(f"/im/slack/{'interactions' if form else 'events'}", content=body, headers=headers)


async def click(http: httpx.AsyncClient, fake: FakeSlack, channel: str, user: str, action_id: str) -> httpx.Response:
    body = fake.block_actions(channel, card_of(fake, channel)["ts"], user, action_id)
    started = time.monotonic()
    r = await deliver(http, fake, body)
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 3, "Slack wants the answer within 3 s"
    return r


# ---------------------------------------------------------------------------------- tests


async def test_full_lifecycle_in_a_slack_channel(http, fake, store, client):
    ann, bob = fake.add_user(ANN, "Ann"), fake.add_user(BOB, "Bob")
    started = time.monotonic()
    iid = await create_incident(
        http, ANN, BOB, CAROL, title="Payments API 5xx in EU", severity="high", description="p99 errors"
    )
    room = await open_room(http, iid)
    opened = time.monotonic() - started
    assert room["platform"] == "slack" and room["chat_id"].startswith("G")  # private by default
    ch = fake.channels[room["chat_id"]]
    assert ch.name == room["name"] and ch.name.startswith("inc-") and f"-{iid}-payments-api-5xx-in-eu" in ch.name
    assert f"key=incident-{iid}:room:1]" in ch.purpose
    assert room["join_url"] == f"https://warroom-test.slack.com/archives/{ch.id}"
    assert ch.members == {BOT_USER_ID, ann, bob}
    states = {m["email"]: (m["state"], m["im_user_id"]) for m in room["members"]}
    assert states == {ANN: ("invited", ann), BOB: ("invited", bob), CAROL: ("unlinked", None)}
    card = await eventually(lambda: "not found on Slack" in card_text(fake, ch.id) and card_of(fake, ch.id))
    assert ch.pins == {card["ts"]} and ch.topic.startswith("HIGH · triggered · Payments API 5xx in EU")
    await eventually(lambda: entries(store, iid, "member.unlinked", 1))

    await click(http, fake, ch.id, ann, "wr:acknowledge:")
    await eventually(lambda: "Last: ann@example.com acknowledged" in card_text(fake, ch.id))
    assert (await incident(http, iid))["incident"]["status"] == "acknowledged"
    assert ch.topic.startswith("HIGH · acknowledged")
    [entry] = await eventually(lambda: entries(store, iid, "action.acknowledge", 1))
    assert (entry.actor, entry.source.value, entry.outcome.value) == (ANN, "slack", "ok")

    await click(http, fake, ch.id, bob, "wr:close:")
    await eventually(lambda: "Last: bob@example.com closed" in card_text(fake, ch.id))
    assert "wr:reopen:" in fake.buttons(ch.id, card["ts"])  # a closed incident offers Reopen only
    r = await http.delete(f"{API}/incidents/{iid}/war-room")
    assert r.status_code in (200, 202), r.text
    await eventually(lambda: ch.archived)
    assert any("being dismissed" in m["text"] for m in fake.bot_messages(ch.id))
    assert (await incident(http, iid))["war_room"]["state"] == "dismissed"
    elapsed = time.monotonic() - started

    # exactly once, everywhere
    assert len(fake.channels_named("inc-")) == 1
    assert len(fake.bot_messages(ch.id, CARD_EVENT_TYPE)) == 1
    assert fake.joins[(ch.id, ann)] == 1 and fake.joins[(ch.id, bob)] == 1
    assert kinds(store, iid).count("room.created") == 1 and kinds(store, iid).count("card.posted") == 1
    calls = [c for c in fake.calls if c.outcome == "ok"]
    print(
        f"\nslack lifecycle: room ready in {opened:.2f}s, whole lifecycle {elapsed:.2f}s, "
        f"{len(calls)} Slack calls: {dict(sorted(_count(calls).items()))}"
    )
    assert len(calls) <= 40  # bounded: no call loops (the assistant may post a few messages too)


def _count(calls: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in calls:
        out[c.method] = out.get(c.method, 0) + 1
    return out


async def test_forged_and_stale_callbacks_are_rejected_with_401(http, fake, caplog):
    challenge = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aB", "token": "x"}).encode()
    r = await deliver(http, fake, challenge)
    assert r.status_code == 200 and r.json() == {"challenge": "3eZbrw1aB"}
    caplog.set_level(logging.WARNING, logger="warroom.audit")
    for kw, why in (({"secret": "not-the-secret"}, "bad signature"), ({"timestamp": int(time.time()) - 600}, "stale")):
        r = await deliver(http, fake, challenge, **kw)
        assert r.status_code == 401 and r.json()["error"]["code"] == "rejected", r.text
        assert why in r.json()["error"]["message"]
    r = await http.post("/im/slack/interactions", content=b"payload=%7B%7D")
    assert r.status_code == 401
    audit = [rec.getMessage() for rec in caplog.records if rec.name == "warroom.audit"]
    assert sum("rejected slack callback" in line for line in audit) == 3


async def test_stale_and_unauthorized_clicks_are_refused_in_private(http, fake, store, settings):
    ann, eve = fake.add_user(ANN), fake.add_user(EVE)
    iid = await create_incident(http, ANN)
    ch = fake.channels[(await open_room(http, iid))["chat_id"]]
    ch.members.add(eve)  # eve joined the channel, but she is no responder
    card = card_of(fake, ch.id)
    old_snooze = fake.block_actions(ch.id, card["ts"], ann, "wr:snooze:120")  # rendered for "triggered"

    await click(http, fake, ch.id, eve, "wr:acknowledge:")
    refusal = await eventually(lambda: [e for e in fake.ephemerals if e["user"] == eve])
    assert "not a linked responder" in refusal[0]["text"] and refusal[0]["channel"] == ch.id
    # ephemeral, so eve alone sees it: the offer to link her Slack account to whoever she signs in as
    offer = re.search(r"https://warroom\.example\.com/users/self-link\?t=(\S+)", refusal[0]["text"])
    assert offer and selflink.verify(settings, unquote(offer[1])) == selflink.Claim("slack", eve)
    assert (await incident(http, iid))["incident"]["status"] == "triggered"

    await click(http, fake, ch.id, ann, "wr:acknowledge:")
    await eventually(lambda: "acknowledged" in card_text(fake, ch.id))
    await deliver(http, fake, old_snooze)  # a click on the card as it was before the acknowledgement
    stale = await eventually(lambda: [e for e in fake.ephemerals if e["user"] == ann])
    assert "out of date" in stale[0]["text"] and "self-link" not in stale[0]["text"]  # ann is linked
    assert (await incident(http, iid))["incident"]["status"] == "acknowledged"
    refused = await eventually(lambda: entries(store, iid, "action.refused", 2))  # notices go out first
    assert [(e.actor, e.source.value) for e in refused] == [(eve, "slack"), (ANN, "slack")]
    assert not [m for m in fake.bot_messages(ch.id) if "refused" in m["text"]]  # nothing public


async def test_duplicate_deliveries_are_applied_once(http, fake, store, client, settings):
    ann = fake.add_user(ANN)
    iid = await create_incident(http, ANN)
    ch = fake.channels[(await open_room(http, iid))["chat_id"]]
    body = fake.block_actions(ch.id, card_of(fake, ch.id)["ts"], ann, "wr:acknowledge:")
    headers = fake.sign(body) | {"content-type": "application/x-www-form-urlencoded"}
    for _ in range(3):  # a replay of the very same request
        assert (await http.post("/im/slack/interactions", content=body, headers=headers)).status_code == 200
    retry = fake.sign(body, timestamp=int(time.time()) - 2) | {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-retry-num": "1",
        "x-slack-retry-reason": "http_timeout",
    }
    assert (await http.post("/im/slack/interactions", content=body, headers=retry)).status_code == 200
    # Another API replica (no shared memory): Slack's retry is new to it and goes on to the
    # workflow, which drops it by event id; the first request replayed there with forged retry
    # headers (they are not signed) is dropped before it, by the signature in the shared store.
    spoofed = headers | {"x-slack-retry-num": "1", "x-slack-retry-reason": "http_error"}
    async with _api(create_app(settings, client=client, store=store)) as other:
        for h in (retry, spoofed):
            assert (await other.post("/im/slack/interactions", content=body, headers=h)).status_code == 200
        assert _replayed(await other.get("/metrics")) == 1
    await eventually(lambda: "Last: ann@example.com acknowledged" in card_text(fake, ch.id))
    await click(http, fake, ch.id, ann, "wr:close:")  # processed after all of the above
    await eventually(lambda: "closed" in card_text(fake, ch.id))
    assert kinds(store, iid).count("action.acknowledge") == 1
    assert "action.refused" not in kinds(store, iid)
    assert fake.ephemerals == []


def _replayed(metrics: httpx.Response) -> float:
    line = 'warroom_callbacks_refused_total{platform="slack",reason="replayed"} '
    return sum(float(x.removeprefix(line)) for x in metrics.text.splitlines() if x.startswith(line))


async def test_a_fault_in_every_step_costs_the_room_no_second_attempt(http, fake, client):
    """Each call of the room's one activity fails once, each its own way: every call is repeated
    where it failed, and the activity succeeds in its first attempt."""
    ann, bob = fake.add_user(ANN), fake.add_user(BOB)
    fake.inject("conversations.create", "server_error", status=503)
    fake.inject("users.lookupByEmail", "drop")
    fake.inject("conversations.invite", "server_error", status=500)
    fake.inject("chat.postMessage", "drop_after")  # the card is posted, its answer lost
    fake.inject("pins.add", "ratelimited", retry_after=1)
    iid = await create_incident(http, ANN, BOB)
    room = await open_room(http, iid)
    assert {m["state"] for m in room["members"]} == {"invited"}
    assert fake.channels[room["chat_id"]].members == {ann, bob, BOT_USER_ID}
    assert (
        len(fake.bot_messages(room["chat_id"], CARD_EVENT_TYPE)) == 1 and len(fake.channels[room["chat_id"]].pins) == 1
    )
    faulted = {c.method for c in fake.calls if c.outcome.startswith("fault:")}
    assert faulted == {
        "conversations.create",
        "users.lookupByEmail",
        "conversations.invite",
        "chat.postMessage",
        "pins.add",
    }
    # No retry: the local try succeeded, or (a loaded machine: the repeats above ran past its 3 s)
    # the regular activity did in its first attempt, the room, card and pin still once.
    attempts = await _attempts(client, iid, "im_open_room")
    assert set(attempts) == {1} and len(attempts) <= 2, attempts


async def _attempts(client: Any, iid: str, activity_type: str) -> list[int]:
    """The attempt number of each start of `activity_type` in the incident's workflow history, a
    local activity's (a room's first try) included."""
    scheduled, attempts = set(), []
    async for e in client.get_workflow_handle(f"incident-{iid}").fetch_history_events():
        scheduling = e.activity_task_scheduled_event_attributes
        start = e.activity_task_started_event_attributes
        marker = e.marker_recorded_event_attributes
        if e.HasField("activity_task_scheduled_event_attributes") and scheduling.activity_type.name == activity_type:
            scheduled.add(e.event_id)
        elif e.HasField("activity_task_started_event_attributes") and start.scheduled_event_id in scheduled:
            attempts.append(start.attempt)
        elif e.HasField("marker_recorded_event_attributes") and marker.marker_name == "core_local_activity":
            local = json.loads(marker.details["data"].payloads[0].data)
            if local["activity_type"] == activity_type:
                attempts.append(local["attempt"])
    return attempts


async def test_rate_limited_burst_loses_and_duplicates_nothing(http, fake, store):
    people = [ANN, BOB, CAROL]
    ids = {email: fake.add_user(email) for email in people}
    # Slack-like tiers, tighter than Slack's, plus lost answers and server errors.
    fake.limit("conversations.create", 2, 1.0, retry_after=1)
    fake.limit("users.lookupByEmail", 3, 1.0, retry_after=1)
    fake.limit("conversations.invite", 2, 1.0, retry_after=1)
    fake.limit("chat.postMessage", 2, 1.0, retry_after=1)
    fake.limit("conversations.setPurpose", 3, 1.0, retry_after=1)
    fake.inject("conversations.create", "timeout_after", delay=2.5)  # a room whose answer is lost
    fake.inject("chat.postMessage", "drop_after")  # a card whose answer is lost
    fake.inject("conversations.invite", "server_error", status=503)
    fake.inject("pins.add", "drop")
    n = 6
    started = time.monotonic()
    iids = []
    for i in range(n):
        email = f"dev{i}@example.com"
        ids[email] = fake.add_user(email)
        iids.append(await create_incident(http, *people, email, title=f"Burst incident {i}"))
    rooms = await asyncio.gather(*(open_room(http, iid) for iid in iids))
    elapsed = time.monotonic() - started
    assert fake.count("conversations.create", "fault:ratelimited") + fake.count("chat.postMessage", "fault:ratelimited")
    for iid, room in zip(iids, rooms, strict=True):
        [ch] = [c for c in fake.channels.values() if f"-{iid}-" in c.name]
        assert ch.id == room["chat_id"]
        assert len(fake.bot_messages(ch.id, CARD_EVENT_TYPE)) == 1
        assert len(ch.pins) == 1
        wanted = {ids[e] for e in people} | {ids[f"dev{iids.index(iid)}@example.com"]}
        assert ch.members == wanted | {BOT_USER_ID}
        assert all(fake.joins[(ch.id, u)] == 1 for u in wanted)
        assert all(m["state"] == "invited" for m in room["members"])
        await eventually(lambda: entries(store, iid, "card.posted", 1))  # noqa: B023
        assert kinds(store, iid).count("room.created") == 1
    assert len(fake.channels) == n
    assert fake.count("conversations.create", "name_taken") >= 1  # the room whose answer was lost, recognised
    assert fake.count("chat.postMessage", "fault:drop_after") == 1  # the card whose answer was lost, found again
    limited = sum(1 for c in fake.calls if c.outcome == "fault:ratelimited")
    print(f"\nslack burst: {n} rooms in {elapsed:.2f}s through {limited} rate-limited answers, {len(fake.calls)} calls")


async def test_roles_from_a_slack_channel(http, fake, store):
    """`@warroom lead @bob` in a Slack channel: Bob (a member, by his Slack mention) leads, the
    timeline says Ann gave it from Slack, and the confirmation is text that pings nobody."""
    ann, bob = fake.add_user(ANN, "Ann"), fake.add_user(BOB, "Bob")
    iid = await create_incident(http, ANN, BOB)
    channel = (await open_room(http, iid))["chat_id"]

    async def reply(words: str) -> str:
        def check() -> str | None:
            said = [m["text"] for m in fake.bot_messages(channel) if words in m.get("text", "")]
            return said[-1] if said else None

        return await eventually(check, timeout=30)

    body = fake.user_message(channel, ann, f"<@{BOT_USER_ID}> lead <@{bob}>", event_type="app_mention")
    assert (await deliver(http, fake, body)).status_code == 200
    assert await reply("Lead:") == f"Lead: {BOB}, set by {ANN}."
    body = fake.user_message(channel, bob, f"<@{BOT_USER_ID}> comms <!channel>", event_type="app_mention")
    assert (await deliver(http, fake, body)).status_code == 200
    refusal = await reply("Comms not changed")
    assert "<!" not in refusal and "<@" not in refusal, refusal
    assigned = await eventually(lambda: entries(store, iid, "role.assigned", 2))
    assert [(e.actor, e.source.value, e.outcome.value) for e in assigned] == [
        (ANN, "slack", "ok"),
        (BOB, "slack", "refused"),
    ]
    assert assigned[0].detail == f"lead: {BOB}"
