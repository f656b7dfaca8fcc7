"""The lifecycle's observed defects (issue 7), each as the scenario that showed it, on the
time-skipping server with the real worker, Postgres and SMTP.

Races are reproduced deterministically: the people's script runs inside the mail activity,
so what it sends (an ``end``, a second reply) arrives while that transition's mails are still
going out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from starter.mailsink import MailSink
from starter.tandem_cmds import enroll_ids
from tandem.answers import AnswerDetails, Intent, RequestKind, request_id
from tandem.messages import AdvanceRequest, CadenceRequest, EndRequest, MailRequest
from tandem.models import Role, TandemState, TandemStatus
from tandem.settings import Settings
from tests.support import (
    Tandem,
    events,
    mails_in_order,
    mentee,
    mentor,
    put_people,
    record_histories,
    run_tandem,
    running_worker,
    uid,
    wait_status,
)
from workflows.client import TandemClient
from workflows.ids import workflow_id
from workflows.tandem import TandemWorkflow

MENTEE, MENTOR = Role.MENTEE, Role.MENTOR
DAY = timedelta(days=1)


def mentee_address(mentee_id: str) -> str:
    return f"{mentee_id.lower()}@studium.example.org"


async def end(t: Tandem) -> None:
    await t.update(TandemWorkflow.end, EndRequest(reason="test_over"))


@contextlib.asynccontextmanager
async def waiting_tandem(
    env: WorkflowEnvironment, db: asyncpg.Pool, settings: Settings, mentee_id: str
) -> AsyncIterator[tuple[TandemClient, WorkflowHandle[Any, TandemState]]]:
    """A tandem of a mentee for whom no mentor is on file, with the worker running."""
    await put_people(db, [], [mentee(mentee_id)])
    async with running_worker(env.client, settings, db):
        tandems = TandemClient(env.client, settings.task_queue)
        handle = await tandems.start(mentee(mentee_id), _program(settings))
        await wait_status(env.client, mentee_id, TandemStatus.WAITING_FOR_MENTOR)
        yield tandems, handle


async def seats(db: asyncpg.Pool) -> int:
    async with db.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM seats"))


# 1 -------------------------------------------------------------------------------------------


async def test_end_while_the_decline_mails_go_out_stays_ended(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s, near, far = uid("S"), uid("M-near"), uid("M-far")
    introduced_to: list[str | None] = []
    ended_meanwhile: list[bool] = []

    async def script(mail: MailRequest, t: Tandem) -> None:
        if mail.template == "introduction_mentor":
            introduced_to.append(mail.mentor_id)
            if len(introduced_to) > 1:  # today's bug: a new mentor for an ended tandem
                await end(t)
        elif mail.template == "decision_request" and mail.to is MENTOR:
            await t.answer(MENTOR, Intent.DECLINE, mail.request_id)
        elif mail.template == "decision_declined" and mail.to is MENTEE:
            # The office ends it while the decline is still being carried out: the end must
            # wait for the decline's transition (today it ran at once, and was then undone).
            ending = await t.update(TandemWorkflow.end, EndRequest(reason="test_over"))
            assert ending is not None
            done, _ = await asyncio.wait({ending}, timeout=3)
            ended_meanwhile.append(bool(done))

    final, _ = await run_tandem(
        ts_env,
        db,
        settings,
        script,
        mentors=[mentor(near), mentor(far, region="Südkreis")],
        mentee_id=s,
    )
    assert final.status is TandemStatus.ENDED
    assert ended_meanwhile == [False], "one transition at a time"
    assert introduced_to == [near]
    assert (await events(db, s))[-1] == "ended_by_office"
    assert await seats(db) == 0


async def test_end_while_the_introduction_goes_out_leaves_no_running_tandem_without_a_seat(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")

    async def script(mail: MailRequest, t: Tandem) -> None:
        if mail.template == "introduction_mentee" or mail.template == "decision_request":
            await end(t)

    final, _ = await run_tandem(ts_env, db, settings, script, mentors=[mentor(m)], mentee_id=s)
    assert final.status is TandemStatus.ENDED
    templates = [t for _, t in await mails_in_order(db, sink)]
    assert "decision_request" not in templates
    assert templates.count("tandem_ended") == 2  # both had been introduced: both are told
    assert await seats(db) == 0


# 2 -------------------------------------------------------------------------------------------


async def test_a_replaced_mentor_cannot_act_on_the_new_pair(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s, near, far = uid("S"), uid("M-near"), uid("M-far")
    old_mentor_mail: list[MailRequest] = []
    live_decision_tokens: list[int] = []

    async def script(mail: MailRequest, t: Tandem) -> None:
        if mail.template == "decision_request":
            declines = mail.to is MENTOR and mail.mentor_id == near
            intent = Intent.DECLINE if declines else Intent.CONTINUE
            person = s if mail.to is MENTEE else mail.mentor_id
            await t.answer(mail.to, intent, mail.request_id, person_id=person)
        elif mail.template == "decision_declined" and mail.to is MENTOR:
            old_mentor_mail.append(mail)
        elif mail.template == "tandem_confirmed" and mail.to is MENTOR:
            async with db.acquire() as conn:  # the decision is closed: so are its tokens
                live_decision_tokens.append(
                    await conn.fetchval(
                        "SELECT count(*) FROM reply_tokens WHERE mentee_id = $1"
                        " AND request_id LIKE 'decision:%' AND revoked_at IS NULL",
                        s,
                    )
                )
            # The replaced mentor answers the "will not continue" mail, and an old request.
            info = request_id(RequestKind.INFO, old_mentor_mail[0].idempotency_key)
            for intent in (Intent.STOP, Intent.HELP, Intent.MET):
                await t.answer(MENTOR, intent, info, person_id=near)
            await t.answer(MENTOR, Intent.CONTINUE, "decision:0", person_id=near)
        elif mail.template == "nudge" and mail.to is MENTEE:
            await end(t)

    final, tandem = await run_tandem(
        ts_env,
        db,
        settings,
        script,
        mentors=[mentor(near), mentor(far, region="Südkreis")],
        mentee_id=s,
    )
    assert final.status is TandemStatus.ENDED and final.mentor_id == far
    kinds = await events(db, s)
    assert kinds[-1] == "ended_by_office"
    assert "help_mentor" not in kinds and "contact" not in kinds
    assert tandem.refusals == ["the answer is not from the tandem's current mentor"] * 4
    async with db.acquire() as conn:
        live = await conn.fetchval(
            "SELECT count(*) FROM reply_tokens WHERE person_id = $1 AND revoked_at IS NULL", near
        )
    assert live == 0, "the replaced mentor's reply tokens are revoked"
    assert live_decision_tokens == [0]


# 3 -------------------------------------------------------------------------------------------


async def test_advance_on_a_tandem_without_a_mentor_returns_and_mails_only_the_mentee(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s = uid("S")
    async with waiting_tandem(ts_env, db, settings, s) as (tandems, handle):
        result = await asyncio.wait_for(tandems.advance(s, "residency"), timeout=30)
        assert result.status is TandemStatus.WAITING_FOR_MENTOR
        moved = await tandems.state(s)
        await tandems.end(s, "test_over")
        final = await asyncio.wait_for(handle.result(), timeout=30)
    assert moved.phase == "residency" and final.phase == "residency"
    assert final.status is TandemStatus.ENDED
    mails = await mails_in_order(db, sink)
    assert [to for to, t in mails if t == "phase_changed"] == [mentee_address(s)]


# 4 -------------------------------------------------------------------------------------------


async def test_a_reply_to_the_decision_reminder_is_taken(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")

    async def script(mail: MailRequest, t: Tandem) -> None:
        if mail.template == "decision_request" and mail.to is MENTOR:
            await t.answer(MENTOR, Intent.CONTINUE, mail.request_id, person_id=m)
        elif mail.template == "decision_reminder":
            # What the gateway would name: the request the reminder's reply token is bound to.
            bound = mail.request_id or request_id(RequestKind.INFO, mail.idempotency_key)
            await t.answer(MENTEE, Intent.CONTINUE, bound, person_id=s)
        elif (
            mail.template == "tandem_confirmed" and mail.to is MENTEE
        ) or mail.template == "decision_escalation_coordinator":
            await end(t)

    _, tandem = await run_tandem(ts_env, db, settings, script, mentors=[mentor(m)], mentee_id=s)
    assert tandem.refusals == []
    assert "activated" in await events(db, s)


# 5 -------------------------------------------------------------------------------------------


async def test_a_phase_check_answered_later_is_asked_again_and_then_confirmed(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")
    checks: list[datetime] = []
    nudges_after = 0

    async def script(mail: MailRequest, t: Tandem) -> None:
        nonlocal nudges_after
        if mail.template == "decision_request":
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "phase_check":
            checks.append(await t.now())
            if len(checks) == 1:
                await t.answer(MENTEE, Intent.SNOOZE, mail.request_id, snooze_weeks=2)
            else:
                await t.answer(MENTEE, Intent.PHASE_DONE, mail.request_id)
        elif mail.template == "nudge" and mail.to is MENTEE and checks:
            nudges_after += 1
            if nudges_after == 3 or mail.phase == "residency":
                await end(t)

    final, tandem = await run_tandem(
        ts_env,
        db,
        settings,
        script,
        mentors=[mentor(m)],
        mentee_id=s,
        expected_phase_end=date.today() + timedelta(days=200),
        record_as="phase-check-later",
    )
    assert len(checks) == 2 and abs((checks[1] - checks[0]) - 14 * DAY) < DAY
    assert final.phase == "residency" and tandem.refusals == []


async def test_an_unanswered_phase_check_is_followed_up_and_the_office_told_once(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")
    after_check: list[str] = []

    async def script(mail: MailRequest, t: Tandem) -> None:
        if mail.template == "decision_request":
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.to is MENTEE and (after_check or mail.template == "phase_check"):
            after_check.append(mail.template)
            if after_check.count("nudge") == 3:
                await end(t)

    final, _ = await run_tandem(
        ts_env,
        db,
        settings,
        script,
        mentors=[mentor(m)],
        mentee_id=s,
        expected_phase_end=date.today() + timedelta(days=200),
    )
    assert after_check[:3] == ["phase_check", "phase_check", "nudge"]  # asked, then reminded
    assert final.phase == "study"
    templates = [t for _, t in await mails_in_order(db, sink)]
    assert templates.count("phase_check_unanswered_coordinator") == 1


# 6 -------------------------------------------------------------------------------------------


async def test_a_phase_change_keeps_the_pairs_own_cadence(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")
    nudges: list[tuple[str, datetime]] = []

    async def script(mail: MailRequest, t: Tandem) -> None:
        if mail.template == "decision_request":
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "tandem_confirmed" and mail.to is MENTEE:
            await t.update(TandemWorkflow.cadence, CadenceRequest(days=30))
        elif mail.template == "nudge" and mail.to is MENTEE:
            nudges.append((mail.phase, await t.now()))
            if len(nudges) == 1:
                await t.update(TandemWorkflow.advance, AdvanceRequest(phase="residency"))
            elif len(nudges) == 2:
                await t.answer(MENTEE, Intent.PHASE_DONE, None)  # confirmed by phone
            elif len(nudges) == 3:
                await end(t)

    final, _ = await run_tandem(ts_env, db, settings, script, mentors=[mentor(m)], mentee_id=s)
    assert [phase for phase, _ in nudges] == ["study", "residency", "employment"]
    assert abs((nudges[1][1] - nudges[0][1]) - 30 * DAY) < DAY
    assert abs((nudges[2][1] - nudges[1][1]) - 30 * DAY) < DAY
    assert final.cadence_days == 30


# 7 -------------------------------------------------------------------------------------------


async def test_a_snooze_by_one_side_does_not_move_the_others_check_in(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")
    nudged: list[tuple[Role, datetime]] = []

    async def script(mail: MailRequest, t: Tandem) -> None:
        if mail.template == "decision_request":
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "nudge":
            nudged.append((mail.to, await t.now()))
            if len(nudged) == 1 and mail.to is MENTEE:
                await t.answer(MENTEE, Intent.SNOOZE, mail.request_id, snooze_weeks=3)
            if [r for r, _ in nudged].count(MENTOR) == 2:
                await end(t)

    await run_tandem(ts_env, db, settings, script, mentors=[mentor(m)], mentee_id=s)
    to_mentee = [at for role, at in nudged if role is MENTEE]
    to_mentor = [at for role, at in nudged if role is MENTOR]
    assert abs((to_mentee[1] - to_mentee[0]) - 21 * DAY) < DAY  # the snoozer: in 3 weeks
    assert abs((to_mentor[1] - to_mentor[0]) - 91 * DAY) < DAY  # the other: as agreed


# 8 -------------------------------------------------------------------------------------------


async def test_ending_a_tandem_that_waits_for_a_mentor_tells_the_mentee(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s = uid("S")
    async with waiting_tandem(ts_env, db, settings, s) as (tandems, handle):
        await tandems.end(s, "moved_away")
        final = await asyncio.wait_for(handle.result(), timeout=30)
    assert final.status is TandemStatus.ENDED
    mails = await mails_in_order(db, sink)
    assert (mentee_address(s), "tandem_ended") in mails


# 9 -------------------------------------------------------------------------------------------


async def test_a_returning_mentee_gets_a_new_tandem(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, db_dsn: str, sink: MailSink, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")
    await put_people(db, [mentor(m, capacity=1)], [mentee(s)])
    client = ts_env.client
    async with running_worker(client, settings, db):
        tandems = TandemClient(client, settings.task_queue)
        [first] = await enroll_ids(client, db_dsn, [s], settings)
        await wait_status(client, s, TandemStatus.INTRODUCED)
        await tandems.end(s, "graduated")
        await asyncio.wait_for(tandems.handle(s).result(), timeout=30)
        [again] = await enroll_ids(client, db_dsn, [s], settings)
        second = await wait_status(client, s, TandemStatus.INTRODUCED)
        await tandems.end(s, "test_over")
        await asyncio.wait_for(tandems.handle(s).result(), timeout=30)
        second_run = (await tandems.handle(s).describe()).run_id
        assert second_run is not None
        await record_histories(client, workflow_id(s), second_run, "re-enrolment")
    assert first.started and again.started and again.enrolment == 2
    assert second.enrolment == 2 and second.mentor_id == m
    mails = await mails_in_order(db, sink)
    assert [t for to, t in mails if to == mentee_address(s)].count("introduction_mentee") == 2
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT enrolment, kind FROM tandem_events WHERE mentee_id = $1 AND kind = $2",
            s,
            "introduced",
        )
    assert sorted(r["enrolment"] for r in rows) == [1, 2]


# 10 ------------------------------------------------------------------------------------------


async def test_a_mentee_waiting_for_years_continues_as_new(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s = uid("S")
    await put_people(db, [], [mentee(s)])
    client = ts_env.client
    async with running_worker(client, settings, db):
        tandems = TandemClient(client, settings.task_queue)
        handle = await tandems.start(mentee(s), _program(settings))
        first_run = handle.first_execution_run_id
        await wait_status(client, s, TandemStatus.WAITING_FOR_MENTOR)
        await ts_env.sleep(timedelta(days=400))  # a daily retry for 400 days
        state = await tandems.state(s)
        desc = await tandems.handle(s).describe()
        first = await client.get_workflow_handle(handle.id, run_id=first_run).fetch_history()
        await tandems.end(s, "test_over")
        await asyncio.wait_for(handle.result(), timeout=30)
        assert first_run is not None
        await record_histories(client, handle.id, first_run, "waiting-continued")
    assert state.status is TandemStatus.WAITING_FOR_MENTOR
    assert desc.run_id != first_run, "the waiting tandem continued as new"
    assert len(first.events) < 2_200
    templates = [t for _, t in await mails_in_order(db, sink)]
    assert templates.count("no_mentor_coordinator") == 1, "told once, not once per run"


# 11 ------------------------------------------------------------------------------------------


async def test_the_same_office_answer_run_twice_is_taken_once(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")
    await put_people(db, [mentor(m)], [mentee(s)])
    client = ts_env.client
    tandems = TandemClient(client, settings.task_queue)
    async with running_worker(client, settings, db):
        handle = await tandems.start(mentee(s), _program(settings))
        await wait_status(client, s, TandemStatus.INTRODUCED)
        for role in (MENTEE, MENTOR):  # both said yes on the phone
            await tandems.office_answer(s, role, Intent.CONTINUE, AnswerDetails(), date.today())
        await wait_status(client, s, TandemStatus.ACTIVE)
        today = date.today()
        results = [
            (await tandems.office_answer(s, MENTEE, Intent.PHASE_DONE, AnswerDetails(), today))[1]
            for _ in range(2)
        ]
        state = await tandems.state(s)
        await tandems.end(s, "test_over")
        await asyncio.wait_for(handle.result(), timeout=30)
    assert state.phase == "residency", "phase_done twice moves one phase, not two"
    assert results[0].message == "phase is now residency"
    assert results[1].duplicate or results[1] == results[0]


# 12 ------------------------------------------------------------------------------------------


async def test_shadowing_asked_eight_times_mails_the_mentor_once(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")
    nudges = 0

    async def script(mail: MailRequest, t: Tandem) -> None:
        nonlocal nudges
        if mail.template == "decision_request":
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "nudge" and mail.to is MENTEE:
            nudges += 1
            if nudges == 1:
                for _ in range(8):  # eight reply mails saying "Hospitation"
                    await t.answer(MENTEE, Intent.SHADOWING, mail.request_id)
            else:
                await end(t)

    await run_tandem(ts_env, db, settings, script, mentors=[mentor(m)], mentee_id=s)
    mails = await mails_in_order(db, sink)
    assert [t for _, t in mails].count("shadowing_request") == 1


def _program(settings: Settings):  # type: ignore[no-untyped-def]
    from tandem.programs import load_program

    return load_program(settings.programs_dir, "stipendium-hausarzt")
