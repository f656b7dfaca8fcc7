"""Retention as an office's data-protection officer expects it: a sent mail's text and address
go after the configured days (the row keeps its key, Message-ID and dates, so nothing is sent
again), reply verdicts after theirs; unsent and refused mails are never touched. The sweep
runs as a workflow started by a Temporal Schedule on the dev server; ``--dry-run`` changes
nothing and says what the next sweep removes."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio.client import ScheduleCalendarSpec
from temporalio.testing import WorkflowEnvironment

from starter.retention_cmd import ensure_retention_schedule
from tandem.settings import Settings
from tests.support import eventually, running_worker, tandem_cli
from workflows.retention import SCHEDULE_ID, RetentionSweepWorkflow

NOW = datetime.now(UTC)
TEXT = "Guten Tag Frau Dr. Oberländer, Ihre Mentee Friederike Kühn erreichen Sie unter ..."


async def put_mail(db: asyncpg.Pool, *, sent_days_ago: float | None, failed: bool = False) -> str:
    key = f"ret-{uuid.uuid4().hex[:10]}/e1/2/introduction_mentor/mentor"
    sent = NOW - timedelta(days=sent_days_ago) if sent_days_ago is not None else None
    await db.execute(
        "INSERT INTO outbox (idempotency_key, message_id, mentee_id, recipient_role,"
        " recipient_id, template, to_address, subject, body, created_at, sent_at, failed_at,"
        " failure) VALUES ($1, $2, 'S-ret', 'mentor', 'M-ret', 'introduction_mentor',"
        " 'dr.oberlaender@klinikum.example.org', 'Ihr Mentoring-Tandem', $3, $4, $5, $6, $7)",
        key,
        f"<{uuid.uuid4().hex}@tandem.invalid>",
        TEXT,
        NOW - timedelta(days=400),
        sent,
        NOW - timedelta(days=200) if failed else None,
        "550 5.1.1" if failed else None,
    )
    return key


async def put_verdict(db: asyncpg.Pool, days_ago: float) -> int:
    inbound = int(uuid.uuid4().int % 2**40)
    at = NOW - timedelta(days=days_ago)
    await db.execute(
        "INSERT INTO reply_verdicts (inbound_id, received_at, decided_at, message_id_hash,"
        " verdict, reason) VALUES ($1, $2, $2, 'h', 'accepted', 'answered')",
        inbound,
        at,
    )
    return inbound


async def test_the_sweep_purges_only_what_is_past_its_period_and_the_schedule_runs_it(
    dev_env: WorkflowEnvironment, db: asyncpg.Pool, db_dsn: str, settings: Settings
) -> None:
    old_sent = await put_mail(db, sent_days_ago=120)
    young_sent = await put_mail(db, sent_days_ago=10)
    unsent = await put_mail(db, sent_days_ago=None)
    refused = await put_mail(db, sent_days_ago=None, failed=True)
    old_verdict, young_verdict = await put_verdict(db, 500), await put_verdict(db, 30)

    env = {**os.environ, "DATABASE_URL": db_dsn, "TANDEM_HOME": str(settings.home)}
    code, out, err = await tandem_cli(env, "retention", "--dry-run", "--json")
    assert code == 0, err
    planned = json.loads(out)
    assert (planned["mail_bodies"], planned["reply_verdicts"]) == (1, 1)
    assert planned["mail_body_days"] == 90 and planned["dry_run"] is True
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE body = $1", TEXT) == 4

    client = dev_env.client
    async with running_worker(client, settings, db):
        assert await ensure_retention_schedule(client, settings) is True
        assert await ensure_retention_schedule(client, settings) is False  # a rerun updates
        handle = client.get_schedule_handle(SCHEDULE_ID)
        try:
            described = await handle.describe()
            [calendar] = described.schedule.spec.calendars
            assert isinstance(calendar, ScheduleCalendarSpec)
            assert [r.start for r in calendar.hour] == [3]
            assert described.info.next_action_times, "the UI shows when it runs next"
            await handle.trigger()  # what 03:00 does

            async def runs() -> list[str]:
                found = []
                async for w in client.list_workflows(
                    f"WorkflowType = '{RetentionSweepWorkflow.__name__}'"
                    " AND ExecutionStatus = 'Completed'"
                ):
                    found.append(w.id)
                return found

            await eventually(runs, lambda ids: len(ids) >= 1, timeout=60)
        finally:
            await handle.delete()

    rows = {
        r["idempotency_key"]: r
        for r in await db.fetch(
            "SELECT idempotency_key, message_id, subject, body, to_address, sent_at FROM outbox"
        )
    }
    purged = rows[old_sent]
    assert (purged["subject"], purged["body"], purged["to_address"]) == ("", "", "")
    assert purged["message_id"] and purged["sent_at"] is not None, "key, id and dates stay"
    for kept in (young_sent, unsent, refused):
        assert rows[kept]["body"] == TEXT and rows[kept]["to_address"]
    verdicts = {r["inbound_id"] for r in await db.fetch("SELECT inbound_id FROM reply_verdicts")}
    assert verdicts == {young_verdict} and old_verdict not in verdicts

    code, out, err = await tandem_cli(env, "retention", "--dry-run")
    assert code == 0, err
    assert "0 sent mails" in out and "0 reply" in out


async def _closed_tandem(db: asyncpg.Pool, mentee_id: str, status: str, days_ago: float) -> None:
    """A mentee on file with a tandem that closed (or changed last) ``days_ago``, with its
    events and a sent mail that names them, as the workflow leaves them."""
    at = NOW - timedelta(days=days_ago)
    await db.execute(
        "INSERT INTO mentees (id, first_name, last_name, email, program, phase)"
        " VALUES ($1, 'Friederike', $2, $3, 'stipendium-hausarzt', 'study')",
        mentee_id,
        f"Kühn-{mentee_id}",
        f"{mentee_id.lower()}@uni.example.org",
    )
    await db.execute(
        "INSERT INTO tandems (mentee_id, program, phase, status, mentor_id, updated_at)"
        " VALUES ($1, 'stipendium-hausarzt', 'study', $2, 'M-ret', $3)",
        mentee_id,
        status,
        at,
    )
    for seq, kind in enumerate(("enrolled", status), start=1):
        await db.execute(
            "INSERT INTO tandem_events (mentee_id, seq, at, kind, status, phase, mentor_id)"
            " VALUES ($1, $2, $3, $4, $5, 'study', 'M-ret')",
            mentee_id,
            seq,
            at,
            kind,
            status,
        )
    await db.execute(
        "INSERT INTO outbox (idempotency_key, message_id, mentee_id, recipient_role,"
        " recipient_id, template, to_address, subject, body, created_at, sent_at)"
        " VALUES ($1, $2, $3, 'mentee', $3, 'tandem_ended', $4, 'Ihr Tandem', $5, $6, $6)",
        f"{mentee_id}/e1/9/tandem_ended/mentee",
        f"<{uuid.uuid4().hex}@tandem.invalid>",
        mentee_id,
        f"{mentee_id.lower()}@uni.example.org",
        f"Guten Tag Friederike Kühn-{mentee_id}",
        at,
    )


async def test_a_closed_tandems_mentee_is_erased_after_the_programmes_retention(
    db: asyncpg.Pool,
) -> None:
    """With the clock set forward past ``closed_tandem_retention`` (730 days by default),
    the sweep erases the mentee of a closed tandem; a recent or a running one stays."""
    from activities.erasure import scan
    from activities.people import upsert_programs
    from activities.retention import sweep
    from tandem.programs import load_programs
    from tandem.retention import RetentionPolicy

    async with db.acquire() as conn:
        await upsert_programs(conn, load_programs(Settings().programs_dir))
    old, recent, running = (f"S-{uuid.uuid4().hex[:6]}" for _ in range(3))
    await _closed_tandem(db, old, "completed", days_ago=40)
    await _closed_tandem(db, recent, "ended", days_ago=5)
    await _closed_tandem(db, running, "active", days_ago=40)
    events_before = await db.fetchval("SELECT count(*) FROM tandem_events")
    later = NOW + timedelta(days=700)  # 740 days after the first closed, 705 after the second

    async with db.acquire() as conn:
        planned = await sweep(conn, RetentionPolicy(), later, dry_run=True)
        assert planned.closed_tandems == 1
        assert await scan(conn, [old]) != {}, "a dry run changes nothing"
        done = await sweep(conn, RetentionPolicy(), later, dry_run=False)
        assert done.closed_tandems == 1
        assert await scan(conn, [old, f"Kühn-{old}", f"{old.lower()}@uni.example.org"]) == {}
        for kept in (recent, running):
            assert await conn.fetchval("SELECT count(*) FROM mentees WHERE id = $1", kept) == 1
        again = await sweep(conn, RetentionPolicy(), later, dry_run=False)
        assert again.closed_tandems == 0, "a second sweep finds nothing more"
    assert await db.fetchval("SELECT count(*) FROM tandem_events") == events_before
    statuses = sorted(r["status"] for r in await db.fetch("SELECT status FROM tandems"))
    assert statuses == ["active", "completed", "ended"], "the counts stay"
