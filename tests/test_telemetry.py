"""Telemetry after a real lifecycle: the worker's metrics port (War Room's `warroom_` metrics and the
Temporal SDK's), the API's /metrics, structured JSON logs carrying incident and workflow ids, and
OpenTelemetry traces from an incoming IM callback into the workflow, exported over OTLP/HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from starters.api.app import create_app
from starters.service import WarRoomService
from tests.serving import free_port
from warroom.errors import Conflict
from warroom.models import Action, IncidentIn, Responder, RoomState, Source
from warroom.settings import Settings
from warroom.telemetry.logs import JsonFormatter, logging_context
from workers.main import run_worker

from .conftest import eventually

ANN = "ann@example.com"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= ls)


@contextlib.asynccontextmanager
async def worker_process(settings: Settings) -> AsyncIterator[None]:
    """`run_worker` as `warroom worker` runs it (in this event loop), stopped like SIGTERM would."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # run_worker's handlers: back to Python's defaults
            loop.remove_signal_handler(sig)


@pytest.fixture
def on_dev(dev_env: WorkflowEnvironment, settings: Settings) -> Settings:
    return settings.model_copy(update={"temporal_address": dev_env.client.service_client.config.target_host})


@contextlib.contextmanager
def json_logs() -> Iterator[list[dict]]:
    lines: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(self.format(record)))

    handler = Collect(level=logging.INFO)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def test_worker_metrics_port_after_a_lifecycle(client, store, on_dev, monkeypatch):
    # "teams" below is a platform this build lacks (no package): its room fails, counted as "other"
    port = free_port()
    settings = on_dev.model_copy(update={"metrics_port": port})
    svc = WarRoomService(client, store, settings)
    with json_logs() as logs:
        async with worker_process(settings), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as scrape:
            assert (await eventually(lambda: _healthy(scrape))).text == "ok\n"
            incident, _ = await svc.upsert_incident(
                IncidentIn(title="Metrics", responders=[Responder(email=ANN)]), actor=ANN, source=Source.API
            )
            assert (await svc.create_room(incident.id, platform="sandbox", actor=ANN, source=Source.API)).done
            assert (await svc.act(incident.id, Action.ACKNOWLEDGE, actor=ANN, source=Source.CLI)).done
            with pytest.raises(Conflict):  # acknowledged twice: refused, and counted as refused
                await svc.act(incident.id, Action.ACKNOWLEDGE, actor=ANN, source=Source.WEB)
            assert (await svc.act(incident.id, Action.CLOSE, actor=ANN, source=Source.API)).done
            assert (await svc.dismiss_room(incident.id, actor=ANN, source=Source.API)).done

            other, _ = await svc.upsert_incident(IncidentIn(title="No such platform"), actor=ANN, source=Source.API)
            failed = await svc.create_room(other.id, platform="teams", actor=ANN, source=Source.API)
            assert failed.done and failed.value.state is RoomState.FAILED

            text = (await scrape.get("/metrics")).text
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as after:
            with contextlib.suppress(httpx.HTTPError):  # the port may stay open: then it says unhealthy
                assert (await after.get("/healthz")).status_code == 503

    found = samples(text)
    for method in ("open_room", "update_card", "post_message", "dismiss_room"):
        assert value(found, "warroom_im_call_seconds_count", platform="sandbox", method=method) >= 1, method
    assert value(found, "warroom_im_call_errors_total", platform="other", method="open_room", error="ImPermanent")
    assert value(found, "warroom_room_ready_seconds_count", platform="sandbox") >= 1
    assert value(found, "warroom_actions_total", action="acknowledge", source="cli", outcome="ok") >= 1
    assert value(found, "warroom_actions_total", action="acknowledge", source="web", outcome="refused") >= 1
    assert value(found, "warroom_actions_total", action="close", source="api", outcome="ok") >= 1
    # The Temporal SDK's own metrics, on the same port, tagged with the worker's region.
    sdk = {n for n, _ in found if n.startswith("temporal_")}
    assert {"temporal_workflow_completed_total", "temporal_activity_execution_latency_seconds_count"} <= sdk, sdk
    assert value(found, "temporal_workflow_completed_total", region="global", task_queue=settings.task_queue) >= 1

    # Structured logs: the failed IM call is logged with its incident and workflow.
    failure = [line for line in logs if line.get("workflow_id") == f"incident-{other.id}"]
    assert failure and all(line["incident_id"] == other.id for line in failure), logs[-5:]
    assert any(line.get("activity_type") == "im_open_room" for line in failure)


async def _healthy(scrape: httpx.AsyncClient) -> httpx.Response | None:
    r = await scrape.get("/healthz")
    return r if r.status_code == 200 else None


async def test_api_metrics_count_refused_callbacks(client, worker, store, settings):
    app = create_app(settings, client=client, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        for _ in range(2):
            r = await http.post("/im/sandbox/events", content=b"{}", headers={"x-sandbox-signature": "v1=forged"})
            assert r.status_code == 401, r.text
        text = (await http.get("/metrics")).text
    found = samples(text)
    assert value(found, "warroom_callbacks_refused_total", platform="sandbox", reason="unsigned") == 2
    assert ("warroom_incidents", frozenset()) not in found  # labelled gauges only
    assert all(line.startswith(("# HELP warroom_", "# TYPE warroom_", "warroom_")) for line in text.splitlines())


def test_json_log_lines_carry_the_context() -> None:
    record = logging.LogRecord("warroom.im", logging.WARNING, __file__, 1, "slow call to %s", ("lark",), None)
    with logging_context(incident_id="abc", workflow_id="incident-abc"):
        line = json.loads(JsonFormatter().format(record))
    assert line | {"ts": "-"} == {
        "ts": "-",
        "level": "warning",
        "logger": "warroom.im",
        "message": "slow call to lark",
        "incident_id": "abc",
        "workflow_id": "incident-abc",
    }
    record.temporal_workflow = {"workflow_id": "incident-xyz", "run_id": "r1", "workflow_type": "IncidentWarRoom"}
    line = json.loads(JsonFormatter().format(record))
    assert (line["incident_id"], line["workflow_id"], line["run_id"]) == ("xyz", "incident-xyz", "r1")


# ---------------------------------------------------------------------------- tracing


class OtlpSink:
    """A local OTLP/HTTP trace receiver (protobuf), recording the spans it is sent."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.spans: list = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                for rs in req.resource_spans:
                    service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
                    for ss in rs.scope_spans:
                        sink.spans += [(service, s) for s in ss.spans]
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


async def test_a_callback_is_traced_into_the_workflow(store, on_dev):
    from opentelemetry import trace

    sink = OtlpSink()
    settings = on_dev.model_copy(update={"otel_endpoint": sink.url})
    app = create_app(settings, store=store)  # connects lazily, with the tracing interceptor
    async with (
        worker_process(settings),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=60) as http,
    ):
        r = await http.post("/api/v1/incidents", json={"title": "Traced", "responders": [{"email": ANN}]})
        iid = r.json()["id"]
        room = (await http.post(f"/api/v1/incidents/{iid}/war-room", json={})).json()
        click = await http.post(
            f"/sandbox/api/rooms/{room['chat_id']}/actions", json={"user": ANN, "action": "acknowledge"}
        )
        assert click.status_code == 200, click.text
        await eventually(lambda: store.incidents.get(iid).status.value == "acknowledged")
        await asyncio.sleep(0.5)
    provider = trace.get_tracer_provider()
    provider.force_flush()  # type: ignore[attr-defined]
    provider.shutdown()  # type: ignore[attr-defined]  # nothing left to export to the sink at exit
    sink.httpd.shutdown()

    names = {s.name for _, s in sink.spans}
    wanted = {"SignalWithStartWorkflow:IncidentWarRoom", "RunWorkflow:IncidentWarRoom", "RunActivity:im_open_room"}
    assert wanted <= names, names
    # FastAPI's own server span of the click (FastAPI traces itself once a tracer provider is set).
    (post,) = [s for _, s in sink.spans if s.name == "POST /sandbox/api/rooms/{chat_id}/actions"]
    same_trace = {s.name for _, s in sink.spans if s.trace_id == post.trace_id}
    assert "SignalWorkflow:room_action" in same_trace, same_trace  # the API's signal, child of the click
    # The workflow's signal handler runs in the workflow's own trace, linked to the click's span;
    # the card update the click caused is in that workflow trace.
    handled = [s for _, s in sink.spans if s.name == "HandleSignal:room_action"]
    assert any(link.trace_id == post.trace_id for h in handled for link in h.links), handled
    workflow_trace = {s.name for _, s in sink.spans if s.trace_id == handled[0].trace_id}
    assert {"RunActivity:apply_action", "RunActivity:im_update_card"} <= workflow_trace, workflow_trace
