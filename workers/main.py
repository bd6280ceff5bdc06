"""The worker process: registers the workflows and activities on the configured task queue."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.ai import AiActivities
from activities.im import ImActivities
from activities.incidents import IncidentActivities
from connection.client import connect
from connection.search_attributes import ensure_search_attributes
from warroom.settings import Settings, get_settings
from warroom.sources import pagerduty_api
from warroom.store import Store
from warroom.telemetry.logs import configure_logging
from warroom.telemetry.metrics import worker_metrics
from workers.heartbeat import HeartbeatInterceptor
from workers.telemetry import TelemetryInterceptor, worker_running, worker_runtime
from workflows.incident import SEARCH_ATTRIBUTES, IncidentWarRoom
from workflows.link_users import LinkUsers

log = logging.getLogger("warroom.worker")
WORKFLOWS: Sequence[type] = (IncidentWarRoom, LinkUsers)
GRACEFUL_SHUTDOWN = timedelta(seconds=20)


def build_worker(client: Client, store: Store, settings: Settings, **options: object) -> tuple[Worker, ImActivities]:
    """A worker for this process's queue: the main queue, or `<queue>-<region>` for a regional
    worker (which then serves only IM activities; workflows always run on the main queue)."""
    im = ImActivities(store, settings)
    ai = AiActivities(store, settings, im)
    activities = list(im.all()) + ai.im_queue()
    if not settings.region:
        activities += IncidentActivities(store, pagerduty_api.from_settings(settings)).all() + ai.main_queue()
    bound = settings.platform_region_map()
    if settings.region and bound and settings.region not in bound.values():
        log.warning(
            "WARROOM_PLATFORM_REGIONS binds no platform to region %r: this worker gets no work", settings.region
        )
    interceptors = [
        TelemetryInterceptor(worker_metrics()),
        HeartbeatInterceptor(),  # the workflow's IM and AI calls have heartbeat timeouts: it meets them
        *options.pop("interceptors", []),  # type: ignore[misc]
    ]
    worker = Worker(
        client,
        task_queue=settings.queue_for(settings.region),
        workflows=list(WORKFLOWS) if not settings.region else [],
        activities=activities,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        interceptors=interceptors,
        workflow_runner=SandboxedWorkflowRunner() if settings.workflow_sandbox else UnsandboxedWorkflowRunner(),
        **{"max_cached_workflows": settings.max_cached_workflows, "build_id": build_id(), **options},  # type: ignore[arg-type]
    )
    return worker, im


def build_id() -> str:
    """This worker's build id: a hash of the workflow code. Temporal's default hashes the bytecode
    of every module loaded, compiling each one that has none: two seconds of CPU at every start of
    a worker on a machine that writes no bytecode (PYTHONDONTWRITEBYTECODE)."""
    digest = hashlib.sha256()
    for path in sorted(Path(sys.modules[IncidentWarRoom.__module__].__file__ or "").parent.glob("*.py")):
        digest.update(path.read_bytes())
    return f"warroom-{digest.hexdigest()[:16]}"


def cache_bytecode() -> None:
    """Let the workflow sandbox reuse compiled bytecode even where writing it is switched off.

    The sandbox imports the workflow modules afresh for every workflow it starts or replays (an
    incident outside the worker's cache replays at its next event). With PYTHONDONTWRITEBYTECODE
    set and no bytecode installed (an editable install), each of those imports compiled the
    workflow's source again: a fifth of the worker's CPU at 1,000 open rooms. Bytecode then goes
    to a directory of this process's own, never into the source tree."""
    if sys.dont_write_bytecode and sys.pycache_prefix is None:
        sys.pycache_prefix = tempfile.mkdtemp(prefix="warroom-pycache-")
        sys.dont_write_bytecode = False


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or SIGINT/SIGTERM), then drain in-flight activities."""
    if settings.workflow_sandbox:  # without the sandbox, each module is imported once per process
        cache_bytecode()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    configure_logging(settings.log_format)
    store = Store(settings.database_url)
    client = await connect(settings, runtime=worker_runtime(settings), service="warroom-worker")
    await ensure_search_attributes(client, SEARCH_ATTRIBUTES)  # a bare namespace refuses every incident
    worker, im = build_worker(client, store, settings)
    started = time.monotonic()
    prepared = await asyncio.to_thread(im.prepare)
    log.info("IM adapters ready in %.1fs: %s", time.monotonic() - started, ", ".join(prepared) or "none")
    log.info("worker polling task queue %s on %s", settings.queue_for(settings.region), settings.temporal_address)
    async with worker:
        with worker_running():
            await stop.wait()
        log.info("worker stopping: finishing in-flight tasks (up to %ss)", GRACEFUL_SHUTDOWN.total_seconds())
    await im.aclose()
    store.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run_worker(get_settings()))
