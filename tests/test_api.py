"""HTTP API contract tests (CONTRACT.md, "HTTP API"): a real Temporal dev server, a real worker
running this repository's workflow and activities against the sandbox IM, and the FastAPI app
driven in-process through httpx's ASGI transport.

Every eventual state is polled for with a deadline (`eventually`), never waited for blindly.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities.ai import AiActivities
from activities.im import ImActivities
from activities.incidents import IncidentActivities
from starters.api.app import create_app
from tests.serving import free_port
from warroom.im.base import RoomRef
from warroom.im.sandbox.adapter import sign
from warroom.im.sandbox.platform import SandboxPlatform
from warroom.messages import CreateRoomInput, OpenedRoom, OpenRoomInput, SnapshotSignal, WorkflowView, workflow_id
from warroom.models import Incident, IncidentIn
from warroom.settings import Settings
from warroom.store import Store
from workers.main import WORKFLOWS, build_worker
from workflows.incident import IncidentWarRoom

from .conftest import eventually

API = "/api/v1"
BASE = "http://testserver"
ANN, BOB = "ann@example.com", "bob@example.com"


# ---------------------------------------------------------------------------- helpers


def new_id(prefix: str = "api") -> str:
    """Workflow ids are global to the dev server: every test uses fresh incident ids."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def api_client(app: Any, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, headers=headers, timeout=60)


@pytest_asyncio.fixture
async def http(client: Client, worker: Worker, store: Store, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(create_app(settings, client=client, store=store)) as h:
        yield h


def error_of(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert CONTRACT.md's error shape: `{"error": {"code", "message"}}` with `status`."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    err = body["error"]
    assert isinstance(err.get("code"), str) and err["code"], body
    assert isinstance(err.get("message"), str) and err["message"], body
    if code is not None:
        assert err["code"] == code, body
    return err


async def create_incident(http: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"title": "Checkout is down", "responders": [{"email": ANN}, {"email": BOB}]} | fields
    r = await http.post(f"{API}/incidents", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def timeline(http: httpx.AsyncClient, iid: str) -> list[dict[str, Any]]:
    r = await http.get(f"{API}/incidents/{iid}/timeline")
    assert r.status_code == 200, r.text
    return r.json()


async def entries_of(http: httpx.AsyncClient, iid: str, kind: str, n: int = 1) -> list[dict[str, Any]]:
    """The timeline entries of `kind`, once there are at least `n` of them."""

    async def enough() -> list[dict[str, Any]] | None:
        got = [e for e in await timeline(http, iid) if e["kind"] == kind]
        return got if len(got) >= n else None

    return await eventually(enough)


async def entry_where(http: httpx.AsyncClient, iid: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first timeline entry that `match`es, once there is one."""

    async def check() -> dict[str, Any] | None:
        return next((e for e in await timeline(http, iid) if match(e)), None)

    return await eventually(check)


async def war_room(http: httpx.AsyncClient, iid: str) -> dict[str, Any]:
    r = await http.get(f"{API}/incidents/{iid}")
    assert r.status_code == 200, r.text
    return r.json()["war_room"]


async def room_in_state(http: httpx.AsyncClient, iid: str, state: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        room = await war_room(http, iid)
        return room if room["state"] == state else None

    return await eventually(check)


async def open_room(http: httpx.AsyncClient, iid: str, **body: Any) -> dict[str, Any]:
    r = await http.post(f"{API}/incidents/{iid}/war-room", json=body)
    assert r.status_code == 201, r.text
    room = r.json()
    assert room["state"] == "active", room
    return room


async def act(http: httpx.AsyncClient, iid: str, action: str, actor: str = ANN, **extra: Any) -> httpx.Response:
    return await http.post(f"{API}/incidents/{iid}/actions", json={"action": action, "actor": actor, **extra})


def workflow_view(client: Client, iid: str) -> Any:
    return client.get_workflow_handle_for(IncidentWarRoom.run, workflow_id(iid)).query(IncidentWarRoom.view)


def signed(settings: Settings, payload: dict[str, Any], *, ts: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A sandbox IM callback signed the way the sandbox server signs it."""
    raw = json.dumps(payload).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    secret = settings.platform("sandbox").signing_secret.get_secret_value()
    return raw, {
        "x-sandbox-timestamp": stamp,
        "x-sandbox-signature": sign(secret, stamp, raw),
        "content-type": "application/json",
    }


async def deliver(http: httpx.AsyncClient, settings: Settings, payload: dict[str, Any]) -> httpx.Response:
    raw, headers = signed(settings, payload)
    return await http.post("/im/sandbox/events", content=raw, headers=headers)


def iso_with_offset(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    assert at.tzinfo is not None and at.utcoffset() is not None, f"{value!r} has no UTC offset"
    return at


# ---------------------------------------------------------------------------- incidents


async def test_create_update_and_get_incident(http, client):
    r = await http.post(
        f"{API}/incidents",
        json={"title": "  Checkout is down ", "responders": [{"email": "Ann@Example.com"}, {"phone": "+1 555 0100"}]},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"] and created["title"] == "Checkout is down"
    assert created["severity"] == "medium" and created["status"] == "triggered" and created["version"] == 1
    assert [(p["id"], p["email"]) for p in created["responders"]] == [(ANN, ANN), ("+15550100", None)]
    iso_with_offset(created["created_at"])

    iid = new_id()
    body = {
        "id": iid,
        "title": "Payments slow",
        "description": "p99 > 2 s",
        "severity": "high",
        "responders": [{"email": ANN, "name": "Ann"}],
        "labels": {"service": "payments"},
    }
    r = await http.post(f"{API}/incidents", json=body)
    assert r.status_code == 201, r.text
    original = r.json()
    assert original["id"] == iid and original["version"] == 1 and original["labels"] == {"service": "payments"}

    # an existing id updates: 200, a new version, fields not sent stay as they were
    r = await http.post(f"{API}/incidents", json={"id": iid, "title": "Payments down", "severity": "critical"})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["version"] == 2 and updated["title"] == "Payments down" and updated["severity"] == "critical"
    assert updated["description"] == "p99 > 2 s" and [p["email"] for p in updated["responders"]] == [ANN]
    assert updated["created_at"] == original["created_at"] and updated["labels"] == original["labels"]

    # the same content again is still an update (200) but no new version
    r = await http.post(f"{API}/incidents", json={"id": iid, "title": "Payments down"})
    assert r.status_code == 200 and r.json()["version"] == 2, r.text

    r = await http.get(f"{API}/incidents/{iid}")
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) >= {"incident", "war_room", "timeline"}
    assert got["incident"] == updated | {"updated_at": got["incident"]["updated_at"]}
    room = got["war_room"]
    assert room["state"] == "none" and room["platform"] == "sandbox" and room["members"] == []
    assert {"state", "platform", "chat_id", "name", "join_url", "members"} <= set(room)
    assert isinstance(got["timeline"], list)

    # the workflow received the snapshot and recorded the change
    [entry] = await entries_of(http, iid, "incident.updated")
    assert "title: Payments slow → Payments down" in entry["detail"] and "severity: high → critical" in entry["detail"]
    assert entry["source"] == "api" and entry["outcome"] == "ok"
    view: WorkflowView = await eventually(lambda: _view_at(client, iid, version=2))
    assert view.incident.title == "Payments down"


async def _view_at(client: Client, iid: str, *, version: int) -> WorkflowView | None:
    view = await workflow_view(client, iid)
    return view if view.incident.version == version else None


async def test_newest_version_wins(http, client, store):
    iid = new_id()
    first = await create_incident(http, id=iid, title="v1")

    # concurrent updates: the store gives each its own version; signals may reach the workflow in
    # any order, and the workflow must end on the newest one
    titles = [f"title {n}" for n in range(8)]
    answers = await asyncio.gather(*(http.post(f"{API}/incidents", json={"id": iid, "title": t}) for t in titles))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    versions = sorted(r.json()["version"] for r in answers)
    assert versions == list(range(2, 10)), versions
    newest = max((r.json() for r in answers), key=lambda i: i["version"])
    stored = (await http.get(f"{API}/incidents/{iid}")).json()["incident"]
    assert (stored["version"], stored["title"]) == (9, newest["title"])
    view = await eventually(lambda: _view_at(client, iid, version=9))
    assert view.incident.title == newest["title"]

    # a stale snapshot (an old version arriving late) changes nothing
    stale = Incident.model_validate(first | {"title": "stale title"})
    handle = client.get_workflow_handle_for(IncidentWarRoom.run, workflow_id(iid))
    await handle.signal(IncidentWarRoom.snapshot, SnapshotSignal(incident=stale, actor="stale@example.com"))
    # an update accepted after the signal: the signal has been handled when it answers
    room = await open_room(http, iid)
    assert newest["title"] in room["name"] and "stale" not in room["name"]
    view = await workflow_view(client, iid)
    assert (view.incident.version, view.incident.title) == (9, newest["title"])
    assert not [e for e in await timeline(http, iid) if e["actor"] == "stale@example.com"]
    assert store.incidents.get(iid).title == newest["title"]


async def test_list_incidents(http, store):
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    for n in range(55):
        store.incidents.upsert(IncidentIn(id=f"bulk-{n:02d}", title=f"bulk {n}"), t0 + timedelta(minutes=n))
    closed = IncidentIn(id="bulk-closed", title="done", status="closed")
    store.incidents.upsert(closed, t0 - timedelta(days=1))

    r = await http.get(f"{API}/incidents")
    assert r.status_code == 200, r.text
    page = r.json()
    assert set(page) == {"items", "next_cursor"}
    assert len(page["items"]) == 50 and page["next_cursor"]  # default limit
    assert [i["id"] for i in page["items"]] == [f"bulk-{n:02d}" for n in range(54, 4, -1)]  # newest first

    seen, cursor = [], None
    while True:
        r = await http.get(f"{API}/incidents", params={"limit": 20} | ({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        seen += [i["id"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert seen == [f"bulk-{n:02d}" for n in range(54, -1, -1)] + ["bulk-closed"]

    r = await http.get(f"{API}/incidents", params={"status": "closed"})
    assert [i["id"] for i in r.json()["items"]] == ["bulk-closed"] and r.json()["next_cursor"] is None
    r = await http.get(f"{API}/incidents", params={"status": "acknowledged"})
    assert r.json() == {"items": [], "next_cursor": None}

    # created through the API: newest first as well
    a = await create_incident(http, title="first")
    b = await create_incident(http, title="second")
    items = (await http.get(f"{API}/incidents", params={"limit": 2})).json()["items"]
    assert [i["id"] for i in items] == [b["id"], a["id"]]

    for params in ({"status": "resolved"}, {"limit": 0}, {"limit": 501}, {"limit": "x"}, {"cursor": "garbage!"}):
        error_of(await http.get(f"{API}/incidents", params=params), 422, "invalid")


async def test_roles_are_given_recorded_and_never_markup(http):
    iid = (await create_incident(http))["id"]
    r = await http.put(f"{API}/incidents/{iid}/roles/lead", json={"person": BOB, "actor": ANN})
    assert r.status_code == 200, r.text
    assert r.json() == {"roles": {"lead": BOB}}
    [entry] = [e for e in await timeline(http, iid) if e["kind"] == "role.assigned"]
    assert entry["detail"] == f"lead: {BOB}" and entry["actor"] == ANN
    for person in ("<!here>", "@channel", "*bold*", "x" * 400):
        error_of(await http.put(f"{API}/incidents/{iid}/roles/lead", json={"person": person}), 422, "invalid")
    error_of(await http.put(f"{API}/incidents/{iid}/roles/boss", json={"person": ANN}), 422)


async def test_unknown_incident_is_404(http):
    missing = new_id("missing")
    calls = [
        ("GET", f"{API}/incidents/{missing}", None),
        ("GET", f"{API}/incidents/{missing}/timeline", None),
        ("PUT", f"{API}/incidents/{missing}/responders", {"responders": [{"email": ANN}]}),
        ("PUT", f"{API}/incidents/{missing}/roles/lead", {"person": ANN}),
        ("POST", f"{API}/incidents/{missing}/actions", {"action": "acknowledge", "actor": ANN}),
        ("POST", f"{API}/incidents/{missing}/war-room", {}),
        ("DELETE", f"{API}/incidents/{missing}/war-room", None),
    ]
    for method, url, body in calls:
        err = error_of(await http.request(method, url, json=body), 404, "not_found")
        assert missing in err["message"], (method, url, err)
    # nothing was created on the way
    error_of(await http.get(f"{API}/incidents/{missing}"), 404)
    error_of(await http.get(f"{API}/no-such-route"), 404, "not_found")
    error_of(await http.patch(f"{API}/incidents"), 405)


# ---------------------------------------------------------------------------- invalid input


BAD_INCIDENTS = [
    pytest.param({"responders": [{"email": ANN}]}, "title", id="missing-title"),
    pytest.param({"title": "   "}, "title", id="blank-title"),
    pytest.param({"title": "x", "responders": [{"email": "not-an-email"}]}, "not an email address", id="bad-email"),
    pytest.param({"title": "x", "responders": [{"phone": "call me"}]}, "not a phone number", id="bad-phone"),
    pytest.param({"title": "x", "responders": [{}]}, "responder needs", id="empty-responder"),
    pytest.param({"title": "x", "responders": "a@example.com"}, "responders", id="responders-not-a-list"),
    pytest.param({"title": "x", "severity": "urgent"}, "severity", id="unknown-severity"),
    pytest.param({"title": "x", "status": "resolved"}, "status", id="unknown-status"),
    pytest.param({"title": "x", "id": "no spaces allowed"}, "id", id="bad-id"),
    pytest.param({"title": "x", "colour": "red"}, "colour", id="unknown-field"),
    pytest.param({"title": "x", "labels": {"a": [1]}}, "labels", id="bad-labels"),
    pytest.param({"title": "x", "actor": ""}, "actor", id="blank-actor"),
]


@pytest.mark.parametrize(("body", "mentions"), BAD_INCIDENTS)
async def test_invalid_incident_is_422(http, body, mentions):
    err = error_of(await http.post(f"{API}/incidents", json=body), 422, "invalid")
    assert mentions in err["message"], err
    assert (await http.get(f"{API}/incidents")).json()["items"] == []


async def test_invalid_bodies_are_422(http):
    for content in (b"{not json", b"[1, 2]", b'"title"'):
        r = await http.post(f"{API}/incidents", content=content, headers={"content-type": "application/json"})
        error_of(r, 422, "invalid")

    inc = await create_incident(http)
    iid = inc["id"]
    bad_actions = [
        ({"action": "escalate", "actor": ANN}, "action"),
        ({"actor": ANN}, "action"),
        ({"action": "acknowledge"}, "actor"),
        ({"action": "acknowledge", "actor": "  "}, "actor"),
        ({"action": "snooze", "actor": ANN}, "minutes"),
        ({"action": "snooze", "actor": ANN, "minutes": 0}, "minutes"),
        ({"action": "snooze", "actor": ANN, "minutes": -5}, "minutes"),
        ({"action": "snooze", "actor": ANN, "minutes": 7 * 24 * 60 + 1}, "minutes"),
        ({"action": "snooze", "actor": ANN, "minutes": "soon"}, "minutes"),
        ({"action": "acknowledge", "actor": ANN, "minutes": 30}, "minutes"),
        ({"action": "unsnooze", "actor": ANN}, "unsnooze"),
        ({"action": "close", "actor": ANN, "extra": True}, "extra"),
    ]
    for body, mentions in bad_actions:
        err = error_of(await http.post(f"{API}/incidents/{iid}/actions", json=body), 422, "invalid")
        assert mentions in err["message"], (body, err)

    for body in ({"responders": [{"email": "nope"}]}, {}, {"responders": [{"email": ANN}], "x": 1}):
        error_of(await http.put(f"{API}/incidents/{iid}/responders", json=body), 422, "invalid")
    for body in ({"platform": "no-such-im"}, {"platform": "sandbox", "x": 1}):
        error_of(await http.post(f"{API}/incidents/{iid}/war-room", json=body), 422, "invalid")
    error_of(await http.post(f"{API}/users/link", json={"platform": "no-such-im"}), 422, "invalid")

    # none of it touched the incident
    got = (await http.get(f"{API}/incidents/{iid}")).json()
    assert got["incident"]["status"] == "triggered" and got["incident"]["version"] == 1
    assert got["war_room"]["state"] == "none"


async def test_body_over_one_mib_is_413(http):
    huge = {"title": "x", "description": "a" * (1024 * 1024)}
    error_of(await http.post(f"{API}/incidents", json=huge), 413, "too_large")

    async def chunks(total: int) -> AsyncIterator[bytes]:
        body = json.dumps({"title": "chunked", "description": "a" * (total - 40)}).encode()
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    r = await http.post(
        f"{API}/incidents", content=chunks(1024 * 1024 + 100), headers={"content-type": "application/json"}
    )
    error_of(r, 413, "too_large")
    r = await http.post(f"{API}/incidents", content=chunks(2000), headers={"content-type": "application/json"})
    assert r.status_code == 201, r.text  # a chunked body under the limit goes through


# ---------------------------------------------------------------------------- auth


async def test_api_token(client, worker, store, settings):
    secured = settings.model_copy(update={"api_token": SecretStr("s3cret")})
    app = create_app(secured, client=client, store=store)
    async with api_client(app) as anon, api_client(app, authorization="Bearer s3cret") as ok:
        iid = (await create_incident(ok))["id"]
        routes = [
            ("GET", f"{API}/incidents", None),
            ("POST", f"{API}/incidents", {"title": "x"}),
            ("POST", f"{API}/incidents", {"title": ""}),  # 401 comes before validation
            ("GET", f"{API}/incidents/{iid}", None),
            ("GET", f"{API}/incidents/no-such-incident", None),  # and before existence
            ("GET", f"{API}/incidents/{iid}/timeline", None),
            ("PUT", f"{API}/incidents/{iid}/responders", {"responders": []}),
            ("POST", f"{API}/incidents/{iid}/actions", {"action": "close", "actor": ANN}),
            ("POST", f"{API}/incidents/{iid}/war-room", {}),
            ("DELETE", f"{API}/incidents/{iid}/war-room", None),
            ("GET", f"{API}/users", None),
            ("POST", f"{API}/users/link", {}),
        ]
        for headers in (
            {},
            {"authorization": "Bearer wrong"},
            {"authorization": "s3cret"},
            {"authorization": "Basic s3cret"},
        ):
            for method, url, body in routes:
                r = await anon.request(method, url, json=body, headers=headers)
                error_of(r, 401, "unauthorized")
                assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), r.headers
        # nothing happened
        got = (await ok.get(f"{API}/incidents/{iid}")).json()
        assert got["incident"]["status"] == "triggered" and got["war_room"]["state"] == "none"
        assert [i["id"] for i in (await ok.get(f"{API}/incidents")).json()["items"]] == [iid]

        assert (await ok.get(f"{API}/incidents/{iid}/timeline")).status_code == 200
        assert (await anon.get(f"{API}/incidents", headers={"authorization": "bearer s3cret"})).status_code == 200

        # operations and IM callbacks are not behind the token: platforms cannot send it
        assert (await anon.get("/healthz")).status_code == 200
        assert (await anon.get("/metrics")).status_code == 200
        r = await anon.post("/im/sandbox/events", content=b"{}")
        error_of(r, 401, "rejected")  # the platform's signature check answered, not the token check
        click = {"type": "action", "event_id": "e1", "chat_id": "CNONE", "user_id": "U1", "action": "acknowledge"}
        assert (await deliver(anon, secured, click)).status_code == 200


# ---------------------------------------------------------------------------- war room, actions, timeline


async def test_war_room_lifecycle_and_timeline(http, store):
    iid = new_id()
    await create_incident(http, id=iid, responders=[{"email": ANN}, {"email": BOB}, {"name": "Zed Nocontact"}])

    room = await open_room(http, iid, actor=ANN)
    assert room["platform"] == "sandbox" and room["chat_id"] and room["name"] and room["join_url"]
    members = {m["name"]: m for m in room["members"]}
    assert {"email", "name", "im_user_id", "state"} <= set(members["ann"])
    assert members["ann"]["state"] == "invited" and members["ann"]["im_user_id"] and members["ann"]["email"] == ANN
    assert members["bob"]["state"] == "invited"
    assert members["Zed Nocontact"]["state"] == "unlinked" and members["Zed Nocontact"]["im_user_id"] is None

    again = await http.post(f"{API}/incidents/{iid}/war-room", json={})
    assert again.status_code == 200, again.text  # idempotent: the room that exists
    assert again.json()["chat_id"] == room["chat_id"]
    shown = await room_in_state(http, iid, "active")
    assert shown["chat_id"] == room["chat_id"] and shown["join_url"] == room["join_url"]
    assert len([r for r in SandboxPlatform(store.db).rooms() if r.incident_id == iid]) == 1

    # dismissing is refused while the incident is open
    err = error_of(await http.delete(f"{API}/incidents/{iid}/war-room"), 409, "conflict")
    assert "close" in err["message"]
    assert (await war_room(http, iid))["state"] == "active"

    # actions, each answered with the incident once applied
    r = await act(http, iid, "acknowledge", ANN)
    assert r.status_code == 200 and r.json()["status"] == "acknowledged", r.text
    err = error_of(await act(http, iid, "acknowledge", BOB), 409, "conflict")
    assert "acknowledged" in err["message"]
    before = datetime.now(UTC)
    r = await act(http, iid, "snooze", BOB, minutes=30)
    assert r.status_code == 200 and r.json()["status"] == "snoozed", r.text
    until = iso_with_offset(r.json()["snoozed_until"])
    assert before + timedelta(minutes=29) < until < datetime.now(UTC) + timedelta(minutes=31)
    r = await act(http, iid, "acknowledge", ANN)  # ends the snooze
    assert r.status_code == 200 and r.json()["status"] == "acknowledged" and r.json()["snoozed_until"] is None
    error_of(await act(http, iid, "reopen", ANN), 409, "conflict")
    r = await act(http, iid, "close", BOB)
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text
    r = await act(http, iid, "reopen", ANN)
    assert r.status_code == 200 and r.json()["status"] == "triggered", r.text
    r = await act(http, iid, "close", ANN)
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text
    got = (await http.get(f"{API}/incidents/{iid}")).json()["incident"]
    assert got["status"] == "closed" and got["version"] == r.json()["version"]

    # the card follows the status
    async def card_closed() -> bool:
        cards = [m for m in SandboxPlatform(store.db).room(room["chat_id"]).messages if m.card]
        return bool(cards) and cards[-1].card["status"] == "closed"

    await eventually(card_closed)

    r = await http.delete(f"{API}/incidents/{iid}/war-room", headers={"x-warroom-actor": BOB})
    assert r.status_code == 200 and r.json()["state"] == "dismissed", r.text
    assert r.json()["chat_id"] == room["chat_id"]
    r = await http.delete(f"{API}/incidents/{iid}/war-room")
    assert r.status_code == 200 and r.json()["state"] == "dismissed", r.text  # idempotent
    await room_in_state(http, iid, "dismissed")
    assert SandboxPlatform(store.db).room(room["chat_id"]).state == "dismissed"
    # a closed incident gets no new room until it is reopened
    err = error_of(await http.post(f"{API}/incidents/{iid}/war-room", json={}), 409, "conflict")
    assert "closed" in err["message"]

    # the timeline: oldest first, stable ids, ISO 8601 times with an offset, who/where/outcome
    await entries_of(http, iid, "room.dismissed")
    entries = await timeline(http, iid)
    assert entries == (await http.get(f"{API}/incidents/{iid}")).json()["timeline"]
    assert entries == await timeline(http, iid)  # stable
    for e in entries:
        assert set(e) >= {"id", "at", "actor", "source", "kind", "detail", "outcome"}, e
        assert e["outcome"] in ("ok", "failed", "refused") and e["actor"]
        assert e["source"] in ("api", "cli", "web", "sandbox", "system", "ai", "slack", "lark", "dingtalk", "wecom")
    assert len({e["id"] for e in entries}) == len(entries)
    times = [iso_with_offset(e["at"]) for e in entries]
    assert times == sorted(times)
    kinds = {e["kind"] for e in entries}
    assert {
        "room.created",
        "member.invited",
        "member.unlinked",
        "card.posted",
        "card.updated",
        "action.acknowledge",
        "action.snooze",
        "action.close",
        "action.reopen",
        "room.dismissed",
    } <= kinds, kinds
    # (whether the two refused API actions, answered 409, are audited too is the workflow's call)
    applied = [e for e in entries if e["kind"].startswith("action.") and e["kind"] != "action.refused"]
    actions = [(e["kind"], e["actor"], e["source"]) for e in applied]
    assert actions == [
        ("action.acknowledge", ANN, "api"),
        ("action.snooze", BOB, "api"),
        ("action.acknowledge", ANN, "api"),
        ("action.close", BOB, "api"),
        ("action.reopen", ANN, "api"),
        ("action.close", ANN, "api"),
    ]
    snooze = next(e for e in entries if e["kind"] == "action.snooze")
    assert "30 min" in snooze["detail"]
    unlinked = next(e for e in entries if e["kind"] == "member.unlinked")
    assert unlinked["outcome"] == "failed" and unlinked["detail"]
    invited = [e for e in entries if e["kind"] == "member.invited"]
    assert {ANN, BOB} <= {e["detail"].split(" ")[0] for e in invited}
    dismissed = next(e for e in entries if e["kind"] == "room.dismissed")
    assert (dismissed["actor"], dismissed["source"], dismissed["outcome"]) == (BOB, "api", "ok")
    assert next(e for e in entries if e["kind"] == "room.created")["actor"] == "system"


async def test_concurrent_room_requests_open_one_room(http, store):
    iid = new_id()
    await create_incident(http, id=iid)
    answers = await asyncio.gather(*(http.post(f"{API}/incidents/{iid}/war-room", json={}) for _ in range(4)))
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 201], [r.text for r in answers]
    assert len({r.json()["chat_id"] for r in answers}) == 1
    assert all(r.json()["state"] == "active" for r in answers)
    assert len([r for r in SandboxPlatform(store.db).rooms() if r.incident_id == iid]) == 1
    assert len(await entries_of(http, iid, "room.created")) == 1
    assert len(await entries_of(http, iid, "card.posted")) == 1


async def test_responders_follow_into_the_room(http):
    iid = new_id()
    await create_incident(http, id=iid)
    room = await open_room(http, iid)
    assert {m["email"] for m in room["members"]} == {ANN, BOB}

    r = await http.put(
        f"{API}/incidents/{iid}/responders",
        json={"responders": [{"email": ANN}, {"email": "carol@example.com"}, {"email": ANN}], "actor": ANN},
    )
    assert r.status_code == 200, r.text
    assert [p["email"] for p in r.json()["responders"]] == [ANN, "carol@example.com"]  # a person once
    assert r.json()["version"] == 2

    async def synced() -> bool:
        members = {m["email"]: m["state"] for m in (await war_room(http, iid))["members"]}
        return members == {ANN: "invited", BOB: "removed", "carol@example.com": "invited"}

    await eventually(synced)
    [removed] = await entries_of(http, iid, "member.removed")
    assert BOB in removed["detail"] and removed["outcome"] == "ok"
    [updated] = await entries_of(http, iid, "incident.updated")
    assert (updated["actor"], updated["source"]) == (ANN, "api")
    assert "carol@example.com" in updated["detail"] and BOB in updated["detail"]
    # the same responders again: no new version
    r = await http.put(
        f"{API}/incidents/{iid}/responders", json={"responders": [{"email": ANN}, {"email": "carol@example.com"}]}
    )
    assert r.status_code == 200 and r.json()["version"] == 2, r.text


async def test_actor_and_source_are_taken_the_same_way_everywhere(http):
    """CONTRACT.md puts `actor` in the body; the CLI also sends X-Warroom-Actor. The body wins,
    the header fills in where a body has none (DELETE), and nobody named is `system`."""
    iid = new_id()
    await create_incident(http, id=iid)

    async def updated_by(**kw: Any) -> tuple[str, str]:
        title = uuid.uuid4().hex
        r = await http.post(f"{API}/incidents", json={"id": iid, "title": title} | kw.pop("body", {}), **kw)
        assert r.status_code == 200, r.text
        e = await entry_where(http, iid, lambda e: e["kind"] == "incident.updated" and title in e["detail"])
        return e["actor"], e["source"]

    assert await updated_by(body={"actor": ANN}) == (ANN, "api")
    assert await updated_by(headers={"x-warroom-actor": BOB, "x-warroom-source": "cli"}) == (BOB, "cli")
    assert await updated_by(body={"actor": ANN}, headers={"x-warroom-actor": BOB}) == (ANN, "api")
    assert await updated_by() == ("system", "api")
    assert await updated_by(headers={"x-warroom-source": "web"}) == ("system", "web")
    assert await updated_by(headers={"x-warroom-source": "made-up"}) == ("system", "api")

    r = await http.put(
        f"{API}/incidents/{iid}/responders",
        json={"responders": [{"email": ANN}], "actor": BOB},
        headers={"x-warroom-actor": "someone@else.io"},
    )
    assert r.status_code == 200, r.text
    e = await entry_where(http, iid, lambda e: e["kind"] == "incident.updated" and "responders removed" in e["detail"])
    assert (e["actor"], e["source"]) == (BOB, "api")

    r = await http.post(
        f"{API}/incidents/{iid}/actions",
        json={"action": "close", "actor": ANN},
        headers={"x-warroom-actor": BOB, "x-warroom-source": "cli"},
    )
    assert r.status_code == 200, r.text
    [closed] = await entries_of(http, iid, "action.close")
    assert (closed["actor"], closed["source"]) == (ANN, "cli")

    iid2 = new_id()
    await create_incident(http, id=iid2)
    await open_room(http, iid2)
    assert (await act(http, iid2, "close", BOB)).status_code == 200
    r = await http.request(
        "DELETE", f"{API}/incidents/{iid2}/war-room", json={"actor": ANN}, headers={"x-warroom-actor": BOB}
    )
    assert r.status_code == 200, r.text
    [dismissed] = await entries_of(http, iid2, "room.dismissed")
    assert dismissed["actor"] == ANN


async def test_retried_action_is_applied_once(http):
    iid = new_id()
    await create_incident(http, id=iid)
    body = {"action": "snooze", "actor": ANN, "minutes": 60, "request_id": "req-1"}
    first = await http.post(f"{API}/incidents/{iid}/actions", json=body)
    again = await http.post(f"{API}/incidents/{iid}/actions", json=body)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json()["snoozed_until"] == first.json()["snoozed_until"]
    assert again.json()["version"] == first.json()["version"]
    r = await act(http, iid, "acknowledge", BOB)  # answered after the retry was handled
    assert r.status_code == 200
    assert [e["kind"] for e in await timeline(http, iid) if e["kind"].startswith("action.")] == [
        "action.snooze",
        "action.acknowledge",
    ]


# ---------------------------------------------------------------------------- 202 and 502


async def test_slow_platform_answers_202(client, store, settings):
    """With a slow IM, requests answer 202 once accepted, and the state arrives later."""
    slow = settings.model_copy(update={"WARROOM_SANDBOX_LATENCY_MS": 600.0})  # per IM call
    w, im = build_worker(client, store, slow)
    async with w, api_client(create_app(slow, client=client, store=store, answer_within=0.2)) as http:
        iid = new_id()
        await create_incident(http, id=iid)
        r = await http.post(f"{API}/incidents/{iid}/war-room", json={})
        assert r.status_code == 202, r.text
        assert r.json()["state"] in ("none", "creating")
        # accepted means the workflow is creating the room now (create, invite and card: several
        # IM calls); an action queues behind that work and is answered 202 as the incident is now
        r = await act(http, iid, "acknowledge")
        assert r.status_code == 202, r.text
        assert r.json()["id"] == iid and r.json()["status"] == "triggered"

        room = await room_in_state(http, iid, "active")
        await entries_of(http, iid, "action.acknowledge")
        assert (await http.get(f"{API}/incidents/{iid}")).json()["incident"]["status"] == "acknowledged"
        r = await http.post(f"{API}/incidents/{iid}/war-room", json={})
        assert r.status_code == 200 and r.json()["chat_id"] == room["chat_id"], r.text

        r = await act(http, iid, "close")
        assert r.status_code in (200, 202), r.text  # 200 unless the card update is still running
        await entries_of(http, iid, "action.close")  # the workflow, not just the store, has it closed
        r = await http.delete(f"{API}/incidents/{iid}/war-room")  # a message and the dismissal: slow
        assert r.status_code == 202, r.text
        assert r.json()["state"] in ("active", "dismissing") and r.json()["chat_id"] == room["chat_id"]
        await room_in_state(http, iid, "dismissed")
        r = await http.delete(f"{API}/incidents/{iid}/war-room")
        assert r.status_code == 200 and r.json()["state"] == "dismissed", r.text
    await im.aclose()


async def test_repeated_room_requests_share_one_update(client, store, settings):
    """A client asking again for a room that is slow to open (202, then again) adds no update to
    the workflow while the first is unanswered. The requests in the leading run of 202s come
    within the first update's opening (seconds on a 1 s IM), so they share it: at most 13 - (that
    run's length) updates, not 12. After it each request is an update of its own, and on a busy
    machine one of them may be answered 202 too (slower than the 50 ms wait) without sharing."""
    slow = settings.model_copy(update={"WARROOM_SANDBOX_LATENCY_MS": 1000.0})
    w, im = build_worker(client, store, slow)
    async with w, api_client(create_app(slow, client=client, store=store, answer_within=0.05)) as http:
        iid = new_id()
        await create_incident(http, id=iid)
        codes = [(await http.post(f"{API}/incidents/{iid}/war-room", json={})).status_code for _ in range(12)]
        leading = next((i for i, code in enumerate(codes) if code != 202), len(codes))
        assert set(codes) <= {200, 201, 202} and leading >= 2, codes
        await room_in_state(http, iid, "active")
        history = await client.get_workflow_handle(workflow_id(iid)).fetch_history()
        accepted = [
            e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            for e in history.events
            if e.HasField("workflow_execution_update_accepted_event_attributes")
        ]
        assert accepted.count("create_room") <= 13 - leading, (accepted, codes)
    await im.aclose()


async def test_temporal_refusing_more_requests_is_429(client, store, settings):
    """Temporal admits at most 10 unanswered updates per workflow (seen while a worker was down and
    a client kept asking for a room): that is 429 with Retry-After, not a 503 blaming Temporal."""
    app = create_app(settings, client=client, store=store)

    async def busy() -> None:
        raise RPCError(
            "limit on number of concurrent in-flight updates has been reached (10)",
            RPCStatusCode.RESOURCE_EXHAUSTED,
            b"",
        )

    async def down() -> None:
        raise RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b"")

    app.add_api_route("/test/busy", busy)
    app.add_api_route("/test/down", down)
    async with api_client(app) as http:
        r = await http.get("/test/busy")
        assert error_of(r, 429, "busy")["message"].startswith("too many requests are waiting on this incident")
        assert r.headers["retry-after"] == "5"
        error_of(await http.get("/test/down"), 503, "temporal_unavailable")


@activity.defn(name="im_create_room")
async def refuse_to_create_room(inp: CreateRoomInput) -> RoomRef:
    raise ApplicationError("missing permission: im:chat:create", type="ImPermanent", non_retryable=True)


@activity.defn(name="im_open_room")
async def refuse_to_open_room(inp: OpenRoomInput) -> OpenedRoom:
    raise ApplicationError("missing permission: im:chat:create", type="ImPermanent", non_retryable=True)


async def test_room_that_cannot_be_created_is_502(client, store, settings):
    im = ImActivities(store, settings)
    refused = [refuse_to_create_room, refuse_to_open_room]
    activities = [a for a in im.all() if a.__name__ not in ("create_room", "open_room")] + refused
    activities += IncidentActivities(store).all()
    w = Worker(client, task_queue=settings.task_queue, workflows=list(WORKFLOWS), activities=activities)
    async with w, api_client(create_app(settings, client=client, store=store)) as http:
        iid = new_id()
        await create_incident(http, id=iid)
        r = await http.post(f"{API}/incidents/{iid}/war-room", json={})
        err = error_of(r, 502, "room_failed")
        assert "missing permission" in err["message"]
        assert r.json()["state"] == "failed" and "missing permission" in r.json()["detail"]
        shown = await room_in_state(http, iid, "failed")  # what a client polling after a 202 sees
        assert "missing permission" in shown["detail"] and shown["chat_id"] is None
        [failed] = await entries_of(http, iid, "room.failed")
        assert failed["outcome"] == "failed" and "missing permission" in failed["detail"]
        # nothing to dismiss
        assert (await act(http, iid, "close")).status_code == 200
        error_of(await http.delete(f"{API}/incidents/{iid}/war-room"), 409, "conflict")
    await im.aclose()


def open_room_failing_locally(im: ImActivities, *, hang: bool) -> Callable[..., Any]:
    """`im_open_room` that fails (or, `hang`, runs past the local try's time) when run as a local
    activity, and opens the room when run as the regular activity."""

    @activity.defn(name="im_open_room")
    async def open_room(inp: OpenRoomInput) -> OpenedRoom:
        if activity.info().is_local:
            if hang:
                await asyncio.sleep(30)
            raise ApplicationError("503 Service Unavailable", type="ImTransient")
        return await im.open_room(inp)

    return open_room


@pytest.mark.parametrize("hang", [False, True], ids=["local try fails", "local try runs long"])
async def test_room_opened_by_the_activity_after_its_local_try(client, store, settings, hang):
    """The room is first opened in a local activity; when that fails or runs past its few
    seconds, the regular activity (heartbeats, retries) opens it, and no workflow task was held
    past its timeout."""
    im = ImActivities(store, settings)
    ai = AiActivities(store, settings, im)
    activities = [a for a in im.all() if a.__name__ != "open_room"] + [open_room_failing_locally(im, hang=hang)]
    activities += IncidentActivities(store).all() + ai.im_queue() + ai.main_queue()
    w = Worker(client, task_queue=settings.task_queue, workflows=list(WORKFLOWS), activities=activities)
    async with w, api_client(create_app(settings, client=client, store=store)) as http:
        iid = new_id()
        await create_incident(http, id=iid)
        r = await http.post(f"{API}/incidents/{iid}/war-room", json={})
        assert r.status_code == 201 and r.json()["state"] == "active", r.text
        history = await client.get_workflow_handle(workflow_id(iid)).fetch_history()
    await im.aclose()
    tried_locally = [
        e
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
        and b"im_open_room" in e.marker_recorded_event_attributes.details["data"].payloads[0].data
    ]
    [local] = tried_locally
    assert local.marker_recorded_event_attributes.HasField("failure")
    [scheduled] = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "im_open_room"
    ]
    assert scheduled.heartbeat_timeout.seconds > 0 and scheduled.task_queue.name == settings.task_queue
    held = {"workflow_task_timed_out_event_attributes", "workflow_task_failed_event_attributes"}
    assert not [e for e in history.events if any(e.HasField(f) for f in held)]


# ---------------------------------------------------------------------------- IM callbacks


async def test_im_callbacks_verify_and_deduplicate(http, settings):
    iid = new_id()
    await create_incident(http, id=iid)
    room = await open_room(http, iid)
    chat = room["chat_id"]
    ann_uid = next(m["im_user_id"] for m in room["members"] if m["email"] == ANN)
    click = {
        "type": "action",
        "event_id": "evt-snooze-1",
        "chat_id": chat,
        "user_id": ann_uid,
        "action": "snooze",
        "minutes": 30,
    }
    raw, headers = signed(settings, click)

    # verification first: 401 with the error body, and nothing reaches the workflow
    tampered = raw.replace(b"snooze", b"close")
    error_of(await http.post("/im/sandbox/events", content=tampered, headers=headers), 401, "rejected")
    bad_sig = headers | {"x-sandbox-signature": "v1=" + "0" * 64}
    error_of(await http.post("/im/sandbox/events", content=raw, headers=bad_sig), 401, "rejected")
    error_of(await http.post("/im/sandbox/events", content=raw, headers={"content-type": "application/json"}), 401)
    old_raw, old_headers = signed(settings, click, ts=int(time.time()) - 3600)
    err = error_of(await http.post("/im/sandbox/events", content=old_raw, headers=old_headers), 401, "rejected")
    assert "stale" in err["message"]
    error_of(await http.post("/im/no-such-platform/events", content=raw, headers=headers), 404)

    # delivered twice (a platform retry), and once more signed anew: applied once
    for body, h in ((raw, headers), (raw, headers), signed(settings, click, ts=int(time.time()) - 5)):
        r = await http.post("/im/sandbox/events", content=body, headers=h)
        assert r.status_code == 200, r.text

    # someone who is not a linked responder clicks: refused, recorded under their IM user id
    stranger = {"type": "action", "event_id": "evt-stranger", "chat_id": chat, "user_id": "UNOBODY", "action": "close"}
    assert (await deliver(http, settings, stranger)).status_code == 200

    r = await act(http, iid, "acknowledge", BOB)  # answered after the callbacks above were handled
    assert r.status_code == 200 and r.json()["status"] == "acknowledged", r.text
    entries = await timeline(http, iid)
    actions = [(e["kind"], e["actor"], e["source"], e["outcome"]) for e in entries if e["kind"].startswith("action.")]
    assert actions == [
        ("action.snooze", ANN, "sandbox", "ok"),
        ("action.refused", "UNOBODY", "sandbox", "refused"),
        ("action.acknowledge", BOB, "api", "ok"),
    ], actions
    refused = next(e for e in entries if e["kind"] == "action.refused")
    assert "close" in refused["detail"] and "not a linked responder" in refused["detail"]

    # a callback for a chat that is no war room is acknowledged and ignored
    other = click | {"event_id": "evt-other", "chat_id": "CNOTAROOM"}
    assert (await deliver(http, settings, other)).status_code == 200
    # a verified but malformed callback is a client error, not a server one
    junk = {"type": "bogus"}
    r = await deliver(http, settings, junk)
    assert 400 <= r.status_code < 500 and "error" in r.json(), r.text


async def test_late_click_after_the_room_was_dismissed(http, settings):
    """The incident's workflow has finished; a late (or replayed) click must not make the
    platform retry forever with a 5xx."""
    iid = new_id()
    await create_incident(http, id=iid)
    room = await open_room(http, iid)
    ann_uid = next(m["im_user_id"] for m in room["members"] if m["email"] == ANN)
    assert (await act(http, iid, "close")).status_code == 200
    r = await http.delete(f"{API}/incidents/{iid}/war-room")
    assert r.status_code == 200, r.text
    click = {
        "type": "action",
        "event_id": "evt-late",
        "chat_id": room["chat_id"],
        "user_id": ann_uid,
        "action": "reopen",
    }
    r = await deliver(http, settings, click)
    assert r.status_code == 200, r.text
    assert (await http.get(f"{API}/incidents/{iid}")).json()["incident"]["status"] == "closed"


# ---------------------------------------------------------------------------- users


async def test_users_list_and_bulk_link(http, store):
    r = await http.get(f"{API}/users")
    assert r.status_code == 200 and r.json() == {"items": []}, r.text
    await create_incident(http, responders=[{"email": ANN, "name": "Ann"}, {"phone": "+86 138 0000 0000"}])
    await create_incident(http, responders=[{"email": BOB}, {"name": "Nobody Known"}])
    done = await create_incident(http, responders=[{"email": "gone@example.com"}])
    assert (await act(http, done["id"], "close")).status_code == 200  # closed: nobody to link

    r = await http.post(f"{API}/users/link")
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["platform"] == "sandbox"
    assert {m["responder_id"] for m in result["linked"]} == {ANN, "+8613800000000", BOB}
    assert all(m["im_user_id"] and m["state"] == "invited" for m in result["linked"])
    assert [m["responder_id"] for m in result["unlinked"]] == ["nobody.known"]

    links = (await http.get(f"{API}/users")).json()["items"]
    assert {(u["email"], u["phone"]) for u in links} == {(ANN, None), (BOB, None), (None, "+8613800000000")}
    assert all(u["platform"] == "sandbox" and u["im_user_id"] and u["method"] for u in links)
    assert len((await http.get(f"{API}/users", params={"platform": "sandbox"})).json()["items"]) == 3
    assert (await http.get(f"{API}/users", params={"platform": "slack"})).json()["items"] == []

    r = await http.post(f"{API}/users/link", json={"platform": "sandbox"})  # again: the stored links
    assert r.status_code == 200 and len(r.json()["linked"]) == 3, r.text


# ---------------------------------------------------------------------------- operations


async def test_healthz_and_metrics(http, store):
    r = await http.get("/healthz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "temporal": "ok"}

    iid = new_id()
    await create_incident(http, id=iid)
    await create_incident(http)
    await open_room(http, iid)
    assert (await act(http, iid, "acknowledge")).status_code == 200

    async def counted() -> str | None:
        text = (await http.get("/metrics")).text
        wanted = (
            'warroom_incidents{status="triggered"} 1',
            'warroom_incidents{status="acknowledged"} 1',
            'warroom_rooms{platform="sandbox",state="active"} 1',
        )
        return text if all(w in text.splitlines() for w in wanted) else None

    text = await eventually(counted)
    r = await http.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    for line in text.splitlines():
        assert line.startswith(("# HELP warroom_", "# TYPE warroom_", "warroom_")), line


async def test_healthz_without_temporal(store, settings):
    port = free_port()
    down = settings.model_copy(update={"temporal_address": f"127.0.0.1:{port}"})
    async with api_client(create_app(down, store=store)) as http:
        r = await http.get("/healthz")
        assert r.status_code == 503, r.text
        assert r.json()["checks"]["database"] == "ok" and r.json()["checks"]["temporal"] != "ok"
        error_of(await http.post(f"{API}/incidents", json={"title": "x"}), 503, "temporal_unavailable")


async def test_unstorable_or_unbounded_input_is_a_422_not_a_500(http):
    """NUL characters (PostgreSQL refuses them in text), lone surrogates (UTF-8 cannot hold them),
    NaN and Infinity (JSON has neither; they used to become null), and labels or names without
    bounds are refused with what is wrong."""
    bodies = [
        b'{"title": "checkout \\u0000 down"}',
        b'{"title": "t", "responders": [{"name": "Ann\\u0000", "email": "ann@example.com"}]}',
        b'{"title": "checkout \\ud800 down"}',
        b'{"title": "t", "labels": {"\\udfff": "v"}}',
        b'{"title": "t", "alerts": [{"title": "p99", "value": NaN}]}',
        b'{"title": "t", "alerts": [{"title": "p99", "value": Infinity}]}',
        json.dumps({"title": "t", "labels": {f"k{i}": "v" for i in range(65)}}).encode(),
        json.dumps({"title": "t", "labels": {"k": "v" * 501}}).encode(),
        json.dumps({"title": "t", "responders": [{"name": "n" * 201}]}).encode(),
    ]
    for body in bodies:
        r = await http.post(f"{API}/incidents", content=body, headers={"content-type": "application/json"})
        error_of(r, 422)
    iid = (await create_incident(http, id=new_id()))["id"]
    r = await http.put(f"{API}/incidents/{iid}/responders", json={"responders": [{"name": "B\u0000b"}]})
    error_of(r, 422)
