"""`tandem doctor` as an operator meets the problems it is for: a terminated tandem still holding
its mentor's seat, a projection row out of date, a reply stuck behind a stale lease, a mail
never sent and one the relay refused. Real parts: the Temporal dev server (a namespace per test,
so other tests' tandems are not seen), PostgreSQL, a worker and the SMTP sink; the command is
run through typer's CliRunner."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest_asyncio
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from starter.cli import app
from starter.doctor_cmd import Doctor, Run, render
from starter.mailsink import MailSink
from starter.tandem_cmds import start_tandem
from tandem.models import Mentee, Mentor, TandemStatus
from tandem.settings import Settings, get_settings
from tests.conftest import register_search_attributes
from tests.support import (
    eventually,
    mentee,
    mentor,
    put_people,
    running_worker,
    uid,
    wait_status,
)
from workflows.codec import data_converter
from workflows.ids import workflow_id


@pytest_asyncio.fixture
async def client(dev_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    """A namespace of the test's own on the dev server, with the search attributes."""
    name = f"doctor-{uuid.uuid4().hex[:8]}"
    await dev_env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    own = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=name,
        data_converter=data_converter(Settings()),
    )

    async def registered() -> bool:
        try:
            await register_search_attributes(own)
        except Exception:  # the namespace is not known everywhere yet
            return False
        return True

    await eventually(registered, bool)
    yield own


class DoctorCli:
    """``tandem doctor …`` through the CLI, configured for the test's parts."""

    def __init__(self, client: Client, db_dsn: str, settings: Settings) -> None:
        self.env = {
            "DATABASE_URL": db_dsn,
            "TANDEM_DATABASE_URL": db_dsn,
            "TANDEM_HOME": str(settings.home),
            "TANDEM_TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TANDEM_TEMPORAL_NAMESPACE": client.namespace,
            "TANDEM_TASK_QUEUE": settings.task_queue,
            "TANDEM_SMTP_PORT": str(settings.smtp_port),
            "TANDEM_REPLY_TOKEN_SECRET": settings.reply_token_secret.get_secret_value(),
        }
        self.outputs: list[str] = []

    async def __call__(self, *args: str) -> tuple[int, str]:
        def invoke() -> tuple[int, str]:
            get_settings.cache_clear()
            try:
                result = CliRunner().invoke(app, ["doctor", *args], env=self.env)
            finally:
                get_settings.cache_clear()
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise result.exception
            return result.exit_code, result.stdout

        # The command runs its own event loop: in a thread, while this loop serves the sink.
        code, out = await asyncio.to_thread(invoke)
        self.outputs.append(out)
        return code, out

    async def json(self, *args: str) -> tuple[int, dict[str, Any]]:
        code, out = await self(*args, "--json")
        return code, dict(json.loads(out))

    def assert_confidential(self, *people: Mentor | Mentee) -> None:
        """Every output so far: ids and counts only, never an address or a name."""
        for out in self.outputs:
            for person in people:
                assert person.email not in out
                assert person.last_name not in out


async def seats(db: asyncpg.Pool) -> dict[str, str]:
    rows = await db.fetch("SELECT mentee_id, mentor_id FROM seats")
    return {r["mentee_id"]: r["mentor_id"] for r in rows}


async def projection(db: asyncpg.Pool, mentee_id: str) -> tuple[str, str, str | None] | None:
    row = await db.fetchrow(
        "SELECT status, phase, mentor_id FROM tandems WHERE mentee_id = $1", mentee_id
    )
    return None if row is None else (row["status"], row["phase"], row["mentor_id"])


async def introduce(
    client: Client, db: asyncpg.Pool, settings: Settings, the_mentor: Mentor, the_mentee: Mentee
) -> None:
    """Enrol the mentee and wait until the tandem is introduced and its projection written."""
    await put_people(db, [the_mentor], [the_mentee])
    await start_tandem(client, the_mentee, settings)
    await wait_status(client, the_mentee.id, TandemStatus.INTRODUCED)
    await eventually(
        lambda: projection(db, the_mentee.id), lambda p: p is not None and p[0] == "introduced"
    )


async def test_a_healthy_tandem_is_left_alone_and_a_stale_projection_is_fixed(
    client: Client, db: asyncpg.Pool, db_dsn: str, settings: Settings, sink: MailSink
) -> None:
    the_mentor, the_mentee = mentor(uid("M")), mentee(uid("S"))
    doctor = DoctorCli(client, db_dsn, settings)
    async with running_worker(client, settings, db):
        await introduce(client, db, settings, the_mentor, the_mentee)
        code, out = await doctor()
        assert code == 0, out
        assert out.splitlines()[-1].startswith("doctor: 0 found")

        # Someone "fixed" the report table by hand: the workflow's attributes win.
        await db.execute(
            "UPDATE tandems SET status = 'active', phase = 'residency', mentor_id = NULL"
            " WHERE mentee_id = $1",
            the_mentee.id,
        )
        code, report = await doctor.json("--dry-run")
        assert code == 1
        [finding] = report["findings"]
        assert finding["check"] == "projection" and finding["subject"] == the_mentee.id
        assert finding["action"] == "would update"
        assert await projection(db, the_mentee.id) == ("active", "residency", None)

        code, out = await doctor()
        assert code == 0, out
        assert f"{the_mentee.id}: status active -> introduced" in out
        assert await projection(db, the_mentee.id) == ("introduced", "study", the_mentor.id)
        code, out = await doctor()
        assert code == 0 and "projection (tandems): ok" in out
    doctor.assert_confidential(the_mentor, the_mentee)


async def test_a_terminated_tandem_gives_its_seat_back(
    client: Client, db: asyncpg.Pool, db_dsn: str, settings: Settings, sink: MailSink
) -> None:
    the_mentor, the_mentee = mentor(uid("M")), mentee(uid("S"))  # the mentor has one seat
    doctor = DoctorCli(client, db_dsn, settings)
    async with running_worker(client, settings, db):
        await introduce(client, db, settings, the_mentor, the_mentee)
        handle = client.get_workflow_handle(workflow_id(the_mentee.id))
        await handle.terminate(reason="operator test")
        assert (await handle.describe()).status is WorkflowExecutionStatus.TERMINATED
        assert await seats(db) == {the_mentee.id: the_mentor.id}  # leaked

        code, out = await doctor("--dry-run")
        assert code == 1, out
        assert f"{the_mentee.id}: seat of mentor {the_mentor.id}: workflow terminated" in out
        assert "would free" in out and "nothing changed" in out
        assert await seats(db) == {the_mentee.id: the_mentor.id}
        assert (await projection(db, the_mentee.id) or ("",))[0] == "introduced"

        code, report = await doctor.json()
        assert code == 0, report
        done = {(f["check"], f["subject"], f["action"]) for f in report["findings"]}
        assert done == {
            ("seats", the_mentee.id, "freed"),
            ("projection", the_mentee.id, "updated"),
        }
        assert await seats(db) == {}
        assert await projection(db, the_mentee.id) == ("ended", "study", the_mentor.id)

        code, out = await doctor()
        assert code == 0 and "seats: ok" in out

        # The seat is really free: the next mentee gets this mentor.
        second = mentee(uid("S"))
        await introduce(client, db, settings, the_mentor, second)
        assert await seats(db) == {second.id: the_mentor.id}
    doctor.assert_confidential(the_mentor, the_mentee)


async def test_a_seat_booked_on_another_mentor_goes_back_to_the_tandems_mentor(
    client: Client, db: asyncpg.Pool, db_dsn: str, settings: Settings, sink: MailSink
) -> None:
    the_mentor, other, the_mentee = mentor(uid("M")), mentor(uid("M")), mentee(uid("S"))
    doctor = DoctorCli(client, db_dsn, settings)
    async with running_worker(client, settings, db):
        await introduce(client, db, settings, the_mentor, the_mentee)
        await put_people(db, [other])
        # A hand edit moved the seat to another mentor, an hour ago.
        await db.execute(
            "UPDATE seats SET mentor_id = $2, reserved_at = now() - interval '1 hour'"
            " WHERE mentee_id = $1",
            the_mentee.id,
            other.id,
        )
        code, report = await doctor.json("--dry-run")
        assert code == 1
        assert [f["action"] for f in report["findings"]] == ["would free", "would reserve"]
        assert await seats(db) == {the_mentee.id: other.id}

        code, out = await doctor()
        assert code == 0, out
        assert f"seat of mentor {other.id}: the running tandem's mentor is {the_mentor.id}" in out
        assert f"holds no seat of its mentor {the_mentor.id} -> reserved" in out
        assert await seats(db) == {the_mentee.id: the_mentor.id}
        code, out = await doctor()
        assert code == 0 and "seats: ok" in out
    doctor.assert_confidential(the_mentor, other, the_mentee)


async def test_stuck_replies_are_made_due_again_and_never_read(
    client: Client, db: asyncpg.Pool, db_dsn: str, settings: Settings
) -> None:
    raw = b"From: someone@example.org\r\nSubject: Weitermachen\r\n\r\nJa, gerne.\r\n"

    async def put(lease: str | None, next_attempt: str, attempts: int = 1) -> int:
        inbound_id = await db.fetchval(
            "INSERT INTO inbound_mail (transport, raw, attempts, leased_until, next_attempt_at)"
            f" VALUES ('smtp', $1, $2, {lease or 'NULL'}, {next_attempt}) RETURNING id",
            raw,
            attempts,
        )
        assert isinstance(inbound_id, int)
        return inbound_id

    crashed = await put("now() - interval '2 days'", "now() - interval '2 days'")
    far_off = await put(None, "now() + interval '30 days'", attempts=3)
    in_work = await put("now() + interval '4 minutes'", "now() - interval '1 minute'")
    waiting = await put(None, "now() + interval '1 minute'", attempts=2)
    before = {r["id"]: dict(r) for r in await db.fetch("SELECT * FROM inbound_mail")}

    doctor = DoctorCli(client, db_dsn, settings)
    code, out = await doctor("--dry-run")
    assert code == 1, out
    assert "1 mail(s): lease expired long ago -> would make due now" in out
    assert "1 mail(s): next attempt far ahead of the policy -> would make due now" in out
    assert {r["id"]: dict(r) for r in await db.fetch("SELECT * FROM inbound_mail")} == before

    code, report = await doctor.json()
    assert code == 0, report
    assert sorted((f["problem"], f["count"]) for f in report["findings"]) == [
        ("lease expired long ago", 1),
        ("next attempt far ahead of the policy", 1),
    ]
    rows = {
        r["id"]: r
        for r in await db.fetch(
            "SELECT id, raw, attempts, leased_until, next_attempt_at <= now() AS due"
            " FROM inbound_mail"
        )
    }
    assert set(rows) == {crashed, far_off, in_work, waiting}  # nothing deleted
    for i in (crashed, far_off):
        assert rows[i]["leased_until"] is None and rows[i]["due"]
        assert bytes(rows[i]["raw"]) == raw and rows[i]["attempts"] == before[i]["attempts"]
    assert rows[in_work]["leased_until"] == before[in_work]["leased_until"]  # left to its owner
    assert not rows[waiting]["due"]
    code, out = await doctor()
    assert code == 0 and "reply inbox: ok" in out
    for text in doctor.outputs:
        assert "someone@example.org" not in text and "Weitermachen" not in text


async def test_unsent_mail_is_sent_once_and_a_refused_one_is_reported(
    client: Client, db: asyncpg.Pool, db_dsn: str, settings: Settings, sink: MailSink
) -> None:
    the_mentor, the_mentee = mentor(uid("M")), mentee(uid("S"))
    doctor = DoctorCli(client, db_dsn, settings)
    async with running_worker(client, settings, db):
        await introduce(client, db, settings, the_mentor, the_mentee)
        [intro] = await db.fetch(
            "SELECT idempotency_key FROM outbox WHERE mentee_id = $1"
            " AND template = 'introduction_mentee'",
            the_mentee.id,
        )

        async def unsent(mentee_id: str, seq: int, age: timedelta, **extra: str) -> tuple[str, str]:
            """A mail written to the outbox whose send never happened (the process died
            between the two), as a copy of the introduction under another key."""
            key = f"{mentee_id}/e1/{seq}/introduction_mentee/mentee"
            mid = f"<doctor-{uuid.uuid4().hex}@{settings.mail_domain}>"
            await db.execute(
                """
                INSERT INTO outbox (idempotency_key, message_id, mentee_id, recipient_role,
                                    recipient_id, template, to_address, reply_to, subject, body,
                                    created_at, failed_at, failure)
                SELECT $1, $2, $3, recipient_role, recipient_id, template, to_address, reply_to,
                       subject, body, now() - $4::interval,
                       CASE WHEN $5::text IS NULL THEN NULL ELSE now() END, $5
                  FROM outbox WHERE idempotency_key = $6
                """,
                key,
                mid,
                mentee_id,
                age,
                extra.get("failure"),
                intro["idempotency_key"],
            )
            return key, mid

        lost_key, lost_mid = await unsent(the_mentee.id, 900, timedelta(hours=1))
        refused_key, refused_mid = await unsent(
            the_mentee.id, 901, timedelta(hours=1), failure="550 5.1.1"
        )
        young_key, young_mid = await unsent(the_mentee.id, 902, timedelta(minutes=1))
        gone_key, gone_mid = await unsent(uid("gone"), 903, timedelta(hours=1))

        def received(mid: str) -> int:
            return sum(str(m["Message-ID"]) == mid for m in sink.messages())

        code, report = await doctor.json("--dry-run")
        assert code == 1
        actions = {f["subject"]: f["action"] for f in report["findings"]}
        assert actions == {lost_key: "would send", refused_key: "left", gone_key: "left"}
        assert received(lost_mid) == 0

        code, report = await doctor.json()
        assert code == 1  # the refused mail needs a person
        found = {f["subject"]: f for f in report["findings"]}
        assert set(found) == {lost_key, refused_key, gone_key}
        assert found[lost_key]["action"] == "sent"
        assert "550 5.1.1" in found[refused_key]["problem"]
        assert found[refused_key]["needs_person"] and found[refused_key]["hint"]
        assert not found[gone_key]["needs_person"]
        assert received(lost_mid) == 1

        code, report = await doctor.json()
        assert code == 1
        assert {f["subject"] for f in report["findings"]} == {refused_key, gone_key}
        assert received(lost_mid) == 1  # a second run sends nothing more
        for mid in (refused_mid, young_mid, gone_mid):
            assert received(mid) == 0
        sent = await db.fetch(
            "SELECT idempotency_key FROM outbox WHERE sent_at IS NOT NULL"
            " AND idempotency_key = ANY($1::text[])",
            [lost_key, refused_key, young_key, gone_key],
        )
        assert [r["idempotency_key"] for r in sent] == [lost_key]
        code, out = await doctor()
        assert f"{refused_key}: refused by the relay for good (550 5.1.1)" in out
    doctor.assert_confidential(the_mentor, the_mentee)


async def test_tandems_that_need_a_person_are_named_with_the_fix(
    client: Client, db: asyncpg.Pool
) -> None:
    """needs_attention and failed workflows are hard to provoke on purpose: the workflows'
    descriptions are given here (the doctor's one seam), everything else is real."""
    stuck, failed = uid("S"), uid("S")
    await db.execute(
        "INSERT INTO tandems (mentee_id, program, phase, status, mentor_id, updated_at)"
        " VALUES ($1, 'demo', 'study', 'active', NULL, now())",
        stuck,
    )
    doctor = Doctor(client, db, resender=None, dry_run=False, older_than=timedelta(minutes=15))
    doctor._runs = {
        stuck: Run("r1", WorkflowExecutionStatus.RUNNING, "needs_attention", "study", "demo", None),
        failed: Run("r2", WorkflowExecutionStatus.FAILED, "active", "study", "demo", None),
    }
    report = await doctor.run()
    attention = {f.subject: f for f in report.of("attention")}
    assert set(attention) == {stuck, failed}
    assert attention[stuck].hint is not None and f"tandem retry {stuck}" in attention[stuck].hint
    assert "failed" in attention[failed].problem
    assert not report.ok
    # The projection keeps the lifecycle status: needs_attention is no status to write there.
    assert await projection(db, stuck) == ("active", "study", None)
    lines: list[str] = []
    render(report, lines.append)
    assert f"  {stuck}: needs attention (an activity failed for good) -> left" in lines
    assert lines[-1].endswith("need a person")
