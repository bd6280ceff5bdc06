"""Who may hold a role (the one check of the API, the console, the workflow and the room) and how
a room message gives a role (`@warroom lead me`)."""

from __future__ import annotations

import pytest

from warroom.enums import Role
from warroom.messages import RoleCommand
from warroom.roles import InvalidRoleHolder, checked_role_holder, room_command


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
