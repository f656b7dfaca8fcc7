"""Enrol → match → introduce on the time-skipping server, with real Postgres and real SMTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from starter.mailsink import MailSink
from starter.tandem_cmds import enroll_ids, wake_waiting_tandems
from tandem.lifecycle.effects import Template, mail_key
from tandem.lifecycle.events import TandemInput
from tandem.lifecycle.rules import Rules
from tandem.mail import message_id, token_hash
from tandem.messages import MailRequest
from tandem.models import Role, TandemState, TandemStatus
from tandem.programs import load_program
from tandem.settings import Settings
from tests.support import (
    eventually,
    history_text,
    mails_to,
    mentee,
    mentor,
    put_people,
    query_state,
    record_histories,
    running_worker,
    wait_status,
)
from workflows import search_attributes as sa
from workflows.client import TandemClient
from workflows.tandem import TandemWorkflow, workflow_id


@pytest_asyncio.fixture
async def u(ts_env: WorkflowEnvironment) -> AsyncIterator[Callable[[str], str]]:
    """Per-test unique ids: the time-skipping server is shared, so workflow ids must not clash,
    and a test's tandems are terminated after it (a timer firing on a task queue nobody polls
    any more would hold the server's clock for every later test)."""
    suffix = uuid.uuid4().hex[:6]
    made: list[str] = []

    def make(name: str) -> str:
        made.append(f"{name}-{suffix}")
        return made[-1]

    yield make
    for mentee_id in made:
        with contextlib.suppress(RPCError):
            await ts_env.client.get_workflow_handle(workflow_id(mentee_id)).terminate("test over")


def _projected(db: asyncpg.Pool, mentee_id: str) -> Callable[[], Awaitable[str | None]]:
    async def status() -> str | None:
        async with db.acquire() as conn:
            found = await conn.fetchval("SELECT status FROM tandems WHERE mentee_id=$1", mentee_id)
        return None if found is None else str(found)

    return status


def _sent_rows(db: asyncpg.Pool) -> Callable[[], Awaitable[int]]:
    async def count() -> int:
        async with db.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL"))

    return count


async def test_enrolment_introduces_both_with_the_required_headers(
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    sink: MailSink,
    settings: Settings,
    u: Callable[[str], str],
) -> None:
    S1, M1 = u("S-1"), u("M-1")
    m, s = mentor(M1), mentee(S1, language="en")
    await put_people(db, [m], [s])
    client = ts_env.client
    async with running_worker(client, settings, db):
        [outcome] = await enroll_ids(client, db_dsn, [S1], settings)
        assert outcome.started
        state = await wait_status(client, S1, TandemStatus.INTRODUCED)
        # The state moves first; the transition's mails and event row follow in one activity.
        await eventually(_projected(db, S1), lambda status: status == "introduced")

    assert state.mentor_id == M1
    assert state.program == "stipendium-hausarzt" and state.phase == "study"
    assert "same region" in state.match_reasons
    [to_mentee] = await mails_to(sink, s.email)
    [to_mentor] = await mails_to(sink, m.email)
    # The mentee (English) gets the mentor's contact data; the mentor (German) the mentee's.
    assert to_mentee["Subject"] == "Your mentoring tandem: meet your mentor"
    assert m.email in to_mentee.get_content() and m.last_name in to_mentee.get_content()
    assert to_mentor["Subject"].startswith("Ihr Mentoring-Tandem")
    assert s.email in to_mentor.get_content()
    for mail, role in ((to_mentee, "mentee"), (to_mentor, "mentor")):
        key = mail_key(S1, 1, 2, Template(f"introduction_{role}"), Role(role))
        assert mail["Auto-Submitted"] == "auto-generated"
        local, _, domain = mail["Reply-To"].partition("@")
        assert domain == settings.reply_domain
        token = local.removeprefix("reply+")
        assert mail["Message-ID"] == message_id(key, settings.mail_domain, token)
        assert len(token) >= 26  # 128 bits in base32
        async with db.acquire() as conn:
            bound = await conn.fetchrow(
                "SELECT role, person_id, expires_at > now() AS valid FROM reply_tokens"
                " WHERE token_hash = $1",
                token_hash(token),
            )
        assert bound is not None and bound["role"] == role and bound["valid"]
    assert to_mentee["Reply-To"] != to_mentor["Reply-To"]

    desc = await client.get_workflow_handle(workflow_id(S1)).describe()
    attrs = desc.typed_search_attributes
    assert attrs.get(sa.TANDEM_STATUS) == "introduced"
    assert attrs.get(sa.TANDEM_PHASE) == "study"
    assert attrs.get(sa.TANDEM_PROGRAM) == "stipendium-hausarzt"
    assert attrs.get(sa.MENTOR_ID) == M1

    async def projection() -> asyncpg.Record | None:
        async with db.acquire() as conn:
            return await conn.fetchrow(
                "SELECT status, mentor_id FROM tandems WHERE mentee_id=$1", S1
            )

    row = await eventually(projection, lambda r: r is not None and r["status"] == "introduced")
    assert row is not None and row["mentor_id"] == M1
    async with db.acquire() as conn:
        kinds = await conn.fetch(
            "SELECT kind FROM tandem_events WHERE mentee_id=$1 ORDER BY seq", S1
        )
        seats = await conn.fetchval("SELECT count(*) FROM seats WHERE mentor_id=$1", M1)
    assert [k["kind"] for k in kinds] == ["enrolled", "introduced"]
    assert seats == 1


async def test_enrolment_looks_for_a_mentor_at_once_not_after_a_timer(
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    u: Callable[[str], str],
) -> None:
    """Enrolled, then matched in the same step: the enrolment's row is written, the mentor
    looked for, the pair introduced; no timer and no workflow task in between."""
    S1, M1 = u("S-1"), u("M-1")
    await put_people(db, [mentor(M1)], [mentee(S1)])
    client = ts_env.client
    async with running_worker(client, settings, db):
        await enroll_ids(client, db_dsn, [S1], settings)
        await wait_status(client, S1, TandemStatus.INTRODUCED)
        await eventually(_projected(db, S1), lambda status: status == "introduced")
        history = await client.get_workflow_handle(workflow_id(S1)).fetch_history()

    steps: list[str] = []
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            steps.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif event.HasField("timer_started_event_attributes"):
            steps.append("timer")
    # The enrolment's event row, the match, the introduction; then the timer of the first
    # meeting's window.
    assert steps == ["carry_out", "find_mentor", "carry_out", "timer"]
    async with db.acquire() as conn:
        kinds = await conn.fetch(
            "SELECT kind FROM tandem_events WHERE mentee_id=$1 ORDER BY seq", S1
        )
    assert [k["kind"] for k in kinds] == ["enrolled", "introduced"]


async def test_two_enrolments_race_for_the_last_seat(
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    sink: MailSink,
    settings: Settings,
    u: Callable[[str], str],
) -> None:
    S1, S2, M1 = u("S-1"), u("S-2"), u("M-1")
    await put_people(db, [mentor(M1, capacity=1)], [mentee(S1), mentee(S2)])
    client = ts_env.client
    async with running_worker(client, settings, db):
        await asyncio.gather(
            enroll_ids(client, db_dsn, [S1], settings),
            enroll_ids(client, db_dsn, [S2], settings),
        )

        async def statuses() -> list[TandemStatus]:
            return sorted([(await query_state(client, i)).status for i in (S1, S2)])

        final = await eventually(
            statuses,
            lambda v: v == sorted([TandemStatus.INTRODUCED, TandemStatus.WAITING_FOR_MENTOR]),
        )

        async def told() -> list[bool]:
            return [(await query_state(client, i)).coordinator_told_no_mentor for i in (S1, S2)]

        await eventually(told, any)  # the mail to the office has gone out
    assert final.count(TandemStatus.INTRODUCED) == 1
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM seats") == 1
    coordinator = [m for m in sink.messages() if "demo" not in m["To"] and "hausarzt" in m["To"]]
    assert len(coordinator) == 1, "the coordinator is told once"


async def test_waiting_tandem_is_matched_when_a_mentor_is_imported(
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    sink: MailSink,
    settings: Settings,
    u: Callable[[str], str],
) -> None:
    S1, M9 = u("S-1"), u("M-9")
    await put_people(db, [], [mentee(S1)])
    client = ts_env.client
    async with running_worker(client, settings, db):
        await enroll_ids(client, db_dsn, [S1], settings)
        waiting = await eventually(
            lambda: query_state(client, S1), lambda s: s.coordinator_told_no_mentor
        )
        assert waiting.status is TandemStatus.WAITING_FOR_MENTOR
        await put_people(db, [mentor(M9)])
        assert await wake_waiting_tandems(db_dsn, client) == 1
        state = await wait_status(client, S1, TandemStatus.INTRODUCED)
        coordinator_mails = [m for m in sink.messages() if m["To"].startswith("mentoring-hausarzt")]
        tandems = TandemClient(client, settings.task_queue)
        await tandems.end(S1, "test_over")
        handle = tandems.handle(S1)
        await handle.result()
        first_run = (await handle.describe()).run_id
        assert first_run is not None
        await record_histories(client, handle.id, first_run, "waiting-signal")
    assert state.mentor_id == M9
    assert len(coordinator_mails) == 1


async def test_waiting_tandem_retries_on_its_schedule_without_a_signal(
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    sink: MailSink,
    settings: Settings,
    u: Callable[[str], str],
) -> None:
    """The programme's retry period (a day in production) runs here as two real seconds."""
    S1, M9 = u("S-1"), u("M-9")
    await put_people(db, [], [mentee(S1)])
    rules = Rules.of(load_program(settings.programs_dir, "stipendium-hausarzt")).model_copy(
        update={"waiting_retry_every": timedelta(seconds=2)}
    )
    state = TandemState(mentee_id=S1, program=rules.program, phase="study", cadence_days=91)
    client = ts_env.client
    async with running_worker(client, settings, db):
        await client.start_workflow(
            TandemWorkflow.run,
            TandemInput(rules=rules, state=state),
            id=workflow_id(S1),
            task_queue=settings.task_queue,
        )
        await eventually(lambda: query_state(client, S1), lambda s: s.coordinator_told_no_mentor)
        await put_people(db, [mentor(M9)])  # no signal: only the scheduled retry finds it
        matched = await wait_status(client, S1, TandemStatus.INTRODUCED)
    assert matched.mentor_id == M9
    coordinator_mails = [m for m in sink.messages() if m["To"].startswith("mentoring-hausarzt")]
    assert len(coordinator_mails) == 1, "retrying does not mail the coordinator again"


async def test_enrolling_twice_says_already_enrolled(
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    sink: MailSink,
    settings: Settings,
    u: Callable[[str], str],
) -> None:
    S1, M1 = u("S-1"), u("M-1")
    the_mentor, the_mentee = mentor(M1), mentee(S1)
    await put_people(db, [the_mentor], [the_mentee])
    client = ts_env.client
    async with running_worker(client, settings, db):
        await enroll_ids(client, db_dsn, [S1], settings)
        await wait_status(client, S1, TandemStatus.INTRODUCED)
        await mails_to(sink, the_mentee.email)
        await mails_to(sink, the_mentor.email)
        [again] = await enroll_ids(client, db_dsn, [S1], settings)
    assert not again.started and again.status == "introduced"
    assert len(sink.messages()) == 2


async def test_unknown_mentee_starts_nothing(
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    u: Callable[[str], str],
) -> None:
    S1 = u("S-1")
    from starter.common import CommandError

    await put_people(db, [], [mentee(S1)])
    with pytest.raises(CommandError, match="unknown mentee id\\(s\\): NOPE"):
        await enroll_ids(ts_env.client, db_dsn, [S1, "NOPE"], settings)
    desc = ts_env.client.get_workflow_handle(workflow_id(S1)).describe()
    with pytest.raises(Exception, match="not found"):
        await desc


async def test_mail_activity_retried_after_smtp_accepted_sends_once(
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    sink: MailSink,
    settings: Settings,
    u: Callable[[str], str],
) -> None:
    S1, M1 = u("S-1"), u("M-1")
    await put_people(db, [mentor(M1)], [mentee(S1)])
    failures: list[str] = []

    async def fail_once(request: MailRequest) -> None:
        if request.idempotency_key not in failures:
            failures.append(request.idempotency_key)
            raise RuntimeError("worker lost after SMTP accepted")

    client = ts_env.client
    async with running_worker(client, settings, db, after_accept=fail_once):
        await enroll_ids(client, db_dsn, [S1], settings)
        await wait_status(client, S1, TandemStatus.INTRODUCED, timeout=60)
        await eventually(_sent_rows(db), lambda n: n == 2, timeout=60)
    assert len(failures) == 2, "each introduction failed once after sending"
    ids = [m["Message-ID"] for m in sink.messages()]
    assert len(ids) == 2 and len(set(ids)) == 2
    async with db.acquire() as conn:
        attempts = await conn.fetch("SELECT attempts FROM outbox ORDER BY idempotency_key")
    assert [r["attempts"] for r in attempts] == [1, 1]


async def test_no_name_or_address_in_history_or_logs(
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    sink: MailSink,
    settings: Settings,
    u: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    S1, M1 = u("S-1"), u("M-1")
    caplog.set_level(logging.DEBUG)
    m, s = mentor(M1), mentee(S1)
    await put_people(db, [m], [s])
    client = ts_env.client
    async with running_worker(client, settings, db):
        await enroll_ids(client, db_dsn, [S1], settings)
        await wait_status(client, S1, TandemStatus.INTRODUCED)
        await mails_to(sink, s.email)
        await mails_to(sink, m.email)  # the mails themselves do carry the contact data
        history = await client.get_workflow_handle(workflow_id(S1)).fetch_history()
    assert len(sink.messages()) == 2
    dumped = history_text(history.to_json_dict())
    out = capsys.readouterr()
    logs = caplog.text + out.out + out.err
    for secret in (m.first_name, m.last_name, m.email, s.first_name, s.last_name, s.email):
        assert secret not in dumped, f"{secret!r} leaked into workflow history"
        assert secret not in logs, f"{secret!r} leaked into logs"
    assert S1 in dumped  # ids are fine, and the check above could see them


async def test_workflow_keeps_running_until_the_tandem_ends(
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    sink: MailSink,
    settings: Settings,
    u: Callable[[str], str],
) -> None:
    S1, M1 = u("S-1"), u("M-1")
    await put_people(db, [mentor(M1)], [mentee(S1)])
    client = ts_env.client
    async with running_worker(client, settings, db):
        await enroll_ids(client, db_dsn, [S1], settings)
        await wait_status(client, S1, TandemStatus.INTRODUCED)
        desc = await client.get_workflow_handle(workflow_id(S1)).describe()
    assert desc.status is WorkflowExecutionStatus.RUNNING
