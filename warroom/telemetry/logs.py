"""Structured logs: one JSON object a line, with the incident id and workflow id when known.

`WARROOM_LOG_FORMAT=json` switches the worker and the API to this format. The context comes from
three places: Temporal's workflow and activity loggers (their records carry `temporal_workflow` /
`temporal_activity`), `log_context` (set by the worker around every activity and by the API around
every incident request, so library logs inside carry it too), and `extra=` of the log call.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

log_context: ContextVar[dict[str, str]] = ContextVar("warroom_log_context", default={})  # noqa: B039 - never mutated

_CONTEXT_KEYS = ("incident_id", "workflow_id", "run_id", "workflow_type", "activity_type", "activity_id", "attempt")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def incident_of(workflow_id: str | None) -> str | None:
    """The incident id in a workflow id `incident-<id>` (CONTRACT.md)."""
    if workflow_id and workflow_id.startswith("incident-"):
        return workflow_id.removeprefix("incident-")
    return None


@contextmanager
def logging_context(**values: str | None) -> Iterator[None]:
    """Add fields to every log record emitted inside (this task and what it awaits)."""
    token = log_context.set(log_context.get() | {k: str(v) for k, v in values.items() if v is not None})
    try:
        yield
    finally:
        log_context.reset(token)


def record_context(record: logging.LogRecord) -> dict[str, str]:
    fields: dict[str, str] = dict(log_context.get())
    for attr in ("temporal_workflow", "temporal_activity"):
        info = getattr(record, attr, None)
        if isinstance(info, dict):
            fields.update({k: str(v) for k, v in info.items() if k in _CONTEXT_KEYS and v is not None})
    for key in _CONTEXT_KEYS:
        value = getattr(record, key, None)
        if value is not None:
            fields[key] = str(value)
    if "incident_id" not in fields and incident_of(fields.get("workflow_id")):
        fields["incident_id"] = incident_of(fields["workflow_id"])  # type: ignore[assignment]
    return fields


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "incident_id"?, "workflow_id"?, …, "exc"?}` a line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(record_context(record))
        for key, value in record.__dict__.items():  # extra=… of the call, when JSON-friendly
            if key not in _STANDARD and key not in out and not key.startswith("temporal_"):
                out[key] = value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_logging(log_format: str, level: int | str | None = None) -> None:
    """Switch this process's root logger to JSON lines on stderr (`json`); `text` changes nothing."""
    if log_format != "json":
        return
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    if level is not None:
        root.setLevel(level)
    elif root.level == logging.WARNING:  # never configured: INFO like the CLI's default
        root.setLevel(logging.INFO)
