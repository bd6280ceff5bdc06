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
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from starters.api.app import AppState, app_state
from starters.api.callbacks import process_callback
from starters.api.errors import ApiError
from warroom.errors import PermanentImError
from warroom.im.base import CallbackRequest
from warroom.im.sandbox.adapter import SandboxAdapter, sign
from warroom.im.sandbox.platform import SandboxPlatform
from warroom.models import Action, Responder

router = APIRouter(prefix="/sandbox", tags=["sandbox"])
PAGE = Path(__file__).resolve().parent.parent / "static" / "sandbox.html"


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    user: str = Field(min_length=1, description="the person's email")
    text: str = Field(min_length=1, max_length=10_000)


class JoinIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    user: str = Field(min_length=1, description="the person's email")


class ClickIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    user: str = Field(min_length=1, description="the person's email")
    action: Action
    minutes: int | None = Field(None, ge=1)
    card_version: int | None = None


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


@router.get("", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE.read_text(encoding="utf-8"))


@router.get("/api/rooms")
async def rooms(request: Request) -> dict[str, Any]:
    items = await asyncio.to_thread(_platform(request).rooms)
    return {"items": [r.model_dump(mode="json") for r in items]}


@router.get("/api/rooms/{chat_id}")
async def room(chat_id: str, request: Request) -> dict[str, Any]:
    """Members, messages and the current status card of one room."""
    r = await _room(_platform(request), chat_id)
    cards = [m for m in r.messages if m.card is not None]
    body = r.model_dump(mode="json")
    body["card"] = cards[-1].card | {"message_id": cards[-1].id} if cards else None
    return body


@router.get("/api/users")
async def users(request: Request) -> dict[str, Any]:
    items = await asyncio.to_thread(_platform(request).users)
    return {"items": [u.model_dump(mode="json") for u in items]}


@router.post("/api/rooms/{chat_id}/join")
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


@router.post("/api/rooms/{chat_id}/messages", status_code=201)
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
    return {"ok": True, "message_id": msg_id}


@router.post("/api/rooms/{chat_id}/actions")
async def click(chat_id: str, body: ClickIn, request: Request) -> dict[str, Any]:
    """A button on the card was clicked by `user`: forwarded as a signed platform callback."""
    state = app_state(request)
    uid = await _member(_platform(request), chat_id, body.user)
    event_id = uuid.uuid4().hex
    await _forward(
        state,
        {
            "type": "action",
            "event_id": event_id,
            "chat_id": chat_id,
            "user_id": uid,
            "action": body.action.value,
            "minutes": body.minutes,
            "card_version": body.card_version,
        },
    )
    return {"ok": True, "event_id": event_id}


async def _forward(state: AppState, payload: dict[str, Any]) -> None:
    raw = json.dumps(payload).encode()
    ts = str(int(time.time()))
    secret = state.settings.sandbox_signing_secret.get_secret_value()
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
