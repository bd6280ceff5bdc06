"""IM user links: list them, and link everyone at once."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict

from starters.api.deps import app_state, service
from starters.api.errors import ApiError
from starters.service import WarRoomService
from warroom.im.plugins import platform_names

router = APIRouter(tags=["users"])


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: str | None = None


@router.get("/users")
async def list_links(request: Request, platform: str | None = None) -> dict[str, Any]:
    links = await asyncio.to_thread(app_state(request).store.links.list, platform)
    return {"items": [link.model_dump(mode="json") for link in links]}


@router.post("/users/link")
async def link_users(
    request: Request, svc: Annotated[WarRoomService, Depends(service)], body: LinkIn | None = None
) -> dict[str, Any]:
    """One-click bulk linking: resolve every responder of every open incident."""
    platform = (body.platform if body else None) or app_state(request).settings.im_platform
    if platform not in platform_names():
        raise ApiError(422, "invalid", f"platform {platform!r} is not available; use one of {platform_names()}")
    result = await svc.link_users(platform)
    return {"platform": platform, **result.model_dump(mode="json")}
