"""A room on a platform that can do little (the in-memory platform: no join link, no card edits,
no way to end a room), driven end to end through the API, the workflow and the worker: View War
Room adds the asking person, each change of the card is a new status message, and dismissal is a
closing message and a rename."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.client import Client

from starters.api.app import create_app
from tests.platforms import installed
from warroom.settings import Settings
from warroom.store import Store
from workers.main import build_worker

from .conftest import eventually
from .serving import serving
from .test_api import ANN, API, BOB, api_client, create_incident, error_of, new_id
from .test_cli import Cli


@pytest_asyncio.fixture
async def poor(client: Client, store: Store, settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
    """(an API client, the in-memory platform's adapter) with a worker serving both."""
    with installed(tmp_path / "site", {"memory": "tests.platforms.memory:plugin"}):
        settings = settings.model_copy(update={"MEMORY_TOKEN": "m-secret"})
        worker, im = build_worker(client, store, settings)
        async with worker, api_client(create_app(settings, client=client, store=store)) as http:
            yield http, im.adapter("memory")
        await im.aclose()


async def test_view_war_room_adds_the_asking_person_where_the_platform_has_no_join_link(poor) -> None:
    http, memory = poor
    incident = await create_incident(http, id=new_id("join"), responders=[{"email": ANN}])
    iid = incident["id"]
    r = await http.post(f"{API}/incidents/{iid}/war-room", json={"platform": "memory"})
    assert r.status_code == 201, r.text
    room = r.json()
    assert room["join_url"] is None
    chat = memory.chats[room["chat_id"]]
    assert chat.members == {"m-ann"}

    r = await http.post(f"{API}/incidents/{iid}/war-room/join", json={"email": BOB, "actor": BOB})
    assert r.status_code == 200, r.text
    assert r.json()["added"] is True
    bob = [m for m in r.json()["members"] if m["email"] == BOB]
    assert [m["state"] for m in bob] == ["invited"]
    assert chat.members == {"m-ann", "m-bob"}
    again = await http.post(f"{API}/incidents/{iid}/war-room/join", json={"email": BOB, "actor": BOB})
    assert again.status_code == 200 and [m["email"] for m in again.json()["members"]].count(BOB) == 1

    stranger = await http.post(f"{API}/incidents/{iid}/war-room/join", json={"email": "carol@example.com"})
    assert stranger.status_code == 200
    [carol] = [m for m in stranger.json()["members"] if m["email"] == "carol@example.com"]
    assert carol["state"] == "unlinked"  # the platform does not know her: visible, not an error
    assert error_of(await http.post(f"{API}/incidents/{iid}/war-room/join", json={}), 422)

    joined = [e for e in (await http.get(f"{API}/incidents/{iid}/timeline")).json() if e["kind"] == "member.joined"]
    assert [e["actor"] for e in joined][:2] == [BOB, BOB]

    # No card edits: the acknowledgement is a new status message, posted once.
    r = await http.post(f"{API}/incidents/{iid}/actions", json={"action": "acknowledge", "actor": ANN})
    assert r.status_code == 200, r.text
    await eventually(lambda: any("Status: acknowledged" in t for t in chat.messages.values()))
    assert sum("Status: acknowledged" in t for t in chat.messages.values()) == 1

    # No way to end a room: a closing message and a rename; nothing is posted after it.
    r = await http.post(f"{API}/incidents/{iid}/actions", json={"action": "close", "actor": ANN})
    assert r.status_code == 200, r.text
    r = await http.delete(f"{API}/incidents/{iid}/war-room")
    assert r.status_code == 200 and r.json()["state"] == "dismissed", r.text
    assert chat.name.startswith("[closed] inc-")
    assert list(chat.messages.values())[-1].startswith("This war room is closed")


@pytest_asyncio.fixture
async def sandbox(client: Client, worker: Any, store: Store, settings: Settings) -> AsyncIterator[Any]:
    async with api_client(create_app(settings, client=client, store=store)) as http:
        yield http


async def test_view_war_room_is_the_link_where_the_platform_has_one(sandbox) -> None:
    http = sandbox
    incident = await create_incident(http, id=new_id("join"), responders=[{"email": ANN}])
    iid = incident["id"]
    assert error_of(await http.post(f"{API}/incidents/{iid}/war-room/join", json={"email": BOB}), 409)
    assert (await http.post(f"{API}/incidents/{iid}/war-room", json={})).status_code == 201
    r = await http.post(f"{API}/incidents/{iid}/war-room/join", json={"email": BOB})
    assert r.status_code == 200 and r.json()["added"] is False
    assert r.json()["join_url"].endswith(f"#room={r.json()['chat_id']}")
    assert BOB not in [m["email"] for m in r.json()["members"]]  # the link is all it takes
    error_of(await http.post(f"{API}/incidents/nope-{new_id()}/war-room/join", json={"email": BOB}), 404)


async def test_room_join_from_the_cli(client: Client, store: Store, settings: Settings, tmp_path: Path) -> None:
    with installed(tmp_path / "site", {"memory": "tests.platforms.memory:plugin"}):
        settings = settings.model_copy(update={"MEMORY_TOKEN": "m-secret"})
        worker, im = build_worker(client, store, settings)
        async with worker, serving(create_app(settings, client=client, store=store)) as url:
            cli = Cli(url)
            iid = new_id("join-cli")
            await cli("incident", "create", "--id", iid, "-t", "Queue stuck", "-r", ANN)
            await cli("room", "create", iid, "--platform", "memory")
            added = await cli("room", "join", iid, "--actor", BOB)
            assert f"{BOB} was added to the war room of {iid}" in added.stdout
            assert "m-bob" in next(iter(im.adapter("memory").chats.values())).members
            unknown = await cli("room", "join", iid, "--email", "zed@example.com")
            assert "zed@example.com is unlinked" in unknown.stdout
            await cli("room", "join", iid, "--actor", "nobody", code=2)
        await im.aclose()
