"""Names and ids WeCom sees, derived from War Room's keys (the same on every retry).

- a group's `chatid` (chosen by the caller, at most 32 of [0-9a-zA-Z], unique in the corp) comes
  from the room's idempotency key, which names the incident and the room generation: a retried or
  concurrent create meets "chatid exists" instead of making a second group, and a reopened
  incident (generation 2) gets a new one;
- a card's `task_id` (unique per app, at most 128 of [0-9a-zA-Z_-@]) names the group, the card
  version and the person: one card per person and version, never two;
- a group name holds at most 50 characters and always keeps the incident id.
"""

from __future__ import annotations

import hashlib

from warroom.im.base import RoomSpec

MAX_NAME = 50
CHAT_PREFIX = "wr"


def _digest(key: str, n: int) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:n]


def chat_id(spec: RoomSpec) -> str:
    return CHAT_PREFIX + _digest(spec.idempotency_key, 30)


def task_id(chat: str, version: int, userid: str, attempt: int = 0) -> str:
    suffix = f"_{attempt}" if attempt else ""
    return f"{chat}_v{version}_{_digest(userid, 8)}{suffix}"


def chat_of_task(task: str) -> str | None:
    """The group a card's `task_id` belongs to (its first part)."""
    head = task.split("_", 1)[0]
    return head if head.startswith(CHAT_PREFIX) and len(head) == 32 and head.isalnum() else None


def fit(name: str, incident_id: str = "") -> str:
    """A group name within 50 characters, the incident id kept whole where it fits."""
    name = " ".join(name.split()) or incident_id or "War Room"
    if len(name) <= MAX_NAME:
        return name
    at = name.find(incident_id) if incident_id else -1
    if incident_id and (at < 0 or at + len(incident_id) > MAX_NAME - 1):  # the id would be cut: put it first
        rest = name.replace(incident_id, "").strip(" -—:") if at >= 0 else name
        name = f"{incident_id} {rest}"
    if len(incident_id) >= MAX_NAME:
        return incident_id[:MAX_NAME]
    return name[: MAX_NAME - 1].rstrip() + "…"


def group_name(spec: RoomSpec) -> str:
    return fit(spec.name or f"inc-{spec.incident_id}", spec.incident_id)
