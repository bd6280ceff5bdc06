"""Names and dedup ids DingTalk sees, derived from War Room's keys (the same on every retry).

- a scene group's `uuid` ("建群去重的业务ID") comes from the room's idempotency key, which names the
  incident and the room generation: a retried or concurrent create yields one group, and a
  reopened incident (generation 2) a new one;
- a card's `outTrackId` ("一个 outTrackId 唯一标识一张卡片") comes from the incident and the card's
  key: creating it again is no second card, and updates name the same id;
- a group title holds at most 30 characters (DingTalk's limit) and always keeps the incident id.
"""

from __future__ import annotations

import hashlib
import re

from warroom.im.base import RoomSpec

MAX_TITLE = 30
MAX_ID = 64
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def _digest(key: str, n: int) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:n]


def group_uuid(spec: RoomSpec) -> str:
    return f"wr-{_digest(spec.idempotency_key, 40)}"


def out_track_id(incident_id: str, key: str) -> str:
    """`wr-<incident>-<digest of the key>`, within 64 safe characters."""
    safe = _SAFE.sub("_", incident_id)
    if len(safe) > 32:
        safe = safe[:20] + _digest(incident_id, 12)
    return f"wr-{safe}-{_digest(key, 20)}"[:MAX_ID]


def group_title(spec: RoomSpec) -> str:
    """The room's name within 30 characters, the incident id kept whole where it fits."""
    name = " ".join(spec.name.split()) or f"inc-{spec.incident_id}"
    if len(name) <= MAX_TITLE:
        return name
    iid = spec.incident_id
    at = name.find(iid)
    if at < 0 or at + len(iid) > MAX_TITLE - 1:  # the id would be cut: put it first
        rest = name.replace(iid, "").strip(" -—:") if at >= 0 else name
        name = f"{iid} {rest}"
    if len(iid) >= MAX_TITLE:
        return iid[:MAX_TITLE]
    return name[: MAX_TITLE - 1].rstrip() + "…"
