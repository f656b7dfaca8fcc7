"""Activities beat so a dead worker is noticed within the heartbeat timeout; an activity done
before the first beat is due sends none (each beat is a call the server has to persist, and
the server's heartbeat timer runs from the activity's start all the same)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from temporalio.testing import ActivityEnvironment
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from activities import heartbeat
from activities.heartbeat import HeartbeatWhileRunning


class _Body(ActivityInboundInterceptor):
    """The activity itself, at the end of the interceptor chain."""

    def __init__(self, body: Callable[[], Awaitable[Any]]) -> None:
        self._body = body

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        return await self._body()


async def _run(body: Callable[[], Awaitable[Any]], beats: list[tuple[Any, ...]]) -> Any:
    """Run ``body`` as an activity behind the worker's heartbeat interceptor."""
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    chain = HeartbeatWhileRunning().intercept_activity(_Body(body))

    async def activity_fn() -> Any:
        return await chain.execute_activity(cast(ExecuteActivityInput, None))

    return await env.run(activity_fn)


async def test_an_activity_done_before_the_first_beat_sends_no_heartbeat() -> None:
    async def quick() -> str:
        for _ in range(5):  # a few turns of the loop, as a short database write takes
            await asyncio.sleep(0.01)
        return "done"

    beats: list[tuple[Any, ...]] = []
    assert await _run(quick, beats) == "done"
    assert beats == []


async def test_a_long_activity_beats_while_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heartbeat, "BEAT_EVERY", 0.02)
    seen: list[tuple[Any, ...]] = []

    async def long() -> int:
        async with asyncio.timeout(10):
            while len(seen) < 2:
                await asyncio.sleep(0.01)
        return len(seen)

    assert await _run(long, seen) >= 2
