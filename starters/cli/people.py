"""People on the command line: who is acting, and the responders a command names."""

from __future__ import annotations

import getpass
import os
import re
import subprocess
from typing import Any

from starters.cli.errors import EXIT_USAGE, fail

_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{5,19}$")
_NAMED = re.compile(r"^\s*(?P<name>[^<>]+?)\s*<(?P<contact>[^<>]+)>\s*$")


def default_actor() -> str:
    """Who is acting: $WARROOM_ACTOR, else git's user.email, else the login name."""
    if os.environ.get("WARROOM_ACTOR"):
        return os.environ["WARROOM_ACTOR"]
    try:
        email = subprocess.run(
            ["git", "config", "user.email"], capture_output=True, text=True, timeout=2, check=False
        ).stdout.strip()
        if email:
            return email
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return os.environ.get("USER") or getpass.getuser() or "cli"
    except Exception:
        return "cli"


def parse_responders(values: list[str] | None) -> list[dict[str, str]]:
    """`a@x.io`, `Ann <a@x.io>`, `+8613800000000` or a plain name; commas separate several."""
    people: list[dict[str, str]] = []
    for value in values or []:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            person: dict[str, str] = {}
            m = _NAMED.match(part)
            if m:
                person["name"], part = m["name"], m["contact"].strip()
            if "@" in part:
                person["email"] = part
            elif _PHONE.match(part):
                person["phone"] = part
            elif "name" not in person:
                person["name"] = part
            else:
                fail(f"cannot read responder {value!r}: expected an email, a phone number or a name", EXIT_USAGE)
            people.append(person)
    return people


def matches(responder: dict[str, Any], key: str) -> bool:
    """Whether `key` is the responder's id, email, phone or name (any case)."""
    key = key.strip().lower()
    return key in {str(responder.get(f) or "").lower() for f in ("id", "email", "phone", "name")}
