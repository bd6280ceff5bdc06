"""Snapshot coalescing: a burst of updates to one incident becomes a few signals, newest last."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from starters.coalesce import Snapshot, SnapshotCoalescer
from warroom.messages import DELIVERIES_KEEP, SourceDelivery
from warroom.models import Incident, Source

T0 = datetime(2026, 11, 30, tzinfo=UTC)


def _snap(version: int, opened: bool = False, iid: str = "i1", delivery: str = "") -> Snapshot:
    incident = Incident(id=iid, title=f"v{version}", version=version, created_at=T0, updated_at=T0)
    deliveries = [SourceDelivery(key=delivery, summary=f"said {delivery}")] if delivery else []
    return Snapshot(incident, "ann@example.com", Source.API, opened, deliveries)


async def test_a_burst_is_delivered_as_few_snapshots_ending_with_the_newest() -> None:
    delivered: list[int] = []

    async def deliver(s: Snapshot) -> None:
        await asyncio.sleep(0.01)
        delivered.append(s.incident.version)

    c = SnapshotCoalescer()
    await asyncio.gather(*(c.send(_snap(v), deliver) for v in range(1, 51)))
    assert delivered[-1] == 50 and delivered == sorted(delivered)
    assert len(delivered) <= 3  # the first, then the newest of everything that queued behind it
    assert not c._locks and not c._latest  # nothing left behind


async def test_an_older_snapshot_never_replaces_a_newer_waiting_one_and_opened_is_kept() -> None:
    delivered: list[Snapshot] = []
    gate = asyncio.Event()

    async def deliver(s: Snapshot) -> None:
        if not delivered:
            await gate.wait()
        delivered.append(s)

    c = SnapshotCoalescer()
    first = asyncio.create_task(c.send(_snap(1, opened=True), deliver))
    await asyncio.sleep(0)
    late = [asyncio.create_task(c.send(_snap(v), deliver)) for v in (5, 3)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *late)
    assert [s.incident.version for s in delivered] == [1, 5] and delivered[0].opened


async def test_a_failed_delivery_is_retried_by_the_next_caller() -> None:
    calls: list[int] = []

    async def flaky(s: Snapshot) -> None:
        calls.append(s.incident.version)
        if len(calls) == 1:
            raise RuntimeError("temporal unavailable")

    c = SnapshotCoalescer()
    with pytest.raises(RuntimeError):
        await c.send(_snap(1), flaky)
    await c.send(_snap(1), flaky)
    assert calls == [1, 1]


async def test_every_delivery_behind_coalesced_snapshots_is_carried_once_the_oldest_bounded() -> None:
    """A source's deliveries each reach the timeline, also those whose snapshot was overtaken by a
    newer one (or was older than the one waiting) before it was sent."""
    delivered: list[Snapshot] = []
    gate = asyncio.Event()

    async def deliver(s: Snapshot) -> None:
        if not delivered:
            await gate.wait()
        delivered.append(s)

    c = SnapshotCoalescer()
    first = asyncio.create_task(c.send(_snap(1, delivery="d1"), deliver))
    await asyncio.sleep(0)
    queued = [asyncio.create_task(c.send(_snap(v, delivery=f"d{v}"), deliver)) for v in (4, 2, 3)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *queued)
    assert [s.incident.version for s in delivered] == [1, 4]
    assert [[d.key for d in s.deliveries] for s in delivered] == [["d1"], ["d4", "d2", "d3"]]

    many = [
        asyncio.create_task(c.send(_snap(v, delivery=f"m{v}"), deliver)) for v in range(10, 10 + 3 * DELIVERIES_KEEP)
    ]
    await asyncio.gather(*many)
    carried = [d.key for s in delivered[2:] for d in s.deliveries]
    assert len(delivered[-1].deliveries) <= DELIVERIES_KEEP and carried[-1] == f"m{9 + 3 * DELIVERIES_KEEP}"


async def test_a_failed_delivery_keeps_its_source_deliveries_for_the_next_caller() -> None:
    sent: list[list[str]] = []

    async def flaky(s: Snapshot) -> None:
        sent.append([d.key for d in s.deliveries])
        if len(sent) == 1:
            raise RuntimeError("temporal unavailable")

    c = SnapshotCoalescer()
    with pytest.raises(RuntimeError):
        await c.send(_snap(1, delivery="d1"), flaky)
    await c.send(_snap(2, delivery="d2"), flaky)
    assert sent == [["d1"], ["d1", "d2"]]
