"""The coordinator's digest through the real parts: a tandem on the dev server waits for a
mentor, another's mail was refused; the Temporal Schedule ``tandem-digest`` runs the digest
workflow, the mail reaches the office over SMTP with names, since-dates and commands, and a
second run in the same week sends nothing again. ``tandem digest --show`` prints it."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import asyncpg
from temporalio.client import ScheduleCalendarSpec
from temporalio.testing import WorkflowEnvironment

from starter.digest_cmd import ensure_digest_schedule
from starter.mailsink import MailSink
from starter.tandem_cmds import enroll_ids
from tandem.models import TandemStatus
from tandem.programs import load_programs
from tandem.settings import Settings
from tests.support import (
    eventually,
    mentee,
    put_people,
    running_worker,
    tandem_cli,
    uid,
    wait_status,
)
from workflows.digest import SCHEDULE_ID, DigestWorkflow


async def _refused_mail(db: asyncpg.Pool, mentee_id: str) -> None:
    """A mail the relay refused, as the outbox keeps it (the tandem row is the projection)."""
    await db.execute(
        "INSERT INTO tandems (mentee_id, program, phase, status, mentor_id, updated_at)"
        " VALUES ($1, 'stipendium-hausarzt', 'study', 'active', NULL, now())",
        mentee_id,
    )
    await db.execute(
        "INSERT INTO outbox (idempotency_key, message_id, mentee_id, recipient_role,"
        " recipient_id, template, to_address, subject, body, failed_at, failure)"
        " VALUES ($1, $2, $3, 'mentee', $3, 'nudge', 'x@invalid.example.org', 's', 'b',"
        " now(), '550 5.1.1')",
        f"{mentee_id}/e1/7/nudge/mentee",
        f"<{uuid.uuid4().hex}@tandem.invalid>",
        mentee_id,
    )


async def test_the_weekly_digest_names_who_waits_and_what_to_run_once_a_week(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
) -> None:
    waiting = mentee(uid("S")).model_copy(
        update={"first_name": "Roswitha", "last_name": "Ehrenfeld"}
    )
    await put_people(db, [], [waiting])  # no mentor at all: the tandem waits
    bounced = uid("S")
    await _refused_mail(db, bounced)
    office = str(load_programs(settings.programs_dir)[waiting.program].coordinator_email)
    client = dev_env.client

    def to_office() -> list:  # type: ignore[type-arg]
        return [m for m in sink.messages() if m["To"] == office and "Übersicht" in m["Subject"]]

    async with running_worker(client, settings, db):
        await enroll_ids(client, db_dsn, [waiting.id], settings)
        await wait_status(client, waiting.id, TandemStatus.WAITING_FOR_MENTOR)
        assert await ensure_digest_schedule(client, settings) is True
        handle = client.get_schedule_handle(SCHEDULE_ID)
        try:
            described = await handle.describe()
            [calendar] = described.schedule.spec.calendars
            assert isinstance(calendar, ScheduleCalendarSpec)
            assert [r.start for r in calendar.day_of_week] == [1]
            assert described.info.next_action_times, "the UI shows when it runs next"
            await handle.trigger()

            async def completed() -> int:
                n = 0
                async for _ in client.list_workflows(
                    f"WorkflowType = '{DigestWorkflow.__name__}' AND ExecutionStatus = 'Completed'"
                ):
                    n += 1
                return n

            await eventually(completed, lambda n: n >= 1, timeout=60)
            [mail] = await eventually(
                lambda: _async(to_office()), lambda m: len(m) == 1, timeout=30
            )
            body = str(mail.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
            assert f"{waiting.id} Roswitha Ehrenfeld" in body
            assert f"tandem status {waiting.id}" in body
            today = datetime.now(UTC).date().isoformat()
            assert f"seit {today}" in body
            assert "mentee " + bounced in body and "550 5.1.1" in body
            assert f"tandem retry {bounced}" in body
            assert mail["Reply-To"] is None, "the digest asks for no reply"
            assert "2 offene Punkte" in str(mail["Subject"])

            await handle.trigger()  # the same week again: nothing more
            await eventually(completed, lambda n: n >= 2, timeout=60)
            assert len(to_office()) == 1
        finally:
            await handle.delete()

    code, out, err = await tandem_cli(
        {**os.environ, "DATABASE_URL": db_dsn}, "digest", "--show", "--program", waiting.program
    )
    assert code == 0, err
    assert "Roswitha Ehrenfeld" in out and f"tandem status {waiting.id}" in out
    code, _, err = await tandem_cli(
        {**os.environ, "DATABASE_URL": db_dsn}, "digest", "--show", "--program", "no-such"
    )
    assert code == 1 and err.strip() == "error: unknown programme no-such"


async def _async(value: list) -> list:  # type: ignore[type-arg]
    return value
