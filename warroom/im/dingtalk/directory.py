"""People by phone and by email.

By phone DingTalk answers directly (`topapi/v2/user/getbymobile`). By email it does not answer at
all: no API looks a user up by email. War Room reads the organization's directory instead
(departments from the root, each department's users with `email` and `org_email`) into an
email → userid map, trusted for `ttl` seconds. A miss reads the directory again, at most once per
`miss_refresh` seconds, so a responder added to DingTalk a minute ago is found, and a hundred
unknown emails cost one read, not a hundred. Concurrent lookups share one read.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

from warroom.im.dingtalk.api import DingTalkApi

log = logging.getLogger("warroom.im.dingtalk")
ROOT_DEPARTMENT = 1
MISS_REFRESH_SECONDS = 300.0
MAX_DEPARTMENTS = 5000


def normal_phone(phone: str) -> str:
    """DingTalk's mobile numbers are national for China (+86): digits only, `+86` dropped."""
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


class Directory:
    def __init__(
        self,
        api: DingTalkApi,
        *,
        ttl: float = 3600.0,
        miss_refresh: float = MISS_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.ttl = ttl
        self.miss_refresh = miss_refresh
        self.clock = clock
        self.reads = 0
        self._emails: dict[str, str] = {}
        self._read_at: float | None = None
        self._reading: asyncio.Task[None] | None = None

    async def by_phone(self, phone: str) -> str | None:
        number = normal_phone(phone)
        if len(number) < 5:
            return None
        return await self.api.user_by_mobile(number)

    async def by_email(self, email: str) -> str | None:
        key = email.strip().lower()
        if not key:
            return None
        now = self.clock()
        if self._read_at is None or now - self._read_at > self.ttl:
            await self._read()
        elif key not in self._emails and now - self._read_at > self.miss_refresh:
            await self._read()  # someone new: the directory may know them by now
        return self._emails.get(key)

    async def all_emails(self) -> dict[str, str]:
        """The whole map, read fresh: for linking everyone at once."""
        await self._read()
        return dict(self._emails)

    async def _read(self) -> None:
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read_directory())
        await asyncio.shield(self._reading)

    async def _read_directory(self) -> None:
        emails: dict[str, str] = {}
        pending, seen = [ROOT_DEPARTMENT], set()
        while pending and len(seen) < MAX_DEPARTMENTS:
            dept = pending.pop()
            if dept in seen:
                continue
            seen.add(dept)
            for user in await self.api.department_users(dept):
                for e in user.emails:
                    emails.setdefault(e, user.userid)
            pending.extend(await self.api.sub_departments(dept))
        self._emails, self._read_at = emails, self.clock()
        self.reads += 1
        log.info("dingtalk directory read: %d departments, %d emails", len(seen), len(emails))
