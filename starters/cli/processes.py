"""`warroom dev | worker | api`: the processes, each run in the foreground with readable logs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from starters.cli.config import settings_or_exit
from starters.cli.errors import EXIT_API_ERROR, EXIT_UNREACHABLE, fail, handled
from starters.cli.migrate import ready_schema
from starters.cli.options import LogLevel
from starters.cli.output import err


def _setup_logging(level: str) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level.upper(),
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=err(), rich_tracebacks=True, show_path=False)],
        force=True,
    )
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))


@handled
def dev(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where local state lives.")] = Path(".warroom"),
    db_filename: Annotated[
        Path | None, typer.Option("--db-filename", help="Temporal's database file (default: <data-dir>/temporal.db)")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address the API listens on.")] = "127.0.0.1",
    api_port: Annotated[int, typer.Option("--api-port", "--port", help="API port.")] = 8000,
    temporal_port: Annotated[int, typer.Option("--temporal-port", help="Temporal frontend (gRPC) port.")] = 7233,
    ui_port: Annotated[int, typer.Option("--ui-port", help="Temporal UI port.")] = 8233,
    ui: Annotated[bool, typer.Option("--ui/--headless", help="Serve the Temporal UI.")] = True,
    temporal_address: Annotated[
        str | None, typer.Option("--temporal-address", help="Use this Temporal server instead of starting one.")
    ] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every HTTP request.")] = False,
    log_level: LogLevel = "info",
) -> None:
    """Run the whole local stack: Temporal dev server + UI, worker, API with the sandbox IM page."""
    import asyncio

    from starters.dev import DevOptions, run_dev

    _setup_logging(log_level)
    for name in ("temporalio", "uvicorn.error"):  # the banner says what they would
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    opts = DevOptions(
        data_dir=data_dir,
        db_filename=db_filename,
        host=host,
        api_port=api_port,
        temporal_port=temporal_port,
        ui_port=ui_port,
        ui=ui,
        temporal_address=temporal_address,
        access_log=access_log,
    )
    try:
        code = asyncio.run(run_dev(opts, err()))
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


@handled
def worker(log_level: LogLevel = "info") -> None:
    """Run a worker for WARROOM_TASK_QUEUE (or its regional queue when WARROOM_REGION is set)."""
    import asyncio

    from workers.main import run_worker

    _setup_logging(log_level)
    settings = settings_or_exit()
    ready_schema(settings)
    try:
        asyncio.run(run_worker(settings))
    except KeyboardInterrupt:
        pass
    except RuntimeError as e:
        if "connect" in str(e).lower():
            fail(
                f"cannot reach Temporal at {settings.temporal_address}: {e}",
                EXIT_UNREACHABLE,
                "Start it with `warroom dev`, or set WARROOM_TEMPORAL_ADDRESS.",
            )
        raise


@handled
def api(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    log_level: LogLevel = "info",
) -> None:
    """Run the HTTP API (incidents, IM callbacks, the sandbox page) against a running Temporal."""
    import uvicorn

    from starters.api.app import create_app
    from starters.dev import port_in_use

    _setup_logging(log_level)
    settings = settings_or_exit()
    if port_in_use(host, port):
        fail(f"port {port} is already in use on {host}; pick another with --port", EXIT_API_ERROR)
    ready_schema(settings)
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, log_level=log_level.lower())
