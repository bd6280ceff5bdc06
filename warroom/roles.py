"""An incident's roles (lead, scribe, comms) as the timeline records them: the workflow writes a
`role.assigned` entry per change, and readers (the console) take who holds what from those
entries, so no other store is needed. A holder's name never holds parentheses (`checked_role_holder`),
so the entry reads back unambiguously.

Roles are given from the console, the API, the CLI and the room (`@warroom lead me`,
`@warroom scribe Bob Example`, `@warroom comms none`: `room_command` reads those)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from warroom.enums import Role, TimelineKind
from warroom.messages import RoleCommand
from warroom.models import Outcome, TimelineEntry

NOBODY = "(none)"
# Who may hold a role: an email or a plain name, nothing a platform renders as a mention or markup.
_HOLDER = re.compile(r"^[^\W_][\w .+'@-]{0,319}$")
HOLDER_RULE = "name the person by email or by name (letters, digits, spaces and . _ + - ' @)"


class InvalidRoleHolder(ValueError):
    """A role holder a role cannot name: it could read as a mention, a link or markup somewhere."""

    def __init__(self) -> None:
        super().__init__(HOLDER_RULE)

    def sentence(self) -> str:
        """The rule as a sentence, for a page or a room."""
        return HOLDER_RULE[0].upper() + HOLDER_RULE[1:] + "."


def checked_role_holder(person: str) -> str:
    """`person` as a role records it (stripped; "" for nobody), or InvalidRoleHolder. The one
    check of the API (422), the console (a flash), the workflow's update validator and the room."""
    holder = person.strip()
    if holder and not _HOLDER.match(holder):
        raise InvalidRoleHolder()
    return holder


# `@warroom lead me`: the bot's mention first (Slack's `<@U…>`, the sandbox's `@warroom`), a role,
# then who (nothing: who holds it now). A message ending in a question mark is a question.
_COMMAND = re.compile(
    r"^\s*(?:<@[^>]+>|@warroom\b|@War Room\b)?[\s,:]*(lead|scribe|comms)\b[\s,:]*(.*?)[\s.!\u3002\uff01]*$",
    re.I | re.S,
)
_ME = {"me", "myself", "i", "我"}
_NOBODY = {"none", "nobody", "no one", "noone", "-", "clear", "unset", "无"}
_USER_MENTION = re.compile(r"^<@([A-Za-z0-9_.-]+)(?:\|[^>]*)?>$")  # another person, as the platform mentions them


def room_command(text: str) -> RoleCommand | None:
    """The role a room message gives, or None when it is no role command."""
    m = _COMMAND.match(text)
    if m is None or text.rstrip().endswith(("?", "\uff1f")):
        return None
    role, who = Role(m.group(1).lower()), m.group(2).strip()
    if not who:
        return RoleCommand(role=role, ask=True)
    if who.lower() in _ME:
        return RoleCommand(role=role, me=True)
    if who.lower() in _NOBODY:
        return RoleCommand(role=role)
    mention = _USER_MENTION.match(who)
    if mention:
        return RoleCommand(role=role, im_user_id=mention.group(1))
    return RoleCommand(role=role, person=who[:400])


def assignment(role: Role, person: str, before: str) -> str:
    """The entry's detail: `lead: Ann Example (was Bob)`; `(none)` when nobody holds it now."""
    return f"{role.value}: {person or NOBODY}" + (f" (was {before})" if before else "")


def holders(entries: Iterable[TimelineEntry]) -> dict[str, str]:
    """Who holds each role after `entries` (oldest first), in Role order."""
    held: dict[str, str] = {}
    for e in entries:
        if e.kind != TimelineKind.ROLE_ASSIGNED.value or e.outcome is not Outcome.OK or ": " not in e.detail:
            continue
        role, person = e.detail.split(": ", 1)
        if " (was " in person and person.endswith(")"):
            person = person[: person.index(" (was ")]
        if person == NOBODY:
            held.pop(role, None)
        else:
            held[role] = person
    return {r.value: held[r.value] for r in Role if r.value in held}
