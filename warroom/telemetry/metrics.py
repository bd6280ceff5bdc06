"""War Room's own Prometheus metrics, all prefixed `warroom_`.

Each metric is exported by the process that observes it:

- the **worker** (`WARROOM_METRICS_PORT`): IM call latency and errors by platform and method,
  room-ready latency by platform, actions by action, source and outcome (next to the Temporal SDK's
  own `temporal_…` metrics);
- the **API** (`GET /metrics`): incidents by status and war rooms by platform and state (read from
  the store on each scrape, so they are right whichever process changed them), and refused IM
  callbacks by platform.
"""

from __future__ import annotations

from collections import Counter as Tally
from threading import Lock

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from sqlalchemy import func, literal, select

from warroom.im.plugins import platform_names
from warroom.store.db import Database
from warroom.store.tables import IncidentRow, RoomRow

disable_created_metrics()  # no `…_created` series next to every counter and histogram

IM_CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
ROOM_READY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200)


def platform_label(platform: str | None) -> str:
    """Bounded label values: a known platform name, else `other`."""
    return platform if platform in platform_names() else "other"


class WorkerMetrics:
    """What a worker observes while it runs activities (fed by workers.telemetry's interceptor)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.im_call_seconds = Histogram(
            "warroom_im_call_seconds",
            "Duration of one IM call (one attempt of an IM activity), by platform and method.",
            ["platform", "method"],
            buckets=IM_CALL_BUCKETS,
            registry=self.registry,
        )
        self.im_call_errors = Counter(
            "warroom_im_call_errors",
            "IM calls (activity attempts) that failed, by platform, method and error "
            "(RateLimited, ImTransient, ImPermanent, or the exception's type).",
            ["platform", "method", "error"],
            registry=self.registry,
        )
        self.im_retries_in_place = Counter(
            "warroom_im_retries_in_place",
            "IM calls repeated inside an activity attempt after a rate limit or a transient "
            "failure (activities/in_place.py), by platform, adapter method and error.",
            ["platform", "method", "error"],
            registry=self.registry,
        )
        self.room_ready_seconds = Histogram(
            "warroom_room_ready_seconds",
            "From the workflow asking for a war room to the room existing on the platform (with "
            "its responders invited and its card posted), queue wait and retries included, by platform.",
            ["platform"],
            buckets=ROOM_READY_BUCKETS,
            registry=self.registry,
        )
        self.actions = Counter(
            "warroom_actions",
            "Incident actions decided by the workflows, by action, source (api, cli, web, an IM "
            "platform, system) and outcome (ok, refused, failed).",
            ["action", "source", "outcome"],
            registry=self.registry,
        )


class ApiMetrics:
    """What the API exports: store-wide gauges read on each scrape, and refused callbacks."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.registry = CollectorRegistry(auto_describe=True)
        self.callbacks_refused = Counter(
            "warroom_callbacks_refused",
            "IM callbacks refused (not verified, malformed, for an unknown platform), by platform and reason.",
            ["platform", "reason"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """Prometheus text: the store's gauges (integers, as counted) and then the registry's metrics."""
        return store_gauges(self.db).encode() + generate_latest(self.registry)


def store_gauges(db: Database) -> str:
    """Incidents by status and each incident's current war room by platform and state."""
    with db.session() as s:
        incidents = s.execute(select(IncidentRow.status, func.count()).group_by(IncidentRow.status)).all()
        # each incident's first room in its newest generation, and its newest room on each other platform
        latest = (
            select(RoomRow.incident_id, RoomRow.extra, RoomRow.platform, func.max(RoomRow.generation).label("g"))
            .where(RoomRow.extra.is_(True))
            .group_by(RoomRow.incident_id, RoomRow.extra, RoomRow.platform)
            .union_all(
                select(RoomRow.incident_id, RoomRow.extra, literal(""), func.max(RoomRow.generation))
                .where(RoomRow.extra.is_(False))
                .group_by(RoomRow.incident_id, RoomRow.extra)
            )
        ).subquery()
        current = (
            (RoomRow.incident_id == latest.c.incident_id)
            & (RoomRow.extra == latest.c.extra)
            & ((latest.c.platform == "") | (RoomRow.platform == latest.c.platform))
            & (RoomRow.generation == latest.c.g)
        )
        found = s.execute(select(RoomRow.platform, RoomRow.state).join(latest, current)).all()
        rooms = Tally((p, st) for p, st in found)
    lines = ["# HELP warroom_incidents Incidents by status.", "# TYPE warroom_incidents gauge"]
    lines += [f'warroom_incidents{{status="{status}"}} {n}' for status, n in sorted(incidents)]
    lines += [
        "# HELP warroom_rooms War rooms (each incident's current ones) by platform and state.",
        "# TYPE warroom_rooms gauge",
    ]
    lines += [f'warroom_rooms{{platform="{p}",state="{st}"}} {n}' for (p, st), n in sorted(rooms.items())]
    return "\n".join(lines) + "\n"


_worker_metrics: WorkerMetrics | None = None
_lock = Lock()


def connection_gauges(statuses: dict[str, dict[str, object]]) -> str:
    """Long connections (DingTalk's Stream mode) by platform: up or not, and how often opened."""
    if not statuses:
        return ""
    lines = [
        "# HELP warroom_im_connection_up Whether a platform's long connection is open (1) or not (0).",
        "# TYPE warroom_im_connection_up gauge",
    ]
    lines += [
        f'warroom_im_connection_up{{platform="{p}"}} {int(s.get("state") == "connected")}'
        for p, s in sorted(statuses.items())
    ]
    lines += [
        "# HELP warroom_im_connection_opens_total Long connections opened, by platform.",
        "# TYPE warroom_im_connection_opens_total counter",
    ]
    lines += [
        f'warroom_im_connection_opens_total{{platform="{p}"}} {int(str(s.get("connects") or 0))}'
        for p, s in sorted(statuses.items())
    ]
    return "\n".join(lines) + "\n"


def worker_metrics(*, create: bool = True) -> WorkerMetrics | None:
    """This process's worker metrics (one set however many workers it runs); None when it runs
    none and `create` is False."""
    global _worker_metrics
    with _lock:
        if _worker_metrics is None and create:
            _worker_metrics = WorkerMetrics()
        return _worker_metrics
