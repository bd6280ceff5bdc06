"""Snapshot coalescing: at most one snapshot signal in flight per incident and process.

Snapshots are full states where the newest version wins, so while one is being delivered, newer
ones only need their latest to follow. A burst of updates to one incident (an alert storm, a
script) then costs the workflow a handful of signals instead of one each, which keeps every run
well within Temporal's per-run limits and lets it continue as new between signals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from warroom.messages import DELIVERIES_KEEP, SourceDelivery
from warroom.models import Incident, Source


@dataclass
class Snapshot:
    incident: Incident
    actor: str
    source: Source
    opened: bool  # this update created the incident: the first run records who opened it
    # Source deliveries behind it: every one reaches the timeline, even when a newer snapshot
    # of the same incident overtakes this one here.
    deliveries: list[SourceDelivery] = field(default_factory=list)


class SnapshotCoalescer:
    def __init__(self) -> None:
        self._latest: dict[str, Snapshot] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def send(self, snap: Snapshot, deliver: Callable[[Snapshot], Awaitable[None]]) -> None:
        """Return once this snapshot, or a newer one of the same incident, has been delivered."""
        iid = snap.incident.id
        waiting = self._latest.get(iid)
        if waiting is None or snap.incident.version >= waiting.incident.version:
            opened = snap.opened or (waiting is not None and waiting.opened)
            deliveries = (waiting.deliveries if waiting else []) + snap.deliveries
            self._latest[iid] = Snapshot(snap.incident, snap.actor, snap.source, opened, deliveries[-DELIVERIES_KEEP:])
        else:
            waiting.opened = waiting.opened or snap.opened
            waiting.deliveries = (waiting.deliveries + snap.deliveries)[-DELIVERIES_KEEP:]
        lock = self._locks.setdefault(iid, asyncio.Lock())
        try:
            async with lock:
                latest = self._latest.pop(iid, None)
                if latest is not None:  # else a caller before us already delivered a newer one
                    try:
                        await deliver(latest)
                    except BaseException:
                        # let the next caller retry it, with what arrived meanwhile
                        newer = self._latest.get(iid)
                        if newer is None:
                            self._latest[iid] = latest
                        else:
                            newer.deliveries = (latest.deliveries + newer.deliveries)[-DELIVERIES_KEEP:]
                            newer.opened = newer.opened or latest.opened
                        raise
        finally:
            if not lock.locked() and iid not in self._latest:
                self._locks.pop(iid, None)
