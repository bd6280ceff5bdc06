"""The `warroom` CLI against a real API (uvicorn on a free port) backed by the real Temporal dev
server, SQL store and worker of conftest.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from click.testing import Result
from pydantic import SecretStr
from typer.testing import CliRunner

from starters.api.app import create_app
from starters.cli import app
from starters.cli.people import parse_responders
from tests.serving import free_port, serving
from workers.main import build_worker

from .conftest import eventually

ENV = {"COLUMNS": "200", "WARROOM_API_TOKEN": "", "WARROOM_ACTOR": "tester@example.com"}


@pytest_asyncio.fixture
async def api_url(client, worker, store, settings) -> AsyncIterator[str]:
    async with serving(create_app(settings, client=client, store=store)) as url:
        yield url


class Cli:
    """Runs the CLI in a thread, so the API served by this event loop keeps answering."""

    def __init__(self, url: str, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.env = {**ENV, "WARROOM_PUBLIC_URL": url, **(env or {})}
        self.runner = CliRunner()

    async def __call__(self, *args: str, code: int = 0) -> Result:
        result = await asyncio.to_thread(self.runner.invoke, app, list(args), env=self.env)
        assert result.exit_code == code, (
            f"warroom {' '.join(args)} exited {result.exit_code}, wanted {code}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}\n{result.exception!r}"
        )
        return result

    async def json(self, *args: str) -> Any:
        return json.loads((await self(*args, "--json")).stdout)


def test_parse_responders():
    assert parse_responders(["ann@x.io, Bob <bob@x.io>", "+8613800000000", "Carol"]) == [
        {"email": "ann@x.io"},
        {"name": "Bob", "email": "bob@x.io"},
        {"phone": "+8613800000000"},
        {"name": "Carol"},
    ]


async def test_incident_lifecycle(api_url, store):
    cli = Cli(api_url)
    inc = await cli.json(
        "incident", "create", "--title", "Checkout is down", "--severity", "high",
        "--responder", "ann@example.com,bob@example.com", "--label", "service=checkout",
    )  # fmt: skip
    iid = inc["id"]
    assert inc["status"] == "triggered" and inc["severity"] == "high"
    assert [r["email"] for r in inc["responders"]] == ["ann@example.com", "bob@example.com"]
    assert inc["labels"] == {"service": "checkout"}

    shown = await cli.json("incident", "show", iid)
    assert shown["incident"]["id"] == iid and shown["war_room"]["state"] == "none"
    listed = await cli.json("incident", "list", "--status", "triggered")
    assert iid in [i["id"] for i in listed["items"]]
    human = (await cli("incident", "list")).stdout
    assert iid in human and "Checkout is down" in human and "triggered" in human

    room = await cli.json("room", "create", iid)
    assert room["state"] == "active" and room["chat_id"] and room["platform"] == "sandbox"
    assert {m["email"] for m in room["members"]} == {"ann@example.com", "bob@example.com"}
    again = await cli.json("room", "create", iid)  # idempotent
    assert again["chat_id"] == room["chat_id"]
    human = (await cli("room", "show", iid)).stdout
    assert "active" in human and room["chat_id"] in human and "ann@example.com" in human

    acked = await cli.json("incident", "ack", iid, "--actor", "ann@example.com")
    assert acked["status"] == "acknowledged"
    snoozed = await cli.json("incident", "snooze", iid, "--minutes", "30")
    assert snoozed["status"] == "snoozed" and snoozed["snoozed_until"]
    out = (await cli("incident", "ack", iid)).stdout
    assert "acknowledged by tester@example.com" in out

    people = await cli.json("incident", "responders", iid, "--add", "carol@example.com", "--remove", "bob@example.com")
    assert [r["email"] for r in people["responders"]] == ["ann@example.com", "carol@example.com"]

    async def carol_invited() -> bool:
        members = (await cli.json("room", "show", iid))["members"]
        return any(m["email"] == "carol@example.com" and m["state"] == "invited" for m in members)

    await eventually(carol_invited)
    human = (await cli("incident", "responders", iid)).stdout
    assert "carol@example.com" in human and "bob@example.com" not in human

    roles = await cli.json("incident", "role", iid, "lead", "ann@example.com")
    assert roles == {"roles": {"lead": "ann@example.com"}}
    human = (await cli("incident", "role", iid, "comms", "Carol")).stdout
    assert "comms is Carol now" in human and "lead: ann@example.com" in human

    closed = await cli.json("incident", "close", iid)
    assert closed["status"] == "closed"
    dismissed = await cli.json("room", "dismiss", iid)
    assert dismissed["state"] == "dismissed"

    shown = await cli.json("incident", "show", iid)
    assert shown["incident"]["status"] == "closed" and shown["war_room"]["state"] == "dismissed"
    kinds = [(e["kind"], e["actor"], e["source"]) for e in shown["timeline"]]
    assert ("action.acknowledge", "ann@example.com", "cli") in kinds
    assert ("action.snooze", "tester@example.com", "cli") in kinds
    assert ("action.close", "tester@example.com", "cli") in kinds
    assert ("role.assigned", "tester@example.com", "cli") in kinds
    assert any(k == "room.dismissed" for k, _, _ in kinds)
    human = (await cli("incident", "show", iid, "--timeline", "0")).stdout
    assert "Checkout is down" in human and "closed" in human and "room.created" in human
    assert f"incident-{iid}" in human  # where to find it in Temporal UI

    reopened = await cli.json("incident", "reopen", iid)
    assert reopened["status"] == "triggered"


async def test_create_with_room_and_link_users(api_url):
    cli = Cli(api_url)
    result = await cli(
        "incident", "create", "--id", "cli-room-1", "--title", "Payments slow",
        "--responder", "Dana <dana@example.com>", "--room",
    )  # fmt: skip
    assert "Incident created" in result.stdout and "cli-room-1" in result.stdout
    assert "War room open" in result.stdout and "/sandbox#room=" in result.stdout
    view = await cli("room", "join", "cli-room-1")  # the sandbox has a link: that is all it takes
    assert "Open the war room: http" in view.stdout and "/sandbox#room=" in view.stdout

    both = await cli.json("incident", "create", "--id", "cli-room-2", "-t", "Search down", "-r", "eve@x.io", "--room")
    assert both["id"] == "cli-room-2" and both["war_room"]["state"] == "active"

    linked = await cli.json("users", "link")
    assert linked["platform"] == "sandbox"
    assert {"dana@example.com", "eve@x.io"} <= {m["responder_id"] for m in linked["linked"]}
    users = await cli.json("users", "list")
    assert {"dana@example.com", "eve@x.io"} <= {u["email"] for u in users["items"]}
    human = (await cli("users", "list")).stdout
    assert "dana@example.com" in human and "sandbox" in human


async def test_errors(api_url):
    cli = Cli(api_url)
    r = await cli("incident", "show", "no-such-incident", code=1)
    assert "no-such-incident" in r.stderr and "does not exist" in r.stderr and "Traceback" not in r.output
    r = await cli("incident", "ack", "no-such-incident", code=1)
    assert "does not exist" in r.stderr

    iid = (await cli.json("incident", "create", "--title", "Still open", "-r", "fay@example.com", "--room"))["id"]
    r = await cli("room", "dismiss", iid, code=1)  # 409: close it first
    assert "close it" in r.stderr and f"warroom incident close {iid}" in r.stderr
    r = await cli("incident", "reopen", iid, code=1)  # refused by the workflow
    assert "reopen" in r.stderr and "triggered" in r.stderr

    r = await cli("incident", "create", "--title", "x", "--severity", "urgent", code=2)
    assert "--severity" in r.stderr
    r = await cli("incident", "create", "--title", "x", "-r", "not-an-email@", code=1)  # the API's 422
    assert "not an email address" in r.stderr


def test_api_unreachable():
    port = free_port()  # nothing listens here
    runner = CliRunner()
    for args in (["incident", "list"], ["incident", "show", "x", "--api-url", f"http://127.0.0.1:{port}"]):
        r = runner.invoke(app, args, env={**ENV, "WARROOM_PUBLIC_URL": f"http://127.0.0.1:{port}"})
        assert r.exit_code == 3, r.output
        assert "cannot reach the War Room API" in r.stderr and "warroom dev" in r.stderr and "--api-url" in r.stderr


async def test_token(client, worker, store, settings):
    secured = settings.model_copy(update={"api_token": SecretStr("s3cret")})
    async with serving(create_app(secured, client=client, store=store)) as url:
        r = await Cli(url)("incident", "list", code=1)
        assert "API token" in r.stderr and "WARROOM_API_TOKEN" in r.stderr
        listed = await Cli(url, {"WARROOM_API_TOKEN": "s3cret"}).json("incident", "list")
        assert listed["items"] == []


async def test_accepted_and_still_applying_reads_the_same_everywhere(client, store, settings):
    """An API that answers before the workflow does (202): every command says what it accepted
    and the command that shows how it ends, in the same words. The IM is slow (each call 600 ms),
    so the room cannot be open yet when the 202 is answered: a fast local try can open it within
    the API's look at the workflow, and the CLI then rightly says it is open."""
    slow = settings.model_copy(update={"WARROOM_SANDBOX_LATENCY_MS": 600.0})
    w, im = build_worker(client, store, slow)
    async with w, serving(create_app(slow, client=client, store=store, answer_within=0)) as url:
        cli = Cli(url)
        iid = (await cli.json("incident", "create", "--title", "Slow answers", "-r", "gus@example.com"))["id"]
        check_incident = f"; check with `warroom incident show {iid}`."
        check_room = f"; check with `warroom room show {iid}`."
        r = await cli("room", "create", iid, "--wait", "0")
        assert r.stdout.strip() == "… The war room is still being opened" + check_room, r.stdout
        r = await cli("incident", "ack", iid)
        assert r.stdout.strip() == f"… acknowledge of {iid} accepted and still being applied" + check_incident
        r = await cli("incident", "role", iid, "lead", "gus@example.com")
        assert r.stdout.strip() == f"… lead of {iid} accepted and still being recorded" + check_incident
        await cli("incident", "close", iid)

        async def settled() -> bool:
            shown = await cli.json("incident", "show", iid)
            return shown["incident"]["status"] == "closed" and shown["war_room"]["state"] == "active"

        await eventually(settled, timeout=30)
        r = await cli("room", "dismiss", iid, "--wait", "0")
        assert r.stdout.strip().startswith(f"… dismissal of the war room of {iid} accepted and still being applied")
        assert r.stdout.strip().endswith(check_room), r.stdout
    await im.aclose()


@pytest.mark.parametrize("args", [["--help"], ["incident", "--help"], ["room", "--help"], ["users", "--help"]])
def test_help(args):
    r = CliRunner().invoke(app, args, env=ENV)
    assert r.exit_code == 0, r.output


def test_start_up_stays_light():
    """`warroom --help` and every command's parsing load typer and rich only: the API client
    (httpx), asyncio, pydantic and Temporal are imported by the commands that use them."""
    probe = "import starters.cli, sys; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(run.stdout.split())
    assert "typer" in loaded
    assert not loaded & {"httpx", "asyncio", "pydantic", "temporalio", "fastapi", "sqlalchemy"}
