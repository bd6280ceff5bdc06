"""The room transcript as the assistant reads it: who said what, when, as citable lines.

Messages are stored by the API as they arrive (`starters/service.py`), by the workflow for its
own posts, and by a sweep of the platform's history where one exists (`activities/ai.py`).
"""

from __future__ import annotations

import re
from datetime import datetime

from warroom.im.base import ChatMessage, MessageReceived
from warroom.models import MemberState, WarRoom
from warroom.store.transcript import TranscriptMessage

BOT_AUTHORS = frozenset({"warroom-bot", "bot", "ai", "system"})


def from_event(event: MessageReceived, *, incident_id: str, platform: str, at: datetime) -> TranscriptMessage:
    return TranscriptMessage(
        incident_id=incident_id,
        platform=platform,
        chat_id=event.chat_id,
        message_id=event.message_id,
        author=event.im_user_id,
        text=event.text,
        at=at,
    )


def from_history(msg: ChatMessage, *, incident_id: str, platform: str) -> TranscriptMessage:
    return TranscriptMessage(
        incident_id=incident_id,
        platform=platform,
        chat_id=msg.chat_id,
        message_id=msg.message_id,
        author=msg.author,
        text=msg.text,
        at=msg.at,
        from_bot=msg.author in BOT_AUTHORS,
    )


def people(room: WarRoom | None) -> dict[str, str]:
    """IM user id → how the timeline names the person (email first, as CONTRACT.md says)."""
    out: dict[str, str] = {}
    for m in room.members if room else []:
        if m.im_user_id and m.state is not MemberState.PENDING:
            out[m.im_user_id] = m.email or m.phone or m.name or m.responder_id
    return out


def who(msg: TranscriptMessage, names: dict[str, str]) -> str:
    if msg.from_bot:
        return "War Room (bot)"
    return names.get(msg.author, msg.author)


def one_line(text: str, limit: int = 600) -> str:
    """A message on one line, so that nothing inside it can pose as another line of the data."""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def line(msg: TranscriptMessage, names: dict[str, str], *, limit: int = 600) -> str:
    return f"[M:{msg.message_id}] {msg.at:%Y-%m-%d %H:%M} {who(msg, names)}: {one_line(msg.text, limit)}"
