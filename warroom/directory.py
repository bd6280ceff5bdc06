"""User linking: find people's IM user ids. Stored link → email lookup → phone lookup.

People are resolved in batches: the stored links are read in one transaction, the platform is
asked about the others in parallel, and what it found is stored in one transaction. A room of
twenty responders costs two database round trips, not sixty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from pydantic import BaseModel

from warroom.im.base import ImAdapter
from warroom.store.links import LinkStore, NewLink


class Resolution(BaseModel):
    im_user_id: str | None
    method: str = ""
    detail: str = ""


class Contact(BaseModel):
    name: str = ""
    email: str | None = None
    phone: str | None = None


Progress = Callable[[int, int], None]  # (people resolved so far, people in all)


async def resolve_people(
    adapter: ImAdapter, links: LinkStore, people: list[Contact], *, progress: Progress | None = None
) -> list[Resolution]:
    """Resolve everyone (same order), storing newly found links. Platform errors propagate (retryable)."""
    found = await look_up_people(adapter, links, people, progress=progress)
    await found.save()
    return found.people


class Found:
    """The people resolved, and the links newly found for them, still to be stored (`save`)."""

    def __init__(self, links: LinkStore, platform: str, people: list[Resolution], new: list[NewLink]) -> None:
        self.links, self.platform, self.people, self.new = links, platform, people, new

    async def save(self) -> None:
        if self.new:
            await asyncio.to_thread(self.links.save_many, self.platform, self.new, datetime.now(UTC))


async def look_up_people(
    adapter: ImAdapter, links: LinkStore, people: list[Contact], *, progress: Progress | None = None
) -> Found:
    """Resolve everyone (same order) without waiting to store the new links: a caller with more
    to do (invite them) stores them meanwhile. Platform errors propagate (retryable); what was
    found before one is stored first, so that the retry asks only for the rest."""
    platform = adapter.platform
    stored = await asyncio.to_thread(links.find_many, platform, [(p.email, p.phone) for p in people])
    done = 0

    async def counted(step: Awaitable[Resolution]) -> Resolution:
        nonlocal done
        try:
            return await step
        finally:
            done += 1
            if progress is not None:
                progress(done, len(people))

    found = await asyncio.gather(
        *(
            counted(_ask_platform(adapter, p) if known is None else _stored(known))
            for p, known in zip(people, stored, strict=True)
        ),
        return_exceptions=True,
    )
    new = [
        NewLink(email=p.email, phone=p.phone, name=p.name, im_user_id=r.im_user_id, method=r.method)
        for p, r, known in zip(people, found, stored, strict=True)
        if known is None and isinstance(r, Resolution) and r.im_user_id
    ]
    result = Found(links, platform, [r for r in found if isinstance(r, Resolution)], new)
    for r in found:
        if isinstance(r, BaseException):
            await result.save()
            raise r
    return result


async def _stored(im_user_id: str) -> Resolution:
    return Resolution(im_user_id=im_user_id, method="stored")


async def _ask_platform(adapter: ImAdapter, person: Contact) -> Resolution:
    caps = adapter.capabilities
    tried = []
    for method, value, able in (
        ("email", person.email, caps.email_lookup),
        ("phone", person.phone, caps.phone_lookup),
    ):
        if not value or not able:
            continue
        tried.append(method)
        found = await adapter.lookup_user(
            email=value if method == "email" else None, phone=value if method == "phone" else None
        )
        if found:
            return Resolution(im_user_id=found, method=method)
    platform = adapter.platform
    if not tried:
        have = (
            "no email or phone" if not (person.email or person.phone) else f"only a contact {platform} cannot look up"
        )
        return Resolution(im_user_id=None, detail=f"{have}; link this person by hand")
    return Resolution(im_user_id=None, detail=f"not found on {platform} by {' or '.join(tried)}")
