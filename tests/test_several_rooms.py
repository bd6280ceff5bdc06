"""One incident, rooms on two platforms at once: a Slack channel (the fake Slack Web API through
slack-sdk) and a sandbox room, on the real stack (Temporal dev server, worker, SQL store, the
HTTP API). Both rooms keep their members equal to the responders and show the same card; a click
in either is authorized against that room's members; both are dismissed together. Assertions
are made on each platform's own state."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from starters.api.app import create_app
from tests.fakes.slack_api import FakeSlack
from warroom.im.sandbox.platform import SandboxPlatform
from warroom.settings import Settings
from warroom.store import Store

from . import test_slack
from .conftest import eventually
from .serving import serving
from .test_api import signed
from .test_browser import needs_chromium
from .test_console import browser, new_page, sign_in
from .test_slack import ANN, API, BOB, CAROL, card_text, create_incident, incident, kinds, slack_settings

pytestmark = test_slack.pytestmark  # Slack's spec is test data
fake_server, fake, http = test_slack.fake_server, test_slack.fake, test_slack.http  # its fixtures
browser = browser  # the console tests' Playwright browser (a fixture)
CONSOLE_TOKEN = "console-token-for-tests"

AM_TOKEN = "am-token"
DAVE, LEAD = "dave@example.com", "lead@example.com"
RULES = """
groups:
  checkout-leads: [lead@example.com]
rules:
  - name: search pages stay where they are
    match: {source: alertmanager, services: [search]}
  - name: checkout pages get a sandbox and a Slack room
    match: {source: alertmanager, services: [checkout]}
    room: {platforms: [sandbox, slack], name: "{severity} {label:service} {id}", invite_groups: [checkout-leads]}
"""


@pytest.fixture
def settings(tmp_path: Path, fake: FakeSlack) -> Settings:
    """Slack as the default platform (its API at the fake), the sandbox beside it, and a rule
    that opens a room on both."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return slack_settings(tmp_path, fake, WARROOM_ALERTMANAGER_TOKEN=AM_TOKEN, WARROOM_RULES_FILE=str(rules))


async def rooms(http: httpx.AsyncClient, iid: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    got = await incident(http, iid)
    return got["war_room"], got["more_war_rooms"]


def invited(room: dict[str, Any]) -> set[str]:
    return {m["email"] for m in room["members"] if m["state"] == "invited"}


async def both_ready(http: httpx.AsyncClient, iid: str, people: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Slack room and the sandbox room, once both are active with their cards and `people`."""

    async def check() -> tuple[dict[str, Any], dict[str, Any]] | None:
        first, more = await rooms(http, iid)
        if len(more) != 1:
            return None
        ready = all(r["state"] == "active" and r["card_handle"] and invited(r) == people for r in (first, *more))
        return (first, more[0]) if ready else None

    return await eventually(check, timeout=30)


def slack_members(fake: FakeSlack, channel: str) -> set[str]:
    return {fake.users[u].email for u in fake.channels[channel].members if not fake.users[u].is_bot}


def sandbox_card(sandbox: SandboxPlatform, chat_id: str) -> dict[str, Any]:
    [card] = [m.card for m in sandbox.room(chat_id).messages if m.card]
    return card


def sandbox_members(sandbox: SandboxPlatform, chat_id: str) -> set[str]:
    return {m.email or "" for m in sandbox.room(chat_id).members if m.state == "joined"}


async def test_an_incident_with_a_slack_room_and_a_sandbox_room(
    http: httpx.AsyncClient, fake: FakeSlack, store: Store, settings: Settings
) -> None:
    fake.add_user(ANN, "Ann"), fake.add_user(BOB, "Bob"), fake.add_user(CAROL, "Carol")
    iid = await create_incident(http, ANN, BOB, title="Checkout is down")
    r = await http.post(f"{API}/incidents/{iid}/war-room", json={})
    assert r.status_code in (201, 202) and r.json()["platform"] == "slack", r.text
    # another platform: one more room, not a refusal; asked again: the same rooms
    r = await http.post(f"{API}/incidents/{iid}/war-room", json={"platform": "sandbox"})
    assert r.status_code in (201, 202) and r.json()["platform"] == "sandbox", r.text
    slack, box = await both_ready(http, iid, {ANN, BOB})
    for platform, room in (("sandbox", box), ("slack", slack)):
        again = await http.post(f"{API}/incidents/{iid}/war-room", json={"platform": platform})
        assert again.status_code == 200 and again.json()["chat_id"] == room["chat_id"], again.text

    metrics = (await http.get("/metrics")).text.splitlines()
    for platform in ("slack", "sandbox"):  # the store's gauges count every current room
        assert f'warroom_rooms{{platform="{platform}",state="active"}} 1' in metrics

    sandbox = SandboxPlatform(store.db)
    channel = fake.channels[slack["chat_id"]]
    assert slack_members(fake, slack["chat_id"]) == {ANN, BOB}
    assert sandbox_members(sandbox, box["chat_id"]) == {ANN, BOB}
    assert sandbox_card(sandbox, box["chat_id"])["status"] == "triggered"

    # Ann acknowledges on the sandbox room's card: applied once, as Ann, from the sandbox
    ann = next(m["im_user_id"] for m in box["members"] if m["email"] == ANN)
    click = {"type": "action", "event_id": "evt-ack", "chat_id": box["chat_id"], "user_id": ann,
             "action": "acknowledge", "card_version": 1}  # fmt: skip
    raw, headers = signed(settings, click)
    assert (await http.post("/im/sandbox/events", content=raw, headers=headers)).status_code == 200
    await eventually(lambda: _status(http, iid, "acknowledged"))
    # both cards show it
    await eventually(lambda: sandbox_card(sandbox, box["chat_id"])["status"] == "acknowledged")
    await eventually(lambda: "acknowledged" in card_text(fake, slack["chat_id"]).lower())
    entries = store.timeline.list(iid)
    [ack] = [e for e in entries if e.kind == "action.acknowledge"]
    assert (ack.actor, ack.source.value) == (ANN, "sandbox")

    # Ann's Slack user id clicking in the sandbox room is nobody there: refused
    slack_ann = next(m["im_user_id"] for m in slack["members"] if m["email"] == ANN)
    stranger = click | {"event_id": "evt-close", "user_id": slack_ann, "action": "close"}
    raw, headers = signed(settings, stranger)
    assert (await http.post("/im/sandbox/events", content=raw, headers=headers)).status_code == 200
    await eventually(lambda: "action.refused" in kinds(store, iid))

    # a new responder is invited into both rooms
    r = await http.put(
        f"{API}/incidents/{iid}/responders", json={"responders": [{"email": e} for e in (ANN, BOB, CAROL)]}
    )
    assert r.status_code == 200, r.text
    slack, box = await both_ready(http, iid, {ANN, BOB, CAROL})
    assert sandbox_members(sandbox, box["chat_id"]) == {ANN, BOB, CAROL}
    assert slack_members(fake, slack["chat_id"]) == {ANN, BOB, CAROL}

    # closed and dismissed: both rooms go
    r = await http.post(f"{API}/incidents/{iid}/actions", json={"action": "close", "actor": BOB})
    assert r.status_code == 200, r.text
    r = await http.delete(f"{API}/incidents/{iid}/war-room")
    assert r.status_code in (200, 202), r.text

    async def both_dismissed() -> bool:
        first, more = await rooms(http, iid)
        return first["state"] == more[0]["state"] == "dismissed"

    await eventually(both_dismissed)
    assert channel.archived and sandbox.room(box["chat_id"]).state == "dismissed"
    created = [e.detail for e in store.timeline.list(iid) if e.kind == "room.created"]
    assert [d.split()[0] for d in created] == ["slack", "sandbox"], created
    assert kinds(store, iid).count("room.dismissed") == 2


async def test_a_rule_opens_rooms_on_two_platforms(http: httpx.AsyncClient, fake: FakeSlack, store: Store) -> None:
    """An Alertmanager group of the checkout service, by rule, gets a sandbox room and, beside it,
    a Slack room, with the rule's group of people; someone not on Slack yet is unlinked there, and
    One-click Link on Slack invites them into it."""
    fake.add_user(ANN, "Ann"), fake.add_user(LEAD, "Lead")
    doc = json.loads((Path(__file__).parent / "sources" / "alertmanager_v4.json").read_text())
    doc["groupKey"] += f" #{uuid.uuid4().hex[:8]}"
    r = await http.post("/sources/alertmanager", json=doc, headers={"Authorization": f"Bearer {AM_TOKEN}"})
    assert r.status_code == 202, r.text
    [taken] = r.json()["incidents"]
    iid = taken["id"]
    assert taken["room"] == "sandbox"  # the rule's first platform, not the deployment's default (slack)
    r = await http.put(f"{API}/incidents/{iid}/responders", json={"responders": [{"email": ANN}, {"email": DAVE}]})
    assert r.status_code == 200, r.text

    async def opened(dave: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        first, more = await rooms(http, iid)
        up = [r for r in (first, *more) if r["state"] == "active" and r["card_handle"]]
        if len(up) != 2:
            return None
        states = {m["email"]: m["state"] for m in more[0]["members"]}
        return (first, more[0]) if states == {ANN: "invited", DAVE: dave, LEAD: "invited"} else None

    box, slack = await eventually(lambda: opened("unlinked"), timeout=30)
    assert (box["platform"], slack["platform"]) == ("sandbox", "slack")
    # the rule's name template; on Slack it fills the channel template's {slug} (the id once)
    assert box["name"] == f"critical checkout {iid}"
    assert slack["name"].endswith(f"-{iid}-critical-checkout") and slack["name"].count(iid) == 1, slack["name"]
    assert SandboxPlatform(store.db).room(box["chat_id"]).incident_id == iid
    assert slack_members(fake, slack["chat_id"]) == {ANN, LEAD}  # the rule's group, beside the responders
    assert LEAD in invited(box)

    fake.add_user(DAVE, "Dave")
    r = await http.post(f"{API}/users/link", json={"platform": "slack"})
    assert r.status_code == 200, r.text
    assert [p["responder_id"] for p in r.json()["linked"]] == [ANN, DAVE]  # not an earlier "not found"
    await eventually(lambda: opened("invited"), timeout=30)
    assert slack_members(fake, slack["chat_id"]) == {ANN, DAVE, LEAD}


@pytest.mark.browser
@needs_chromium
async def test_the_console_opens_a_second_room_and_shows_both(
    client: Any, worker: Any, store: Store, settings: Settings, fake: FakeSlack, browser: Any
) -> None:
    """Create War Room opens the Slack room; "Open a room there too" opens the sandbox one; the
    page lists it under "Also on" with its members."""
    from playwright.async_api import expect

    fake.add_user(ANN, "Ann")
    console = settings.model_copy(update={"api_token": SecretStr(CONSOLE_TOKEN)})
    async with serving(create_app(console, client=client, store=store)) as url:
        errors: list[str] = []
        page = await new_page(browser, errors)
        tid = page.get_by_test_id
        await sign_in(page, url, token=CONSOLE_TOKEN)
        await tid("create-title").fill("Checkout is down")
        await tid("create-responders").fill(ANN)
        await tid("create-submit").click()
        await tid("room-platform-choice").select_option("slack")
        await tid("create-room").click()
        await expect(tid("room-state")).to_have_text("active")
        await expect(tid("another-room-platform")).to_have_value("sandbox")  # slack has its room
        await tid("open-another-room").click()
        more = tid("more-room").and_(page.locator('[data-platform="sandbox"]'))
        await expect(more).to_have_attribute("data-state", "active")
        await expect(more).to_contain_text("1 of 1 members in")
        await expect(tid("another-room")).to_have_count(0)  # every platform has its room

        # the rules in force, as the console shows them
        await tid("nav-rules").click()
        rule = tid("rule").and_(page.locator('[data-name="checkout pages get a sandbox and a Slack room"]'))
        await expect(rule).to_contain_text("source alertmanager, services checkout")
        await expect(rule.get_by_test_id("rule-room")).to_contain_text("a room on sandbox and slack, named")
        await expect(rule).to_contain_text(f"Also invites {LEAD} (groups checkout-leads)")
        await expect(tid("rule").first).to_contain_text("Opens no room.")
        assert errors == []
        async with httpx.AsyncClient(base_url=url) as anon:  # not signed in: no rules shown
            r = await anon.get("/rules")
            assert r.status_code in (302, 303, 401) and LEAD not in r.text


async def _status(http: httpx.AsyncClient, iid: str, status: str) -> bool:
    return (await incident(http, iid))["incident"]["status"] == status
