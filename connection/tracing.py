"""Tracing: with `OTEL_EXPORTER_OTLP_ENDPOINT` set (and `pip install 'warroom[otel]'`), clients and
workers get temporalio's `TracingInterceptor`, exporting spans over OTLP/HTTP.

Every process that connects (API, CLI, worker) installs the same tracer provider, once, so that a
span begun by an IM callback in the API continues in the workflow and its activities.
"""

from __future__ import annotations

import logging
import os
import threading

from warroom.settings import Settings

log = logging.getLogger("warroom.telemetry")

_tracing: dict[str, bool] = {}
_lock = threading.Lock()


def setup_tracing(settings: Settings, service: str = "warroom") -> bool:
    """Install an OTLP/HTTP exporting tracer provider once per process, when
    OTEL_EXPORTER_OTLP_ENDPOINT is set and OpenTelemetry is installed (`pip install 'warroom[otel]'`)."""
    if not settings.otel_endpoint:
        return False
    with _lock:
        if "ready" not in _tracing:
            try:
                from opentelemetry import trace
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
                from opentelemetry.sdk.resources import Resource
                from opentelemetry.sdk.trace import TracerProvider
                from opentelemetry.sdk.trace.export import BatchSpanProcessor
            except ImportError as e:
                log.warning(
                    "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed (%s): "
                    "pip install 'warroom[otel]'. Tracing is off.",
                    e,
                )
                _tracing["ready"] = False
                return False
            name = os.environ.get("OTEL_SERVICE_NAME") or service
            provider = TracerProvider(resource=Resource.create({"service.name": name}))
            endpoint = settings.otel_endpoint.rstrip("/") + "/v1/traces"
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
            trace.set_tracer_provider(provider)
            _tracing["ready"] = True
        return _tracing["ready"]


def tracing_interceptors(settings: Settings, service: str = "warroom") -> list:
    """`[TracingInterceptor()]` when tracing is on, else `[]`. Passed to `Client.connect`, it traces
    client calls (start, signal, update: an IM callback's span reaches the workflow's signal
    handler) and, on workers built from that client, workflows and activities, the context
    travelling in Temporal headers."""
    if not setup_tracing(settings, service):
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]
