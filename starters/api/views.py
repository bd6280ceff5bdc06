"""JSON shapes of CONTRACT.md, built from domain models."""

from __future__ import annotations

from typing import Any

from warroom.models import Incident, TimelineEntry, WarRoom
from warroom.store.sources import SourceLink


def incident_json(i: Incident) -> dict[str, Any]:
    return i.model_dump(mode="json")


def source_json(link: SourceLink | None) -> dict[str, str] | None:
    """Where an incident came from (CONTRACT.md: `source: {name, external_id, url}`); None: typed in."""
    if link is None:
        return None
    return {"name": link.source, "external_id": link.external_id, "url": link.url}


def room_json(room: WarRoom | None, default_platform: str) -> dict[str, Any]:
    room = room or WarRoom(platform=default_platform)
    return {
        "state": room.state.value,
        "platform": room.platform,
        "chat_id": room.chat_id,
        "name": room.name,
        "join_url": room.join_url,
        "card_handle": room.card_handle,
        "card_version": room.card_version,
        "detail": room.detail,
        "members": [
            {
                "responder_id": m.responder_id,
                "email": m.email,
                "phone": m.phone,
                "name": m.name,
                "im_user_id": m.im_user_id,
                "state": m.state.value,
                "detail": m.detail,
            }
            for m in room.members
        ],
    }


def timeline_json(entries: list[TimelineEntry]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json", exclude={"incident_id", "seq"}) for e in entries]
