"""Incident sources end to end (CONTRACT.md, "Incident sources"): Alertmanager, Grafana, PagerDuty
both ways and a generic webhook, through the real API app, a real worker on the Temporal dev
server and the SQL store; PagerDuty's REST API is a strict fake served over HTTP. Payloads follow
the sources' documentation (tests/sources/). Every eventual state is polled for (`eventually`)."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from starters.api.app import create_app
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.serving import serving
from warroom.im.sandbox.platform import SandboxPlatform
from warroom.settings import Settings
from warroom.sources.rules import RulesFileError, load_rules
from warroom.store import Store
from workers.main import build_worker

from .conftest import eventually
from .test_api import API, api_client, error_of

HERE = Path(__file__).parent / "sources"
AM_TOKEN, GF_TOKEN, PD_SECRET, PD_OLD_SECRET, HOOK_SECRET = "am-token", "gf-token", "pd-new", "pd-old", "hook-s3cret"
ANN, BOB, OPS = "ann@example.com", "bob@example.com", "oncall-lead@example.com"

RULES = f"""
rules:
  - name: critical pages get a room
    match: {{source: alertmanager, severity_at_least: high}}
    room: {{platform: sandbox, invite: [{OPS}], name: "{{severity}} {{label:service}} {{id}}"}}
    dismiss_after_close_minutes: 0
  - name: every PagerDuty incident
    match: {{source: pagerduty}}
    room: {{platform: sandbox, members: remove}}
  - name: nothing else opens a room
    match: {{}}
responders:
  team:
    payments: [{ANN}]
webhooks:
  deploys:
    hmac_secret: {HOOK_SECRET}
    signature_header: X-Hub-Signature-256
    mapping:
      id: incident.key
      title: incident.summary
      severity: incident.level
      status: incident.state
      responders: incident.owners
      at: sent_at
    severity_map: {{sev1: critical, sev2: high}}
    status_map: {{open: triggered, done: closed}}
"""


# The dev server outlives a test: each test's source incidents get ids of their own (one suffix a
# test), so an incident's workflow from an earlier test (or the other store) is never reused.
TAG = {"run": ""}


@pytest.fixture(autouse=True)
def _own_ids() -> None:
    TAG["run"] = uuid.uuid4().hex[:8]


def alertmanager(**changes: Any) -> dict[str, Any]:
    doc = json.loads((HERE / "alertmanager_v4.json").read_text())
    doc.update(changes)
    doc["groupKey"] += f" #{TAG['run']}"
    return doc


def am_alert(fingerprint: str, starts: str, *, status: str = "firing", ends: str = "0001-01-01T00:00:00Z") -> dict:
    base = copy.deepcopy(alertmanager()["alerts"][0])
    base.update(fingerprint=fingerprint, startsAt=starts, status=status, endsAt=ends)
    base["labels"]["instance"] = fingerprint
    return base


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Every source test on both stores: claims, links and the incidents they write race on
    PostgreSQL's row locks as they do on SQLite's single writer."""
    if request.param == "sqlite":
        return settings
    return settings.model_copy(update={"database_url": request.getfixturevalue("fresh_pg")()})


@pytest.fixture
def pd() -> FakePagerDuty:
    fake = FakePagerDuty()
    fake.add_user("PANN001", "Ann Example", ANN)
    fake.add_user("PBOB002", "Bob Example", BOB)
    return fake


@pytest_asyncio.fixture
async def pd_url(pd: FakePagerDuty) -> AsyncIterator[str]:
    async with serving(pd.app) as url:
        yield url


@pytest.fixture
def src_settings(settings: Settings, tmp_path: Path, pd_url: str) -> Settings:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return settings.model_copy(
        update={
            "alertmanager_token": SecretStr(AM_TOKEN),
            "grafana_token": SecretStr(GF_TOKEN),
            "pagerduty_webhook_secrets": SecretStr(f"{PD_OLD_SECRET},{PD_SECRET}"),
            "pagerduty_api_token": SecretStr("pd-token"),
            "pagerduty_api_base_url": pd_url,
            "rules_file": str(rules),
        }
    )


@pytest_asyncio.fixture
async def http(dev_env: WorkflowEnvironment, store: Store, src_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    w, im = build_worker(dev_env.client, store, src_settings)
    async with w, api_client(create_app(src_settings, client=dev_env.client, store=store)) as h:
        yield h
    await im.aclose()


async def deliver_am(http: httpx.AsyncClient, doc: dict[str, Any], token: str = AM_TOKEN) -> httpx.Response:
    return await http.post("/sources/alertmanager", json=doc, headers={"Authorization": f"Bearer {token}"})


async def incident(http: httpx.AsyncClient, iid: str) -> dict[str, Any]:
    r = await http.get(f"{API}/incidents/{iid}")
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------------------- Alertmanager


async def test_alertmanager_group_life(http: httpx.AsyncClient) -> None:
    """Firing → incident + room by rule (with the rule's extra person) → a new alert attaches →
    a redelivery and an older delivery change nothing → all resolved → closed by the source →
    the room dismissed by the rule."""
    first = alertmanager()
    r = await deliver_am(http, first)
    assert r.status_code == 202, r.text
    [taken] = r.json()["incidents"]
    assert taken["outcome"] == "applied" and taken["room"] == "sandbox"
    iid = taken["id"]
    got = await incident(http, iid)
    inc = got["incident"]
    assert inc["severity"] == "critical" and inc["status"] == "triggered"
    assert inc["title"] == "Checkout 5xx above 5%" and [a["id"] for a in inc["alerts"]] == ["a1b2c3d4e5f60001"]
    assert inc["source"] == {"name": "alertmanager", "external_id": first["groupKey"], "url": first["externalURL"]}
    # the payments team's people by the `responders` mapping; the rule's extra person is in the room only
    assert [p["email"] for p in inc["responders"]] == [ANN]
    room = await eventually(lambda: _room(http, iid, "active", invited_at_least=frozenset({OPS})))
    assert OPS in [m["email"] for m in room["members"]]
    assert room["name"] == f"critical checkout {iid}"  # the rule's name template
    found = await http.get(f"{API}/incidents", params={"source": "alertmanager", "external_id": first["groupKey"]})
    assert [i["id"] for i in found.json()["items"]] == [iid]

    again = await deliver_am(http, first)  # Alertmanager's retry of the same notification
    assert again.json()["incidents"][0]["outcome"] == "duplicate"

    second = alertmanager(alerts=[*first["alerts"], am_alert("a1b2c3d4e5f60002", "2026-12-03T21:07:00Z")])
    assert (await deliver_am(http, second)).json()["incidents"][0]["outcome"] == "applied"
    inc = (await incident(http, iid))["incident"]
    assert [a["id"] for a in inc["alerts"]] == ["a1b2c3d4e5f60001", "a1b2c3d4e5f60002"]
    version = inc["version"]

    # an older notification arriving late (reordered): taken, never applied
    older = alertmanager(alerts=[am_alert("a1b2c3d4e5f60003", "2026-12-03T20:59:00Z")])
    assert (await deliver_am(http, older)).json()["incidents"][0]["outcome"] == "stale"
    assert (await incident(http, iid))["incident"]["version"] == version

    resolved = alertmanager(
        status="resolved",
        alerts=[
            am_alert(f"a1b2c3d4e5f6000{n}", "2026-12-03T21:00:00Z", status="resolved", ends="2026-12-03T21:30:00Z")
            for n in (1, 2)
        ],
    )
    assert (await deliver_am(http, resolved)).json()["incidents"][0]["outcome"] == "applied"
    got = await incident(http, iid)
    assert got["incident"]["status"] == "closed"
    await eventually(lambda: _room(http, iid, "dismissed"))  # by the rule, right after the close
    # one entry per delivery taken (the redelivery and the older one are not), saying what it changed
    told = await eventually(lambda: _of_kind(http, iid, "source.alertmanager", 3))
    assert told[0]["detail"] == "firing: 1 firing, 0 resolved"
    assert told[1]["detail"] == "firing: 2 firing, 0 resolved · alerts: 2"
    assert told[2]["detail"].startswith("resolved: 0 firing, 2 resolved · status: triggered → closed")
    assert {e["actor"] for e in told} == {"alertmanager"}
    kinds = [e["kind"] for e in (await incident(http, iid))["timeline"] if e["source"] == "alertmanager"]
    assert "incident.updated" not in kinds and kinds.count("source.alertmanager") == 3


async def test_a_severity_raised_by_hand_later_opens_the_room_by_rule(http: httpx.AsyncClient) -> None:
    """Rules follow the incident, not the delivery: a warning from Alertmanager opens no room;
    someone raising it to critical in War Room (the API here) opens the rule's room then."""
    doc = alertmanager(groupKey='{}:{alertname="SlowQueries"}')
    for alert in doc["alerts"]:
        alert["labels"]["severity"] = "warning"
    [taken] = (await deliver_am(http, doc)).json()["incidents"]
    assert taken["outcome"] == "applied" and taken["room"] is None
    iid = taken["id"]
    r = await http.post(
        f"{API}/incidents", json={"id": iid, "title": "Slow queries everywhere", "severity": "critical"}
    )
    assert r.status_code == 200, r.text
    room = await eventually(lambda: _room(http, iid, "active", invited_at_least=frozenset({OPS})))
    assert room["platform"] == "sandbox"
    assert OPS not in [p["email"] for p in (await incident(http, iid))["incident"]["responders"]]


async def test_alertmanager_hostile(http: httpx.AsyncClient, store: Store) -> None:
    """Forged, malformed and unauthenticated deliveries: a clear 4xx each, and nothing stored."""
    doc = alertmanager(groupKey='{}:{alertname="hostile"}')
    error_of(await deliver_am(http, doc, token="wrong"), 401, "unauthorized")
    error_of(await http.post("/sources/alertmanager", json=doc), 401, "unauthorized")
    bad_basic = {"Authorization": "Basic !!!"}
    error_of(await http.post("/sources/alertmanager", json=doc, headers=bad_basic), 401)
    auth = {"Authorization": f"Bearer {AM_TOKEN}", "Content-Type": "application/json"}
    error_of(await http.post("/sources/alertmanager", content=b"{not json", headers=auth), 400, "invalid")
    for broken, reason in [
        ({k: v for k, v in doc.items() if k != "groupKey"}, "groupKey"),
        ({**doc, "alerts": []}, "alerts"),
        ({**doc, "alerts": [{**doc["alerts"][0], "startsAt": "yesterday"}]}, "startsAt"),
        ({**doc, "alerts": [{**doc["alerts"][0], "labels": {"a": ["list"]}}]}, "labels"),
        ({**doc, "status": "maybe"}, "status"),
        ({**doc, "version": "3"}, "version"),
        ({**doc, "groupKey": "nul\x00"}, "NUL"),
        ([1, 2], "object"),
    ]:
        err = error_of(await deliver_am(http, broken), 422, "invalid")
        assert reason in err["message"], err
    assert store.sources.find("alertmanager", doc["groupKey"]) is None
    basic = base64.b64encode(f"alertmanager:{AM_TOKEN}".encode()).decode()
    ok = await http.post("/sources/alertmanager", json=doc, headers={"Authorization": f"Basic {basic}"})
    assert ok.status_code == 202, ok.text


async def test_grafana_contact_point(http: httpx.AsyncClient) -> None:
    doc = json.loads((HERE / "grafana.json").read_text())
    doc["groupKey"] += f" #{TAG['run']}"
    r = await http.post("/sources/grafana", json=doc, headers={"Authorization": f"Bearer {GF_TOKEN}"})
    assert r.status_code == 202, r.text
    [taken] = r.json()["incidents"]
    assert taken["room"] is None  # warning from Grafana: the catch-all rule opens no room
    inc = (await incident(http, taken["id"]))["incident"]
    assert inc["title"] == "[FIRING:1] DiskFull infra (db)" and inc["severity"] == "medium"
    assert inc["alerts"][0]["service"] == "db" and inc["source"]["name"] == "grafana"
    error_of(await http.post("/sources/grafana", json=doc, headers={"Authorization": f"Bearer {AM_TOKEN}"}), 401)


# ---------------------------------------------------------------------------- PagerDuty


async def test_pagerduty_both_ways(http: httpx.AsyncClient, pd: FakePagerDuty, store: Store) -> None:
    """Triggered → room (assignee invited by email from the REST API) → reassigned → the new one
    in, the old one out → acknowledged in War Room → PagerDuty shows it acknowledged by that
    person (after a 500 it is asked again) → resolved in PagerDuty → closed here."""
    pid = f"Q{int(time.time() * 1000) % 10**9}"
    pd.add_incident(pid, "Checkout is down", ["PANN001"])

    async def send(event_type: str, *secrets: str, agent: str | None = None) -> httpx.Response:
        body = pd.event(event_type, pid, agent=agent)
        return await http.post("/sources/pagerduty", content=body, headers=pd.signed(body, *(secrets or (PD_SECRET,))))

    r = await send("incident.triggered")
    assert r.status_code == 202, r.text
    [taken] = r.json()["incidents"]
    iid = taken["id"]
    assert taken["room"] == "sandbox"
    inc = (await incident(http, iid))["incident"]
    assert [p["email"] for p in inc["responders"]] == [ANN] and inc["severity"] == "high"
    await eventually(lambda: _room(http, iid, "active", invited={ANN}))

    pd.incidents[pid].assignees = ["PBOB002"]
    assert (
        await send("incident.reassigned", PD_OLD_SECRET, agent="PANN001")
    ).status_code == 202  # old secret, rotating
    inc = (await incident(http, iid))["incident"]
    assert [p["email"] for p in inc["responders"]] == [BOB]
    room = await eventually(lambda: _room(http, iid, "active", invited={BOB}))
    # the rule's membership policy: who is no longer a responder leaves the room
    sandbox = SandboxPlatform(store.db)
    [ann] = [m for m in room["members"] if m["email"] == ANN]
    assert ann["state"] == "removed" and not sandbox.is_member(room["chat_id"], ann["im_user_id"])

    pd.fail("PUT /incidents", 500)  # PagerDuty hiccups once: the action is asked again, applied once
    r = await http.post(f"{API}/incidents/{iid}/actions", json={"action": "acknowledge", "actor": BOB})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged"
    assert pd.incidents[pid].status == "acknowledged" and pd.incidents[pid].acknowledged_by == [BOB]
    puts = [c for c in pd.calls if c[0] == "PUT"]
    assert len(puts) == 2 and all(c[2]["from"] == BOB for c in puts)
    # PagerDuty's own webhook of that acknowledgement changes nothing more
    version = (await incident(http, iid))["incident"]["version"]
    assert (await send("incident.acknowledged")).status_code == 202
    assert (await incident(http, iid))["incident"]["version"] == version

    # PagerDuty refuses (a From who is no user of the account): refused here too, nothing changes
    r = await http.post(f"{API}/incidents/{iid}/actions", json={"action": "close", "actor": "mallory@example.com"})
    assert r.status_code == 409, r.text
    assert pd.incidents[pid].status == "acknowledged"

    pd.incidents[pid].status = "resolved"
    assert (await send("incident.resolved")).status_code == 202
    assert (await incident(http, iid))["incident"]["status"] == "closed"
    entries = await eventually(lambda: _timeline_sources(http, iid, "pagerduty", 3))
    assert entries[0]["kind"] == "incident.created"
    # every webhook taken is in the timeline, the one that changed nothing here too
    told = await eventually(lambda: _of_kind(http, iid, "source.pagerduty", 4))
    assert [e["detail"] for e in told] == [
        "incident.triggered",
        f"incident.reassigned by Ann Example · responders added: {BOB}; responders removed: {ANN}",
        "incident.acknowledged",
        "incident.resolved · status: acknowledged → closed",
    ]


async def test_pagerduty_forged_and_replayed(http: httpx.AsyncClient, pd: FakePagerDuty, store: Store) -> None:
    pid = f"F{int(time.time() * 1000) % 10**9}"
    pd.add_incident(pid, "Forged", ["PANN001"])
    body = pd.event("incident.triggered", pid)
    error_of(await http.post("/sources/pagerduty", content=body, headers=pd.signed(body, "guess")), 401, "unauthorized")
    error_of(await http.post("/sources/pagerduty", content=body), 401)
    tampered = body.replace(b"Forged", b"Faked!")
    error_of(await http.post("/sources/pagerduty", content=tampered, headers=pd.signed(body, PD_SECRET)), 401)
    assert store.sources.find("pagerduty", pid) is None
    ok = await http.post("/sources/pagerduty", content=body, headers=pd.signed(body, PD_SECRET))
    assert ok.json()["incidents"][0]["outcome"] == "applied"
    replay = await http.post("/sources/pagerduty", content=body, headers=pd.signed(body, PD_SECRET))
    assert replay.json()["incidents"][0]["outcome"] == "duplicate"
    ping = json.dumps({"event": {"id": "P1", "event_type": "pagey.ping", "occurred_at": None, "data": {}}}).encode()
    assert (await http.post("/sources/pagerduty", content=ping, headers=pd.signed(ping, PD_SECRET))).status_code == 202


# ---------------------------------------------------------------------------- generic webhook


async def test_generic_webhook(http: httpx.AsyncClient) -> None:
    def signed(doc: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(doc).encode()
        sig = "sha256=" + hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return {"content": body, "headers": {"X-Hub-Signature-256": sig, "Content-Type": "application/json"}}

    doc = {
        "sent_at": "2026-12-03T22:00:00Z",
        "incident": {
            "key": f"deploy-42-{TAG['run']}",
            "summary": "Deploy 42 failing",
            "level": "sev2",
            "state": "open",
            "owners": [ANN, {"email": BOB, "name": "Bob"}],
        },
    }
    r = await http.post("/sources/webhook/deploys", **signed(doc))
    assert r.status_code == 202, r.text
    iid = r.json()["incidents"][0]["id"]
    inc = (await incident(http, iid))["incident"]
    assert inc["severity"] == "high" and [p["email"] for p in inc["responders"]] == [ANN, BOB]
    done = {**doc, "sent_at": "2026-12-03T22:10:00Z", "incident": {**doc["incident"], "state": "done"}}
    assert (await http.post("/sources/webhook/deploys", **signed(done))).json()["incidents"][0]["outcome"] == "applied"
    assert (await incident(http, iid))["incident"]["status"] == "closed"
    late = {**doc, "sent_at": "2026-12-03T22:05:00Z"}  # reordered: older than the close
    assert (await http.post("/sources/webhook/deploys", **signed(late))).json()["incidents"][0]["outcome"] == "stale"
    assert (await incident(http, iid))["incident"]["status"] == "closed"
    bad = signed(doc)
    bad["headers"]["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    error_of(await http.post("/sources/webhook/deploys", **bad), 401)
    error_of(await http.post("/sources/webhook/deploys", **signed({"incident": {"summary": "no key"}})), 422)
    weird = {**doc, "incident": {**doc["incident"], "level": "sev9"}}
    err = error_of(await http.post("/sources/webhook/deploys", **signed(weird)), 422)
    assert "severity" in err["message"]
    error_of(await http.post("/sources/webhook/nope", **signed(doc)), 404)


# ---------------------------------------------------------------------------- the rules file


async def test_rules_listed(http: httpx.AsyncClient) -> None:
    body = (await http.get(f"{API}/rules")).json()
    assert [r["name"] for r in body["rules"]][:2] == ["critical pages get a room", "every PagerDuty incident"]
    assert body["webhooks"] == ["deploys"] and HOOK_SECRET not in json.dumps(body)


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("rules:\n  - name: a\n    match: {severity_at_least: urgent}\n", 3, "severity_at_least"),
        ("rules:\n  - name: a\n  - name: b\n    colour: red\n", 4, "colour"),
        ("rules:\n  - name: a\n    room: {invite: [not-an-email]}\n", 3, "invite"),
        ("rules: [\n", 2, "YAML"),
        ("responders:\n  team:\n    payments: [not-an-email]\n", 2, "not an email"),
        ("webhooks:\n  x:\n    mapping: {id: a, title: b}\n", 3, "token"),
        ("rules:\n  - name: a\n    room: {name: '{title}'}\n", 3, "needs {id}"),
        ("rules:\n  - name: a\n    room: {name: '{id} {__class__}'}\n", 3, "placeholder"),
        ("rules:\n  - name: a\n    room: {name: '{id} {0.__class__}'}\n", 3, "brace"),
        ("rules:\n  - name: a\n    room: {platform: slack, platforms: [lark]}\n", 3, "not both"),
        ("rules:\n  - name: a\n    room: {platforms: [slack, slack]}\n", 3, "each platform once"),
        ("groups: {leads: [a@example.com]}\nrules:\n  - name: a\n    room: {invite_groups: [leeds]}\n", 4, "leeds"),
    ],
)
def test_invalid_rules_file_names_the_line(tmp_path: Path, settings: Settings, text: str, line: int, what: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesFileError, match=rf"line {line}\b.*{what}"):
        load_rules(path)
    with pytest.raises(SystemExit, match=f"line {line}"):
        create_app(settings.model_copy(update={"rules_file": str(path)}))


# ---------------------------------------------------------------------------- helpers


async def _room(
    http: httpx.AsyncClient,
    iid: str,
    state: str,
    *,
    invited: set[str] | None = None,
    invited_at_least: frozenset[str] = frozenset(),
) -> dict[str, Any] | None:
    room = (await incident(http, iid))["war_room"]
    if room["state"] != state:
        return None
    now = {m["email"] for m in room["members"] if m["state"] == "invited"}
    if (invited is not None and now != invited) or not invited_at_least <= now:
        return None
    return room


async def _of_kind(http: httpx.AsyncClient, iid: str, kind: str, at_least: int) -> list[dict[str, Any]]:
    entries = [e for e in (await incident(http, iid))["timeline"] if e["kind"] == kind]
    return entries if len(entries) >= at_least else []


async def _timeline_sources(http: httpx.AsyncClient, iid: str, source: str, at_least: int) -> list[dict[str, Any]]:
    entries = [e for e in (await incident(http, iid))["timeline"] if e["source"] == source]
    return entries if len(entries) >= at_least else []
