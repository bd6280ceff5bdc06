"""User linking: find a person's IM user id. Stored link → email lookup → phone lookup."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import BaseModel

from warroom.im.base import ImAdapter
from warroom.store.links import LinkStore


class Resolution(BaseModel):
    im_user_id: str | None
    method: str = ""
    detail: str = ""


async def resolve_person(
    adapter: ImAdapter, links: LinkStore, *, name: str, email: str | None, phone: str | None
) -> Resolution:
    """Resolve one person, storing a newly found link. Platform errors propagate (retryable)."""
    platform = adapter.platform
    stored = await asyncio.to_thread(links.find, platform, email=email, phone=phone)
    if stored:
        return Resolution(im_user_id=stored, method="stored")
    caps = adapter.capabilities
    tried = []
    for method, value, able in (("email", email, caps.email_lookup), ("phone", phone, caps.phone_lookup)):
        if not value or not able:
            continue
        tried.append(method)
        found = await adapter.lookup_user(
            email=value if method == "email" else None, phone=value if method == "phone" else None
        )
        if found:
            await asyncio.to_thread(
                links.save,
                platform,
                email=email,
                phone=phone,
                name=name,
                im_user_id=found,
                method=method,
                now=datetime.now(UTC),
            )
            return Resolution(im_user_id=found, method=method)
    if not tried:
        have = "no email or phone" if not (email or phone) else f"only a contact {platform} cannot look up"
        return Resolution(im_user_id=None, detail=f"{have}; link this person by hand")
    return Resolution(im_user_id=None, detail=f"not found on {platform} by {' or '.join(tried)}")
