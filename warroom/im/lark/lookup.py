"""Directory lookups batched into `contact/v3/users/batch_get_id` calls.

War Room resolves the responders of an incident in parallel, one `lookup_user` per person. Lark
answers up to 50 emails *and* 50 phone numbers in one call, so lookups that arrive within a
few milliseconds of each other share one call: twenty responders cost one request, not twenty,
and stay far away from the endpoint's rate limit.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from warroom.im.lark.api import UserId

MAX_PER_CALL = 50  # per list (emails, mobiles)
Fetch = Callable[[list[str], list[str]], Awaitable[list[UserId]]]


def digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


def same_phone(a: str, b: str) -> bool:
    """Equal numbers, allowing one side to carry a country code the other leaves out."""
    da, db = digits(a), digits(b)
    if not da or not db:
        return False
    short, long = sorted((da, db), key=len)
    return long.endswith(short) and len(short) >= 7


@dataclass
class Found:
    """Open ids by email (lower-case) and by phone, as given in the request."""

    by_email: dict[str, str | None] = field(default_factory=dict)
    by_phone: dict[str, str | None] = field(default_factory=dict)


async def lookup_many(fetch: Fetch, emails: list[str], phones: list[str]) -> Found:
    """Resolve any number of emails and phones, 50 + 50 per call. Unknown ones map to None."""
    emails = sorted({e.strip().lower() for e in emails if e})
    phones = sorted({p.strip() for p in phones if p})
    found = Found(by_email=dict.fromkeys(emails), by_phone=dict.fromkeys(phones))
    for i in range(0, max(len(emails), len(phones)), MAX_PER_CALL):
        chunk_e, chunk_p = emails[i : i + MAX_PER_CALL], phones[i : i + MAX_PER_CALL]
        for u in await fetch(chunk_e, chunk_p):
            if not u.user_id:  # outside the app's contact scope, or nobody: Lark omits the id
                continue
            if u.email and u.email.lower() in found.by_email:
                found.by_email[u.email.lower()] = u.user_id
            if u.mobile:
                for p in chunk_p:
                    if found.by_phone[p] is None and same_phone(p, u.mobile):
                        found.by_phone[p] = u.user_id
    return found


_Waiter = tuple[str | None, str | None, "asyncio.Future[str | None]"]


class LookupBatcher:
    """Collects concurrent single lookups for `window` seconds and answers them from one call."""

    def __init__(self, fetch: Fetch, *, window: float = 0.01) -> None:
        self.fetch = fetch
        self.window = window
        self._pending: list[_Waiter] = []
        self._collecting = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def lookup(self, email: str | None, phone: str | None) -> str | None:
        if not email and not phone:
            return None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str | None] = loop.create_future()
        self._pending.append((email, phone, fut))
        if not self._collecting:
            self._collecting = True
            task = loop.create_task(self._flush_soon())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await fut

    async def _flush_soon(self) -> None:
        cancelled = False
        try:
            await asyncio.sleep(self.window)
        except asyncio.CancelledError:
            cancelled = True
        self._collecting = False  # from here on, new lookups start the next batch
        batch, self._pending = self._pending, []
        waiting = [w for w in batch if not w[2].done()]  # a cancelled caller's future is done
        if cancelled:
            for _, _, f in waiting:
                f.cancel()
            raise asyncio.CancelledError
        try:
            if waiting:
                found = await lookup_many(self.fetch, [e for e, _, _ in waiting if e], [p for _, p, _ in waiting if p])
        except BaseException as exc:
            for _, _, f in waiting:
                if not f.done():
                    f.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for e, p, f in waiting:
            if not f.done():
                by_email = found.by_email.get(e.strip().lower()) if e else None
                f.set_result(by_email or (found.by_phone.get(p.strip()) if p else None))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for _, _, f in self._pending:
            if not f.done():
                f.cancel()
        self._pending = []
