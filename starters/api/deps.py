"""What the API's routers need from the app, and only that: its state and the dependencies built on it.

The routers import this module and `app.py` imports the routers, so nothing imports `app.py`
back (it used to hold these, and every router imported the app that imported the router).
"""

from __future__ import annotations

import asyncio
import hmac

from fastapi import Request
from temporalio.client import Client

from connection.client import connect
from connection.search_attributes import ensure_search_attributes
from starters.api import session
from starters.api.errors import ApiError
from starters.coalesce import SnapshotCoalescer
from starters.intake import Intake
from starters.service import ANSWER_WITHIN_SECONDS, SharedRequests, WarRoomService
from warroom.im.base import ImAdapter
from warroom.im.registry import build_adapter
from warroom.settings import Settings
from warroom.sources import pagerduty_api
from warroom.sources.rules import RulesFile
from warroom.store import Store
from warroom.store.accounts import TOKEN_PREFIX
from warroom.telemetry.metrics import ApiMetrics
from workflows.incident import SEARCH_ATTRIBUTES


class AppState:
    """What every request handler needs; one per app."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        client: Client | None,
        *,
        answer_within: float | None = None,
        rules: RulesFile | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.answer_within = ANSWER_WITHIN_SECONDS if answer_within is None else answer_within
        self._client = client
        self.snapshots = SnapshotCoalescer()
        self.shared = SharedRequests()  # create and dismiss requests share one unanswered update
        self._lock = asyncio.Lock()
        self._adapters: dict[str, ImAdapter] = {}
        self.metrics = ApiMetrics(store.db)
        self.pagerduty = pagerduty_api.from_settings(settings)
        self.intake = Intake(rules or RulesFile(), self.pagerduty)  # incident sources (starters/api/sources.py)
        # Incidents whose war room a request of this process is opening right now, set once that
        # request has looked at the room: concurrent requests for the same room wait for that
        # look, and are not the one that opened it (200, not 201).
        self.opening_rooms: dict[str, asyncio.Event] = {}

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    try:
                        client = await connect(self.settings, service="warroom-api")
                    except Exception as e:
                        raise ApiError(
                            503,
                            "temporal_unavailable",
                            f"cannot reach Temporal at {self.settings.temporal_address}: {e}. "
                            "Start the stack with `warroom dev` or set WARROOM_TEMPORAL_ADDRESS.",
                        ) from e
                    # Processes start in any order: the API may be first to meet a bare namespace.
                    await ensure_search_attributes(client, SEARCH_ATTRIBUTES)
                    self._client = client
        return self._client

    async def service(self) -> WarRoomService:
        return WarRoomService(
            await self.client(),
            self.store,
            self.settings,
            wait=self.answer_within,
            snapshots=self.snapshots,
            shared=self.shared,
            rules=self.intake.rules,
        )

    def adapter(self, platform: str) -> ImAdapter:
        if platform not in self._adapters:
            self._adapters[platform] = build_adapter(platform, self.store.db, self.settings)
        return self._adapters[platform]

    def connection_statuses(self) -> dict[str, dict[str, object]]:
        """The long connections of the adapters built so far (DingTalk's Stream mode), by platform."""
        out = {}
        for platform, adapter in self._adapters.items():
            status = adapter.connection_status()
            if status is not None:
                out[platform] = status
        return out

    async def aclose(self) -> None:
        """Close the IM adapters built for requests (the store is closed by whoever opened it)."""
        for adapter in self._adapters.values():
            await adapter.aclose()
        if self.pagerduty is not None:
            await self.pagerduty.aclose()


def app_state(request: Request) -> AppState:
    return request.app.state.warroom


async def service(request: Request) -> WarRoomService:
    return await app_state(request).service()


def require_token(request: Request) -> None:
    """When WARROOM_API_TOKEN is set, every /api route needs `Authorization: Bearer <token>`: that
    token (the service/admin token) or a person's personal token (`wrp_…`)."""
    state = app_state(request)
    token = state.settings.api_token.get_secret_value()
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value.startswith(TOKEN_PREFIX):
        # A personal token (issue 18): the request acts as its person, whatever `actor` it claims.
        account = state.store.accounts.by_token(value)
        if account is not None:
            request.state.person = account
            return
    if not token:
        return
    if not given and _console_session(request):
        return
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), token.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "missing or wrong API token: send `Authorization: Bearer <token>`",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _console_session(request: Request) -> bool:
    """A signed-in console session stands for the token on pages of this site (the sandbox page):
    with its CSRF token in `X-Warroom-Csrf`, which another site's page cannot read or send. A
    non-admin acts as themself (as with a personal token); an admin's session may act as the
    sandbox's simulated people."""
    settings = app_state(request).settings
    who = session.read(settings, request.cookies.get(session.COOKIE))
    if who is None or not session.same(request.headers.get("x-warroom-csrf", ""), who.csrf):
        return False
    if not who.admin:
        request.state.person = who
    return True
