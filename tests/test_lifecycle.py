"""A whole medical tandem, twelve-plus years, on the time-skipping server with the real
activities, Postgres and SMTP. The people are scripted: they answer inside the mail activity,
so their answer is in before the clock moves on (as if they replied at once)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import asyncpg
from temporalio.testing import WorkflowEnvironment

from starter.mailsink import MailSink
from starter.tandem_cmds import start_tandem
from tandem.answers import Intent
from tandem.messages import AdvanceRequest, MailRequest, PauseRequest
from tandem.models import Role, TandemStatus
from tandem.settings import Settings
from tests.support import (
    Tandem,
    mails_in_order,
    mentee,
    mentor,
    put_people,
    record_histories,
    running_worker,
    uid,
)
from workflows.tandem import TandemWorkflow


async def test_a_medical_tandem_from_study_to_completion(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, db_dsn: str, sink: MailSink, settings: Settings
) -> None:
    s1, m1 = uid("S"), uid("M")
    await put_people(db, [mentor(m1)], [mentee(s1)])
    client = ts_env.client
    t = Tandem(ts_env, s1)  # plays the people: updates from inside the mail activity
    seen: Counter[str] = Counter()
    handled: set[str] = set()

    async def people(mail: MailRequest) -> None:
        """What the mentee, the mentor and the office do when a mail goes out."""
        if mail.idempotency_key in handled:
            return
        handled.add(mail.idempotency_key)
        seen[f"{mail.template}/{mail.to.value}/{mail.phase}"] += 1
        n = seen[f"nudge/mentee/{mail.phase}"]

        async def reply(role: Role, intent: Intent) -> None:
            assert mail.request_id is not None
            await t.answer(role, intent, mail.request_id, answer_id=f"{mail.idempotency_key}/a")

        if mail.template == "decision_request":
            await reply(mail.to, Intent.CONTINUE)
        elif mail.template == "nudge" and mail.to is Role.MENTEE:
            await reply(Role.MENTEE, Intent.MET)
            if mail.phase == "study" and n == 10:  # parental leave: four months
                until = await ts_env.get_current_time() + timedelta(days=120)
                await t.update(TandemWorkflow.pause, PauseRequest(until=until))
            if mail.phase == "residency" and n == 18:  # the office moves the phase on
                await t.update(TandemWorkflow.advance, AdvanceRequest(phase="employment"))
        elif mail.template == "phase_check":
            await reply(Role.MENTEE, Intent.PHASE_DONE)

    started = time.monotonic()
    async with running_worker(client, settings, db, after_accept=people):
        # The handle start_workflow returns lets the test server skip time while we wait.
        started_handle = await start_tandem(client, mentee(s1), settings)
        final = await started_handle.result()
        await t.settle()
        assert t.refusals == []
        assert started_handle.first_execution_run_id is not None
        await record_histories(
            client, started_handle.id, started_handle.first_execution_run_id, "full-medical"
        )
    wall = time.monotonic() - started
    print(f"\nfull medical tandem: {wall:.1f}s wall time")

    assert final.status is TandemStatus.COMPLETED
    assert final.phase == "employment" and final.missed_periods == 0 and not final.at_risk
    study, residency, employment = 22, 18, 4  # nudges per phase (see the script above)
    expected_mentee = (
        ["introduction_mentee", "decision_request", "tandem_confirmed"]
        + ["nudge"] * 10
        + ["paused", "resumed"]
        + ["nudge"] * (study - 10)
        + ["phase_check", "phase_changed"]
        + ["nudge"] * residency
        + ["phase_changed"]
        + ["nudge"] * employment
        + ["tandem_completed"]
    )
    expected_mentor = [t for t in expected_mentee if t != "phase_check"]
    expected_mentor[0] = "introduction_mentor"
    mails = await mails_in_order(db, sink)
    assert [t for to, t in mails if to == mentee(s1).email] == expected_mentee
    assert [t for to, t in mails if to == mentor(m1).email] == expected_mentor
    assert not [t for to, t in mails if to.startswith("mentoring-hausarzt")], "no escalation"
    async with db.acquire() as conn:
        seats = await conn.fetchval("SELECT count(*) FROM seats WHERE mentor_id = $1", m1)
        status = await conn.fetchval("SELECT status FROM tandems WHERE mentee_id = $1", s1)
    assert seats == 0 and status == "completed"
