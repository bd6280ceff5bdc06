"""The Temporal client of every War Room process."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.runtime import Runtime

from connection.codec import data_converter
from connection.tracing import tracing_interceptors
from warroom.settings import Settings


async def connect(settings: Settings, *, runtime: Runtime | None = None, service: str = "warroom") -> Client:
    """A Temporal client with the data converter every War Room process must share (pydantic JSON,
    encrypted when WARROOM_PAYLOAD_KEY is set) and tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    `service` names the process in its traces; `runtime` is the worker's (it exports its metrics)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        interceptors=tracing_interceptors(settings, service),
        **({"runtime": runtime} if runtime is not None else {}),
    )
