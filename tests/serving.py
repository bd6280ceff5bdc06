"""Serving ASGI apps (our API, the platform fakes) on loopback inside a test's event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from starters.dev import ApiServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def serving(app: Any, *, lifespan: str = "on", log_level: str = "warning") -> AsyncIterator[str]:
    """`app` served by uvicorn on a free loopback port of this event loop; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level=log_level, lifespan=lifespan, timeout_graceful_shutdown=1
    )
    server = ApiServer(config)
    task = asyncio.create_task(server.serve())
    await server.wait_started(task)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
