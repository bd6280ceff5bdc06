"""Worker telemetry: one Prometheus endpoint with the Temporal SDK's metrics and War Room's own,
and an activity interceptor that feeds War Room's metrics and log context.

With `WARROOM_METRICS_PORT` set, the process's Temporal runtime exports the SDK metrics
(`temporal_…`: task latencies, poll results, activity and workflow outcomes, sticky cache…) on a
loopback port only, and `MetricsServer` serves them on the configured port after War Room's own
(`warroom_…`, see `warroom.telemetry.metrics`), so a scrape config needs one target per worker.
The same port answers `GET /healthz` (200 while the worker polls), for container healthchecks.

Tracing is the client's business, and so lives in `connection.tracing`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from warroom import names
from warroom.enums import TimelineKind, action_of
from warroom.settings import Settings
from warroom.telemetry.logs import incident_of, logging_context
from warroom.telemetry.metrics import WorkerMetrics, platform_label, worker_metrics

log = logging.getLogger("warroom.telemetry")

IM_PREFIX = "im_"


# ---------------------------------------------------------------------------- the activity interceptor


class TelemetryInterceptor(Interceptor):
    """Measures IM calls, room-ready latency and actions; puts incident/workflow ids in log context."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityTelemetry(next, self.metrics)


class _ActivityTelemetry(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, metrics: WorkerMetrics) -> None:
        super().__init__(next)
        self.metrics = metrics

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        kind = info.activity_type
        arg = input.args[0] if input.args else None
        with logging_context(incident_id=incident_of(info.workflow_id), workflow_id=info.workflow_id):
            if not kind.startswith(IM_PREFIX):
                result = await super().execute_activity(input)
                if kind == names.RECORD:
                    self._count_actions(arg)
                return result
            platform = platform_label(getattr(arg, "platform", None))
            method = kind.removeprefix(IM_PREFIX)
            started = time.monotonic()
            try:
                result = await super().execute_activity(input)
            except BaseException as e:
                self.metrics.im_call_errors.labels(platform, method, _error_name(e)).inc()
                raise
            finally:
                self.metrics.im_call_seconds.labels(platform, method).observe(time.monotonic() - started)
            if kind in (names.IM_CREATE_ROOM, names.IM_OPEN_ROOM):
                waited = (datetime.now(UTC) - info.scheduled_time).total_seconds()
                self.metrics.room_ready_seconds.labels(platform).observe(max(waited, 0.0))
            return result

    def _count_actions(self, arg: object) -> None:
        for entry in getattr(arg, "entries", None) or []:
            kind = getattr(entry, "kind", "")
            if kind == TimelineKind.ACTION_REFUSED:  # detail: "<action>: <reason>"
                action = str(getattr(entry, "detail", "")).split(":", 1)[0] or "unknown"
            elif (applied := action_of(kind)) is not None:
                action = applied.value
            else:
                continue
            outcome = str(getattr(entry, "outcome", "ok"))
            self.metrics.actions.labels(action, str(getattr(entry, "source", "system")), outcome).inc()


def _error_name(e: BaseException) -> str:
    if isinstance(e, ApplicationError) and e.type:
        return e.type
    return type(e).__name__


# ---------------------------------------------------------------------------- the metrics endpoint


class MetricsServer:
    """`GET /metrics` (War Room's registry, then the SDK runtime's text) and `GET /healthz`."""

    def __init__(self, port: int, registry: CollectorRegistry, sdk_url: str | None, host: str = "0.0.0.0") -> None:
        self.registry, self.sdk_url = registry, sdk_url
        self.workers_running = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, server.render(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    ok = server.workers_running > 0
                    self._answer(200 if ok else 503, b"ok\n" if ok else b"no worker running\n", "text/plain")
                else:
                    self._answer(404, b"try /metrics or /healthz\n", "text/plain")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="warroom-metrics", daemon=True)
        self.thread.start()

    def render(self) -> bytes:
        ours = generate_latest(self.registry)
        if not self.sdk_url:
            return ours
        try:
            with urllib.request.urlopen(self.sdk_url, timeout=3) as r:
                sdk = r.read()
        except OSError as e:
            sdk = f"# Temporal SDK metrics unavailable: {e}\n".encode()
        return ours + sdk

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Process:
    """One runtime and one metrics endpoint per process, however many workers it runs."""

    runtime: Runtime | None = None
    server: MetricsServer | None = None
    lock = threading.Lock()


def worker_runtime(settings: Settings) -> Runtime | None:
    """The Temporal runtime for this process's workers, exporting SDK metrics to the endpoint on
    WARROOM_METRICS_PORT (started here, once); None when no metrics port is configured."""
    if settings.metrics_port is None:
        return None
    with _Process.lock:
        if _Process.runtime is None:
            sdk_port = _free_loopback_port()
            _Process.runtime = Runtime(
                telemetry=TelemetryConfig(
                    metrics=PrometheusConfig(
                        bind_address=f"127.0.0.1:{sdk_port}",
                        counters_total_suffix=True,
                        durations_as_seconds=True,
                        unit_suffix=True,
                    ),
                    global_tags={"region": settings.region or "global"},
                )
            )
            registry = worker_metrics().registry  # type: ignore[union-attr]
            _Process.server = MetricsServer(settings.metrics_port, registry, f"http://127.0.0.1:{sdk_port}/metrics")
            log.info("metrics on :%s/metrics (Temporal SDK and warroom_)", _Process.server.port)
        return _Process.runtime


@contextlib.contextmanager
def worker_running() -> Any:
    """Marks a worker as polling, for the metrics port's /healthz."""
    server = _Process.server
    if server is not None:
        server.workers_running += 1
    try:
        yield
    finally:
        if server is not None:
            server.workers_running -= 1


def metrics_server() -> MetricsServer | None:
    return _Process.server


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
