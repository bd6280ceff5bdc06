"""Heartbeats for every activity that asks for them, so a lost worker is noticed in seconds.

An activity scheduled with a heartbeat timeout (the workflow gives IM and AI calls one) is failed
by the server when no heartbeat arrives within it; without heartbeats, a worker killed mid-call
would keep its call "running" for the whole start-to-close timeout before anyone retried it. Most
activities are single calls that cannot report progress, so this interceptor beats on their behalf
while they run, a few times per timeout. An activity that reports progress (`activity.heartbeat(
details)`, read back by its next attempt) keeps it: the beats repeat the last details reported.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

BEATS_PER_TIMEOUT = 4


class HeartbeatInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Heartbeating(next)


class _RememberDetails(ActivityOutboundInterceptor):
    def __init__(self, next: ActivityOutboundInterceptor) -> None:
        super().__init__(next)
        self.details: Sequence[Any] = ()

    def heartbeat(self, *details: Any) -> None:
        self.details = details
        super().heartbeat(*details)


class _Heartbeating(ActivityInboundInterceptor):
    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        self.outbound = _RememberDetails(outbound)
        super().init(self.outbound)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if info.is_local or not info.heartbeat_timeout or not asyncio.iscoroutinefunction(input.fn):
            return await super().execute_activity(input)
        every = info.heartbeat_timeout.total_seconds() / BEATS_PER_TIMEOUT
        self.outbound.details = tuple(info.heartbeat_details)  # the previous attempt's progress

        async def beat() -> None:  # a call that ends within `every` costs no heartbeat at all
            while True:
                await asyncio.sleep(every)
                self.outbound.heartbeat(*self.outbound.details)

        beating = asyncio.create_task(beat())
        try:
            return await super().execute_activity(input)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
