"""Snapshot coalescing: at most one snapshot signal in flight per incident and process.

Snapshots are full states where the newest version wins, so while one is being delivered, newer
ones only need their latest to follow. A burst of updates to one incident (an alert storm, a
script) then costs the workflow a handful of signals instead of one each, which keeps every run
well within Temporal's per-run limits and lets it continue as new between signals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from warroom.models import Incident, Source


@dataclass
class Snapshot:
    incident: Incident
    actor: str
    source: Source
    opened: bool  # this update created the incident: the first run records who opened it


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
            self._latest[iid] = Snapshot(snap.incident, snap.actor, snap.source, opened)
        elif snap.opened:
            waiting.opened = True
        lock = self._locks.setdefault(iid, asyncio.Lock())
        try:
            async with lock:
                latest = self._latest.pop(iid, None)
                if latest is not None:  # else a caller before us already delivered a newer one
                    try:
                        await deliver(latest)
                    except BaseException:
                        self._latest.setdefault(iid, latest)  # let the next caller retry it
                        raise
        finally:
            if not lock.locked() and iid not in self._latest:
                self._locks.pop(iid, None)
