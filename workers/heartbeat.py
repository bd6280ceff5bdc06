"""Heartbeats for every activity that asks for them, so a lost worker is noticed in seconds.

An activity scheduled with a heartbeat timeout (the workflow gives IM and AI calls one) is failed
by the server when no heartbeat arrives within it; without heartbeats, a worker killed mid-call
would keep its call "running" for the whole start-to-close timeout before anyone retried it. The
activities themselves are single calls that cannot report progress, so this interceptor beats on
their behalf while they run, a few times per timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

BEATS_PER_TIMEOUT = 4


class HeartbeatInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Heartbeating(next)


class _Heartbeating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if info.is_local or not info.heartbeat_timeout or not asyncio.iscoroutinefunction(input.fn):
            return await super().execute_activity(input)
        every = info.heartbeat_timeout.total_seconds() / BEATS_PER_TIMEOUT

        async def beat() -> None:
            while True:
                activity.heartbeat()
                await asyncio.sleep(every)

        beating = asyncio.create_task(beat())
        try:
            return await super().execute_activity(input)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
