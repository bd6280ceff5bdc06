"""Replay protection for signed IM callbacks, in the database every API replica shares.

A platform signs a request with a timestamp and the store remembers each signature until that
timestamp can no longer pass the freshness check, so whichever replica a replay reaches, it
finds the claim. A claim is released when the request's events could not be delivered (Temporal
down): the platform's own retry must then go through.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from warroom.store.db import Database
from warroom.store.tables import CallbackClaimRow

# Every platform's freshness window is 5 minutes either side of now; a signature older than
# that is refused as stale before the claim is looked at.
CLAIM_SECONDS = 2 * 300 + 60


class CallbackClaims:
    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, platform: str, key: str, *, now: datetime | None = None) -> bool:
        """True the first time `key` is claimed for `platform` within the claim period."""
        now = now or datetime.now(UTC)
        digest = _digest(key)
        try:
            with self.db.session() as s:
                s.execute(delete(CallbackClaimRow).where(CallbackClaimRow.expires_at < now))
                s.execute(
                    insert(CallbackClaimRow).values(
                        platform=platform, key=digest, expires_at=now + timedelta(seconds=CLAIM_SECONDS)
                    )
                )
        except IntegrityError:
            return False
        return True

    def release(self, platform: str, key: str) -> None:
        with self.db.session() as s:
            s.execute(
                delete(CallbackClaimRow).where(
                    CallbackClaimRow.platform == platform, CallbackClaimRow.key == _digest(key)
                )
            )


def _digest(key: str) -> str:
    """Keys are signatures of any length and alphabet; the table holds a fixed-size digest."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
