"""Real parts for the tests: PostgreSQL (embedded, or ``DATABASE_URL``) started once per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from activities.db import migrate
from starter.postgres import embedded_postgres


@pytest.fixture(scope="session")
def pg_server_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server for the whole session."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    data_dir: Path = tmp_path_factory.mktemp("pg") / "data"
    with embedded_postgres(data_dir, delete=True) as dsn:
        yield dsn


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
