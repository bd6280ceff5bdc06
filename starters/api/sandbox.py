"""The sandbox IM's own routes: its web page, and the "IM server" the page talks to.

A click on the page does what Slack's servers do for a Slack button: the sandbox server checks
that the user is in the room, signs a callback with the sandbox secret and hands it to the very
same verification and routing path as `/im/<platform>/...` callbacks.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from starters.api.callbacks import process_callback
from starters.api.deps import AppState, app_state, require_token
from starters.api.errors import ApiError
from warroom.errors import PermanentImError
from warroom.im.base import CallbackRequest
from warroom.im.sandbox.adapter import SandboxAdapter, sign
from warroom.im.sandbox.platform import SandboxPlatform
from warroom.lifecycle import MAX_SNOOZE_MINUTES
from warroom.models import Action, Responder

router = APIRouter(prefix="/sandbox", tags=["sandbox"])
# The page itself is open (it asks for the token); the sandbox's API, which can act on incidents,
# needs the API token like every other /api route when WARROOM_API_TOKEN is set.
api = APIRouter(prefix="/api", dependencies=[Depends(require_token)])
PAGE = Path(__file__).resolve().parent.parent / "static" / "sandbox.html"


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    user: str = Field(min_length=1, description="the person's email")
    text: str = Field(min_length=1, max_length=10_000)


class JoinIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    user: str = Field(min_length=1, description="the person's email")


class Button(StrEnum):
    """What a card's buttons do; `unsnooze` is the snooze timer's own action, never a button."""

    ACKNOWLEDGE = Action.ACKNOWLEDGE.value
    SNOOZE = Action.SNOOZE.value
    CLOSE = Action.CLOSE.value
    REOPEN = Action.REOPEN.value


class ClickIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    user: str = Field(min_length=1, description="the person's email")
    action: Button
    minutes: int | None = Field(None, ge=1, le=MAX_SNOOZE_MINUTES, description="snooze only")
    card_version: int | None = Field(None, ge=0, description="the version of the card that was clicked")


def _sandbox(state: AppState) -> SandboxAdapter:
    adapter = state.adapter("sandbox")
    assert isinstance(adapter, SandboxAdapter)
    return adapter


def _platform(request: Request) -> SandboxPlatform:
    return _sandbox(app_state(request)).sandbox


async def _user_id(platform: SandboxPlatform, email: str) -> str:
    try:
        person = Responder(email=email)
    except ValueError as e:
        raise ApiError(422, "invalid", f"user must be an email address: {email!r}") from e
    uid = await asyncio.to_thread(platform.lookup_user, email=person.email, phone=None, now=datetime.now(UTC))
    assert uid
    return uid


async def _member(platform: SandboxPlatform, chat_id: str, email: str) -> str:
    await _room(platform, chat_id)
    uid = await _user_id(platform, email)
    if not await asyncio.to_thread(platform.is_member, chat_id, uid):
        raise ApiError(403, "not_a_member", f"{email} is not in room {chat_id}; join it first")
    return uid


async def _room(platform: SandboxPlatform, chat_id: str) -> Any:
    try:
        return await asyncio.to_thread(platform.room, chat_id)
    except PermanentImError as e:
        raise ApiError(404, "not_found", str(e)) from e


# The page runs only its own files: no inline script or style, nothing from elsewhere, and no
# other site may frame it (a framed page could be clicked through: clickjacking on its buttons).
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": PAGE_POLICY,
    "x-frame-options": "DENY",  # frame-ancestors for browsers that predate it
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
ASSETS = {"sandbox.js": "text/javascript; charset=utf-8", "sandbox.css": "text/css; charset=utf-8"}


@router.get("", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"), headers=PAGE_HEADERS)


@router.get("/assets/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise ApiError(404, "not_found", f"no sandbox asset {name!r}")
    body = (PAGE.parent / name).read_bytes()
    return Response(
        body, media_type=ASSETS[name], headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"}
    )


def _rooms_with_cards(platform: SandboxPlatform) -> list[dict[str, Any]]:
    """Every room, newest first, with what its latest status card shows (as a chat list would)."""
    items = [r.model_dump(mode="json") for r in platform.rooms()]
    cards = platform.latest_cards()
    for item in items:
        card = cards.get(item["chat_id"])
        item["card"] = (
            {k: card.get(k) for k in ("title", "severity", "status", "version", "last_action")} if card else None
        )
    return items


@api.get("/rooms")
async def rooms(request: Request) -> dict[str, Any]:
    """The rooms, newest first; `card` summarises each room's latest status card (or is null)."""
    return {"items": await asyncio.to_thread(_rooms_with_cards, _platform(request))}


@api.get("/rooms/{chat_id}")
async def room(chat_id: str, request: Request) -> dict[str, Any]:
    """Members, messages and the current status card of one room."""
    r = await _room(_platform(request), chat_id)
    cards = [m for m in r.messages if m.card is not None]
    body = r.model_dump(mode="json")
    body["card"] = cards[-1].card | {"message_id": cards[-1].id} if cards else None
    return body


@api.get("/users")
async def users(request: Request) -> dict[str, Any]:
    items = await asyncio.to_thread(_platform(request).users)
    return {"items": [u.model_dump(mode="json") for u in items]}


@api.post("/rooms/{chat_id}/join")
async def join(chat_id: str, body: JoinIn, request: Request) -> dict[str, Any]:
    """Join by the room's link, as anyone can in a public channel."""
    platform = _platform(request)
    await _room(platform, chat_id)
    uid = await _user_id(platform, body.user)
    try:
        await asyncio.to_thread(platform.add_members, chat_id, [uid], datetime.now(UTC))
    except PermanentImError as e:
        raise ApiError(409, "conflict", str(e)) from e
    return {"ok": True, "user_id": uid}


@api.post("/rooms/{chat_id}/messages", status_code=201)
async def post_message(chat_id: str, body: MessageIn, request: Request) -> dict[str, Any]:
    state = app_state(request)
    platform = _platform(request)
    uid = await _member(platform, chat_id, body.user)
    try:
        msg_id = await asyncio.to_thread(
            platform.post, chat_id, author=uid, text=body.text, key=None, now=datetime.now(UTC)
        )
    except PermanentImError as e:
        raise ApiError(409, "conflict", str(e)) from e
    await _forward(
        state,
        {
            "type": "message",
            "event_id": f"msg-{msg_id}",
            "chat_id": chat_id,
            "message_id": str(msg_id),
            "user_id": uid,
            "text": body.text,
        },
    )
    return {"ok": True, "message_id": msg_id, "user_id": uid}


@api.post("/rooms/{chat_id}/actions")
async def click(chat_id: str, body: ClickIn, request: Request) -> dict[str, Any]:
    """A button on the card was clicked by `user`: forwarded as a signed platform callback.

    The answer means the click was delivered, as on a real platform; the outcome shows in the
    room (the card changes, or the bot explains a refusal).
    """
    if body.action is Button.SNOOZE and not body.minutes:
        raise ApiError(422, "invalid", "snooze needs minutes")
    state = app_state(request)
    platform = _platform(request)
    room = await _room(platform, chat_id)
    if room.state != "active":
        raise ApiError(409, "conflict", f"room {chat_id} is {room.state}: its card can no longer be clicked")
    uid = await _member(platform, chat_id, body.user)
    event_id = uuid.uuid4().hex
    await _forward(
        state,
        {
            "type": "action",
            "event_id": event_id,
            "chat_id": chat_id,
            "user_id": uid,
            "action": body.action.value,
            "minutes": body.minutes if body.action is Button.SNOOZE else None,
            "card_version": body.card_version,
        },
    )
    return {"ok": True, "event_id": event_id, "user_id": uid}


async def _forward(state: AppState, payload: dict[str, Any]) -> None:
    raw = json.dumps(payload).encode()
    ts = str(int(time.time()))
    secret = state.settings.platform("sandbox").signing_secret.get_secret_value()
    headers = {
        "x-sandbox-timestamp": ts,
        "x-sandbox-signature": sign(secret, ts, raw),
        "content-type": "application/json",
    }
    await process_callback(
        state,
        "sandbox",
        CallbackRequest(method="POST", path="/im/sandbox/events", headers=headers, body=raw),
        peer="sandbox",
    )


router.include_router(api)  # after its routes are declared: FastAPI copies them here
