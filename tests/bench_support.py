"""The real parts a benchmark runs on: embedded PostgreSQL, the SMTP sink, a Temporal server."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from activities.db import migrate
from starter.mailsink import MailSink
from starter.postgres import embedded_postgres
from tandem.settings import Settings
from tests.conftest import register_search_attributes
from tests.support import BIN
from workflows import search_attributes as sa
from workflows.codec import data_converter


@dataclass
class Stack:
    env: WorkflowEnvironment
    pool: asyncpg.Pool
    dsn: str
    sink: MailSink
    settings: Settings


async def _dev_server() -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        data_converter=data_converter(Settings()),
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=sa.ALL,
    )


async def _time_skipping() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(Settings()),
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )
    await register_search_attributes(env.client)
    return env


@contextlib.asynccontextmanager
async def bench_stack(*, time_skipping: bool = False) -> AsyncIterator[Stack]:
    """Everything started here and stopped afterwards; data in a fresh temporary folder."""
    home = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
    start: Callable[[], Awaitable[WorkflowEnvironment]] = (
        _time_skipping if time_skipping else _dev_server
    )
    with embedded_postgres(home / "pg", delete=True) as dsn:
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=20)
        assert pool is not None
        async with pool.acquire() as conn:
            await migrate(conn)
        sink = MailSink(home / "mail", port=0)
        await sink.start()
        env = await start()
        settings = Settings(
            home=home,
            smtp_port=sink.port,
            task_queue=f"bench-{uuid.uuid4().hex[:6]}",
            reply_token_secret=SecretStr("bench"),
        )
        try:
            yield Stack(env, pool, dsn, sink, settings)
        finally:
            await env.shutdown()
            await sink.stop()
            await pool.close()
