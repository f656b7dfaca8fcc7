"""Activities report that they are alive, so a worker that dies (``kill -9``, a lost host) is
noticed within the heartbeat timeout and its activity is retried elsewhere at once, instead of
after the whole start-to-close timeout.

The first beat comes after ``BEAT_EVERY``, not at the start: most activities are done by
then, and a beat is a call the server persists. The server's heartbeat timer runs from the
activity's start, so a worker that dies before its first beat is noticed just as soon."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

#: How often a running activity says it is alive (the SDK throttles what reaches the server).
BEAT_EVERY = 2.0


class HeartbeatWhileRunning(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Beating(next)


class _Beating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        beating = asyncio.create_task(_beat())
        try:
            return await super().execute_activity(input)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating


async def _beat() -> None:
    while True:
        await asyncio.sleep(BEAT_EVERY)
        activity.heartbeat()
