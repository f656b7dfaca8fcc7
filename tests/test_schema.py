"""The schema migrates, re-migrates to nothing, and the event log is append-only."""

from __future__ import annotations

import asyncpg
import pytest

from activities.db import MIGRATIONS_DIR, migrate


async def test_migrations_apply_once(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        assert await migrate(conn) == []
        versions = await conn.fetch("SELECT version FROM schema_migrations")
    assert [r["version"] for r in versions] == [
        p.stem for p in sorted(MIGRATIONS_DIR.glob("*.sql"))
    ]
    assert "002_replies" in [r["version"] for r in versions]


async def test_event_log_is_append_only(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        await conn.execute(
            "INSERT INTO tandem_events (mentee_id, seq, at, kind, status, phase)"
            " VALUES ('m1', 1, now(), 'enrolled', 'matching', 'study')"
        )
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("DELETE FROM tandem_events")
