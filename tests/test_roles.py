"""Who may hold a role (the one check of the API, the console, the workflow and the room) and how
a room message gives a role (`@warroom lead me`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from starters.api.app import create_app
from warroom.enums import Role
from warroom.messages import RoleCommand
from warroom.roles import HOLDER_RULE, InvalidRoleHolder, checked_role_holder, room_command
from warroom.settings import Settings
from warroom.store import Store

from .conftest import eventually
from .test_ai import ANN, API, BOB, bot_messages, kinds, open_room, say


def test_a_role_holder_is_an_email_or_a_plain_name() -> None:
    assert checked_role_holder("  ann@example.com ") == "ann@example.com"
    assert checked_role_holder("Bob O'Example-Smith") == "Bob O'Example-Smith"
    assert checked_role_holder("   ") == ""  # nobody
    for hostile in ("<!channel>", "@here", "[x](https://evil.example)", "Bob (was Ann)", "*bold*", "_x"):
        with pytest.raises(InvalidRoleHolder, match="by email or by name") as e:
            checked_role_holder(hostile)
        assert e.value.sentence().startswith("Name the person by email") and e.value.sentence().endswith(".")
    with pytest.raises(ValueError):  # what the workflow's validator and the console catch
        checked_role_holder("x" * 321)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("@warroom lead me", RoleCommand(role=Role.LEAD, me=True)),
        ("@warroom Lead me.", RoleCommand(role=Role.LEAD, me=True)),
        ("<@UBOT> scribe Bob Example", RoleCommand(role=Role.SCRIBE, person="Bob Example")),
        ("@warroom comms: bob@example.com", RoleCommand(role=Role.COMMS, person="bob@example.com")),
        ("@warroom lead none", RoleCommand(role=Role.LEAD)),
        ("@warroom scribe nobody", RoleCommand(role=Role.SCRIBE)),
        ("<@UBOT> lead <@U0BOB>", RoleCommand(role=Role.LEAD, im_user_id="U0BOB")),
        ("<@UBOT> lead <@U0BOB|bob>", RoleCommand(role=Role.LEAD, im_user_id="U0BOB")),
        ("@warroom lead", RoleCommand(role=Role.LEAD, ask=True)),
        ("@warroom scribe <!channel>", RoleCommand(role=Role.SCRIBE, person="<!channel>")),  # refused later
    ],
)
def test_room_role_commands(text: str, command: RoleCommand) -> None:
    assert room_command(text) == command


@pytest.mark.parametrize(
    "text",
    [
        "@warroom who is the lead?",
        "@warroom lead time of the deploy?",  # a question
        "@warroom what is the status?",
        "@warroom more",
        "@warroom leadership changes",  # not the word
        "we need a lead",
    ],
)
def test_questions_are_no_role_commands(text: str) -> None:
    assert room_command(text) is None


# ---------------------------------------------------------------------------- from the room, end to end


@pytest_asyncio.fixture
async def http(client: Client, worker: Worker, store: Store, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=client, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=60) as h:
        yield h


async def reply_to(http: httpx.AsyncClient, chat: str, after: str, words: str) -> str:
    """The bot's first message after message `after` holding `words`."""

    async def check() -> str | None:
        found = [m["text"] for m in await bot_messages(http, chat) if m["id"] > int(after) and words in m["text"]]
        return found[0] if found else None

    try:
        return await eventually(check, timeout=30)
    except AssertionError:
        print("BOT", [m["text"] for m in await bot_messages(http, chat)])
        raise


async def test_roles_are_given_from_the_room(http: httpx.AsyncClient, store: Store) -> None:
    """`@warroom lead me` / `scribe Bob Example` / `lead <email>` / `scribe none` from linked
    responders in the sandbox room: each a `role.assigned` entry by the speaker from the sandbox,
    the same state the set_role update keeps, and a confirmation that pings nobody. A name that
    could ping or link and a speaker who is no linked responder change nothing, audited as refused."""
    iid, chat = await open_room(http, labels={}, alerts=[])

    said = await say(http, chat, ANN, "@warroom lead me")
    assert await reply_to(http, chat, said, "Lead:") == f"Lead: {ANN}, set by {ANN}."
    said = await say(http, chat, BOB, "@warroom scribe Bob Example")
    assert await reply_to(http, chat, said, "Scribe:") == f"Scribe: Bob Example, set by {BOB}."
    said = await say(http, chat, ANN, f"@warroom lead {BOB}")
    assert await reply_to(http, chat, said, "Lead:") == f"Lead: {BOB} (was {ANN}), set by {ANN}."
    said = await say(http, chat, BOB, "@warroom scribe none")
    assert await reply_to(http, chat, said, "Scribe:") == f"Scribe: nobody (was Bob Example), set by {BOB}."
    said = await say(http, chat, BOB, f"@warroom lead {BOB}")
    assert await reply_to(http, chat, said, "already") == f"Lead is {BOB} already."

    said = await say(http, chat, ANN, "@warroom comms <!channel> [x](https://evil.example)")
    refusal = await reply_to(http, chat, said, "not changed")
    assert refusal == "Comms not changed. " + InvalidRoleHolder().sentence()
    r = await http.post(f"/sandbox/api/rooms/{chat}/join", json={"user": "eve@example.com"})
    assert r.status_code == 200, r.text
    said = await say(http, chat, "eve@example.com", "@warroom comms me")
    assert "not a linked responder" in await reply_to(http, chat, said, "Comms not changed")
    said = await say(http, chat, ANN, "@warroom lead")
    assert (await reply_to(http, chat, said, "Lead:")).startswith(f"Lead: {BOB}. Give it with")

    entries = [e for e in await kinds(http, iid, "role.assigned")]
    assert [(e["actor"], e["source"], e["outcome"], e["detail"]) for e in entries] == [
        (ANN, "sandbox", "ok", f"lead: {ANN}"),
        (BOB, "sandbox", "ok", "scribe: Bob Example"),
        (ANN, "sandbox", "ok", f"lead: {BOB} (was {ANN})"),
        (BOB, "sandbox", "ok", "scribe: (none) (was Bob Example)"),
        (ANN, "sandbox", "refused", "comms not changed: " + HOLDER_RULE),
        (entries[5]["actor"], "sandbox", "refused", "comms not changed: is not a linked responder of this incident"),
    ]
    assert entries[5]["actor"] not in (ANN, BOB)  # the stranger, by their IM user id
    # The room's changes are the workflow's roles: the API's next change answers with them all.
    r = await http.put(f"{API}/incidents/{iid}/roles/comms", json={"person": "Cy", "actor": ANN})
    assert r.status_code == 200 and r.json()["roles"] == {"lead": BOB, "comms": "Cy"}, r.text
    ours = [m["text"] for m in await bot_messages(http, chat)]
    assert not any("<!" in t or "](" in t for t in ours)  # nothing we said carries the hostile text
    # Role commands are not questions: the assistant answered none of them.
    assert await kinds(http, iid, "ai.answer") == []
