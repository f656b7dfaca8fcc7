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
