"""Faults the platform fakes serve: one mechanism for every fake that runs under uvicorn.

Each request is named by its operation (`chat.create`, `scene.create`, …). A fault is either
queued for an operation (`fail(op, "timeout_after", "503")`: the next requests to that operation
take them in order; tests that need one exact failure) or drawn at random (`chaos(rate, choices)`:
that share of all requests meets one of `choices`; the chaos suite). Three faults mean the same on
every platform and are applied here; any other name is the platform's own error answer, built by
the fake's `respond`:

- `drop`: the connection is closed before the request is handled;
- `drop_after`: the request takes effect, then the connection is closed without an answer;
- `timeout_after`: the request takes effect and its answer comes `late_seconds` later, after the
  client has given up (the case that makes every IM call need to be idempotent).

`latency` holds every request that long before it is handled: the benchmarks' per-call L.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
GENERIC = ("drop", "drop_after", "timeout_after")


class Faults:
    """The faults waiting for a fake's operations; thread-safe (the fake serves from its own thread)."""

    def __init__(self, *, seed: int = 7) -> None:
        self._queued: dict[str, deque[str]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.rate = 0.0
        self._choices: tuple[str, ...] = ()
        self._spared: frozenset[str] = frozenset()
        self.latency = 0.0  # seconds every request waits before it is handled (the benchmarks' L)

    def fail(self, op: str, *faults: str) -> None:
        with self._lock:
            self._queued[op].extend(faults)

    def pending(self, op: str) -> list[str]:
        with self._lock:
            return list(self._queued[op])

    def chaos(self, rate: float, choices: Iterable[str], *, spared: Iterable[str] = ()) -> None:
        """From now on a `rate` share of requests meets a fault drawn from `choices`; operations in
        `spared` (a token endpoint, say) are never drawn, as their failures test nothing new."""
        with self._lock:
            self.rate, self._choices, self._spared = rate, tuple(choices), frozenset(spared)

    def next(self, op: str) -> str | None:
        with self._lock:
            queue = self._queued.get(op)
            if queue:
                return queue.popleft()
            if self.rate and op not in self._spared and self._rng.random() < self.rate:
                return self._rng.choice(self._choices)
            return None


class FaultInjector:
    """The outermost ASGI layer of a fake: applies the next fault of each request's operation."""

    def __init__(
        self,
        app: Asgi,
        faults: Faults,
        *,
        operation: Callable[[str, str], str],
        respond: Callable[[str, str], Asgi],
        late_seconds: Callable[[], float],
    ) -> None:
        self.app, self.faults = app, faults
        self.operation, self.respond, self.late_seconds = operation, respond, late_seconds

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        op = self.operation(scope["method"], scope["path"])
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        fault = self.faults.next(op)
        if fault is None:
            return await self.app(scope, receive, send)
        if fault == "drop":
            return abort(send)
        if fault in ("drop_after", "timeout_after"):
            held: list[dict[str, Any]] = []

            async def hold(message: dict[str, Any]) -> None:
                held.append(message)

            await self.app(scope, receive, hold)
            if fault == "drop_after":
                return abort(send)
            await asyncio.sleep(self.late_seconds())
            with contextlib.suppress(Exception):  # the client gave up long ago
                for message in held:
                    await send(message)
            return None
        return await self.respond(fault, op)(scope, receive, send)


def abort(send: Any) -> None:
    """Close the client's connection without an answer (uvicorn's `send` is bound to the cycle)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: not served by uvicorn")
    transport.abort()
