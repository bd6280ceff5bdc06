"""The HTTP API of CONTRACT.md (FastAPI): incidents, war rooms, timeline, users, IM callbacks.

`create_app()` wires one store, one lazily connected Temporal client and the IM adapters into
the routers. Errors always come back as `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from connection.tracing import setup_tracing
from starters import console
from starters.api import assistant, callbacks, codec, incidents, ops, sandbox, sources, users
from starters.api.deps import AppState, require_token
from starters.api.errors import ApiError
from warroom.errors import Conflict, NotFound
from warroom.settings import Settings, get_settings
from warroom.sources.rules import RulesFileError, load_rules
from warroom.store import Store
from warroom.telemetry.logs import configure_logging, logging_context

log = logging.getLogger("warroom.api")
MAX_BODY_BYTES = 1024 * 1024


def create_app(
    settings: Settings | None = None,
    *,
    client: Client | None = None,
    store: Store | None = None,
    answer_within: float | None = None,
) -> FastAPI:
    """The API. `answer_within`: seconds a request waits for the workflow before answering 202."""
    settings = settings or get_settings()
    configure_logging(settings.log_format)
    if settings.payload_key.get_secret_value() and not settings.api_token.get_secret_value():
        log.warning("%s", codec.OPEN_CODEC)
    if not settings.platform("sandbox").signing_secret.get_secret_value():
        # The sandbox signs its own callbacks; without a configured secret, one per process.
        secret = SecretStr(secrets.token_hex(16))
        settings = settings.model_copy(update={"WARROOM_SANDBOX_SIGNING_SECRET": secret})
    try:
        rules = load_rules(settings.rules_path())
    except RulesFileError as e:
        raise SystemExit(f"War Room cannot start: {e}") from None  # a typo must not stop rooms silently
    own_store = store is None
    store = store or Store(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connections = await callbacks.hold_connections(app.state.warroom)  # DingTalk's Stream mode
        yield
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await app.state.warroom.aclose()
        if own_store:
            store.close()

    app = FastAPI(
        title="War Room",
        version="0.1.0",
        description="Incident war rooms on your IM platform, orchestrated by Temporal.",
        lifespan=lifespan,
    )
    app.state.warroom = AppState(settings, store, client, answer_within=answer_within, rules=rules)
    _install_error_handlers(app)
    _install_body_limit(app)
    _install_telemetry(app)

    auth = [Depends(require_token)]
    app.include_router(incidents.router, prefix="/api/v1", dependencies=auth)
    app.include_router(users.router, prefix="/api/v1", dependencies=auth)
    app.include_router(assistant.router, prefix="/api/v1", dependencies=auth)
    app.include_router(sources.rules_router, prefix="/api/v1", dependencies=auth)
    app.include_router(callbacks.router)
    app.include_router(sources.router)
    app.include_router(sandbox.router)
    app.include_router(ops.router)
    app.include_router(codec.router)
    console.install(app)
    return app


def _error(
    status: int,
    code: str,
    message: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}} | (extra or {})
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
        return _error(e.status, e.code, e.message, extra=e.extra, headers=e.headers)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, e: NotFound) -> JSONResponse:
        return _error(404, "not_found", str(e))

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, e: Conflict) -> JSONResponse:
        return _error(409, "conflict", str(e))

    @app.exception_handler(RPCError)
    async def _temporal(_: Request, e: RPCError) -> JSONResponse:
        if e.status is RPCStatusCode.RESOURCE_EXHAUSTED:  # e.g. 10 requests already wait on this incident
            message = f"too many requests are waiting on this incident ({e}); retry in a few seconds"
            return _error(429, "busy", message, headers={"Retry-After": "5"})
        log.warning("Temporal call failed: %s", e)
        return _error(503, "temporal_unavailable", f"Temporal call failed: {e}")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body') or 'body'}: {err.get('msg')}"
            for err in e.errors()
        )
        return _error(422, "invalid", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 401: "unauthorized"}
        return _error(e.status_code, codes.get(e.status_code, "error"), str(e.detail), headers=e.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, e: Exception) -> JSONResponse:
        # Rendering a traceback takes long (seconds with rich's): not on the loop that serves everyone.
        await asyncio.to_thread(log.error, "unhandled error", exc_info=e)
        return _error(500, "internal", "internal error; see the API server's log")


def _install_body_limit(app: FastAPI) -> None:
    @app.middleware("http")
    async def _limit(request: Request, call_next):  # type: ignore[no-untyped-def]
        length = request.headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > MAX_BODY_BYTES
            except ValueError:
                return _error(400, "bad_request", "Content-Length is not a number")
            if too_big:
                return _error(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")
        elif request.method in ("POST", "PUT", "PATCH"):
            body = await request.body()  # chunked: read (bounded by the server) and measure
            if len(body) > MAX_BODY_BYTES:
                return _error(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")
        return await call_next(request)


_INCIDENT_PATH = re.compile(r"^/api/v1/incidents/([^/]+)")


def _install_telemetry(app: FastAPI) -> None:
    """Incident requests log with their incident and workflow id (refused callbacks are counted
    where they are refused). With tracing on, FastAPI traces each request itself once a provider is set."""
    state: AppState = app.state.warroom
    setup_tracing(state.settings, "warroom-api")

    @app.middleware("http")
    async def _observe(request: Request, call_next):  # type: ignore[no-untyped-def]
        path = request.url.path
        m = _INCIDENT_PATH.match(path)
        incident_id = m.group(1) if m else None
        with logging_context(incident_id=incident_id, workflow_id=f"incident-{incident_id}" if incident_id else None):
            response = await call_next(request)
        return response
