"""``tandem forget PERSON_ID`` (GDPR Art. 17), as an office runs it for a person who asked:
real tandems on the dev server with mails through the SMTP sink and a reply through the
gateway, the command as a process. Afterwards a scan of every table and of every history on
the task queue finds neither the person's id, nor their address, nor their name; the other
side was told neutrally; the counts stay."""

from __future__ import annotations

import json
import os
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import asyncpg
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.erasure import scan
from activities.smtp import SmtpSender
from replies.answerer import TemporalAnswerer
from replies.inbox import RetryPolicy
from replies.service import ReplyGateway
from starter.mail_cmd import compose_reply
from starter.mailsink import MailSink
from starter.tandem_cmds import enroll_ids
from tandem.models import Mentee, Mentor, TandemStatus
from tandem.settings import Settings
from tests.reply_support import settle
from tests.support import (
    eventually,
    mails_to,
    mentee,
    mentor,
    put_people,
    query_state,
    running_worker,
    tandem_cli,
    uid,
    wait_status,
)


def _cli_env(env: WorkflowEnvironment, settings: Settings, db_dsn: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "TANDEM_HOME": str(settings.home),
        "TANDEM_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TANDEM_TASK_QUEUE": settings.task_queue,
    }


def _needles(person: Mentee | Mentor) -> list[str]:
    return [person.id, str(person.email), person.first_name, person.last_name]


async def _histories_mentioning(client: Client, task_queue: str, needles: list[str]) -> list[str]:
    """Workflow ids of every run on the task queue whose history (payloads decoded) holds
    one of the needles."""
    found = []
    codec = client.data_converter.payload_codec
    async for run in client.list_workflows(f"TaskQueue = '{task_queue}'"):
        try:
            history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                continue  # deleted; visibility has not caught up yet
            raise
        raw = json.loads(history.to_json())
        texts = [json.dumps(raw)]
        payloads: list[Payload] = []

        def walk(node: object, payloads: list[Payload] = payloads) -> None:
            if isinstance(node, dict):
                if "data" in node and "metadata" in node:
                    payloads.append(json_format.ParseDict(node, Payload()))
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(raw)
        if codec is not None:
            payloads = list(await codec.decode(payloads))
        texts += [p.data.decode("utf-8", "replace") for p in payloads]
        if any(n.lower() in t.lower() for t in texts for n in needles):
            found.append(run.id)
    return found


async def _counts(db: asyncpg.Pool) -> dict[str, int]:
    return {
        table: await db.fetchval(f"SELECT count(*) FROM {table}")
        for table in ("tandem_events", "tandems", "outbox", "reply_verdicts")
    }


async def _help_reply(gw_port: int, introduction: EmailMessage, db: asyncpg.Pool) -> None:
    reply = compose_reply(introduction, "Hilfe, bitte rufen Sie mich an.")
    await aiosmtplib.send(reply, hostname="127.0.0.1", port=gw_port)
    [row] = await settle(db, 1, timeout=60)
    assert (row["verdict"], row["intent"]) == ("accepted", "help")


async def test_a_forgotten_mentee_is_found_nowhere_and_the_mentor_is_told_neutrally(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
) -> None:
    the_mentee = mentee(uid("S")).model_copy(
        update={
            "first_name": "Walburga",
            "last_name": "Quenstedt",
            "email": "w.quenstedt@studium.example.org",
        }
    )
    the_mentor = mentor(uid("M")).model_copy(
        update={"last_name": "Vorderwülbecke", "email": "vorderwuelbecke@klinik.example.org"}
    )
    await put_people(db, [the_mentor], [the_mentee])
    client = dev_env.client
    env = _cli_env(dev_env, settings, db_dsn)
    policy = RetryPolicy(first_delay=0.1, max_delay=1.0, poll=1.0)
    async with (
        running_worker(client, settings, db),
        ReplyGateway(
            settings,
            db,
            TemporalAnswerer(client, timeout=20),
            SmtpSender(settings),
            policy=policy,
            port=0,
        ) as gw,
    ):
        await enroll_ids(client, db_dsn, [the_mentee.id], settings)
        await wait_status(client, the_mentee.id, TandemStatus.INTRODUCED)
        [introduction] = await mails_to(sink, the_mentee.email)
        await mails_to(sink, the_mentor.email)
        await _help_reply(gw.port, introduction, db)
        before = await _counts(db)

        code, out, err = await tandem_cli(env, "forget", the_mentee.id, "--dry-run", "--json")
        assert code == 0, err
        plan = json.loads(out)
        assert plan["dry_run"] and plan["ended"] == [the_mentee.id] and plan["left"] == []
        assert plan["rows"]["mentees"] == 1 and plan["rows"]["outbox"] >= 3
        assert await db.fetchval("SELECT count(*) FROM mentees WHERE id = $1", the_mentee.id)
        assert (await query_state(client, the_mentee.id)).status is TandemStatus.INTRODUCED

        to_mentee_before = len([m for m in sink.messages() if m["To"] == the_mentee.email])
        to_mentor_before = len([m for m in sink.messages() if m["To"] == the_mentor.email])

        code, out, err = await tandem_cli(env, "forget", the_mentee.id, "--yes", "--json")
        assert code == 0, (out, err)
        report = json.loads(out)
        assert report["still_found"] == {} and report["executions_deleted"] >= 1
        assert report["deletions_pending"] == 0

        # The mentor is told the tandem ended, by the office; the mentee is not written to.
        mails = await mails_to(sink, the_mentor.email, count=to_mentor_before + 1)
        ended = mails[-1]
        assert "beendet" in str(ended["Subject"])
        assert len([m for m in sink.messages() if m["To"] == the_mentee.email]) == (
            to_mentee_before
        )

    # Every table, every column: not the id, not the address, not a part of the name.
    assert await scan(db, _needles(the_mentee)) == {}
    # The mentor's own data stays.
    assert await db.fetchval("SELECT email FROM mentors WHERE id = $1", the_mentor.id) == (
        the_mentor.email
    )
    # The counts stay: the events and the tandem are there, under a pseudonym.
    after = await _counts(db)
    assert after["tandem_events"] > before["tandem_events"]  # the end is recorded too
    assert after["tandems"] == before["tandems"]
    assert after["reply_verdicts"] == before["reply_verdicts"]
    statuses = [r["status"] for r in await db.fetch("SELECT status FROM tandems")]
    assert statuses == ["ended"]
    # Temporal: the tandem's executions are gone; no history on the queue names the mentee.
    await eventually(
        lambda: _runs_of(client, f"tandem-{the_mentee.id}"), lambda runs: runs == [], timeout=30
    )
    assert await _histories_mentioning(client, settings.task_queue, _needles(the_mentee)) == []

    # Asked again: nothing is stored any more, and it says so in one line.
    code, out, err = await tandem_cli(env, "forget", the_mentee.id, "--yes")
    assert code == 1 and err.strip() == f"error: nothing is stored about {the_mentee.id}"


async def test_a_forgotten_mentor_leaves_and_the_mentee_gets_another_one(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
) -> None:
    first = mentor(uid("M")).model_copy(
        update={
            "first_name": "Ottokar",
            "last_name": "Brüggemeyer",
            "email": "brueggemeyer@praxis.example.org",
        }
    )
    the_mentee = mentee(uid("S"))
    await put_people(db, [first], [the_mentee])
    client = dev_env.client
    env = _cli_env(dev_env, settings, db_dsn)
    async with running_worker(client, settings, db):
        await enroll_ids(client, db_dsn, [the_mentee.id], settings)
        await wait_status(client, the_mentee.id, TandemStatus.INTRODUCED)
        assert (await query_state(client, the_mentee.id)).mentor_id == first.id
        await mails_to(sink, the_mentee.email)
        second = mentor(uid("M"))
        await put_people(db, [second], [])

        code, out, err = await tandem_cli(env, "forget", first.id, "--yes", "--json")
        assert code == 0, (out, err)
        report = json.loads(out)
        assert report["left"] == [the_mentee.id] and report["still_found"] == {}
        assert report["executions_deleted"] == 1 and report["deletions_pending"] == 0

        # The mentee is told neutrally (no name) and gets the other mentor.
        told = await mails_to(sink, the_mentee.email, count=2)
        assert "neue" in str(told[1]["Subject"])
        body = str(told[1].get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
        assert "Brüggemeyer" not in body and first.first_name not in body
        await eventually(
            lambda: query_state(client, the_mentee.id),
            lambda s: s.mentor_id == second.id and s.status is TandemStatus.INTRODUCED,
            timeout=60,
        )
        state = await query_state(client, the_mentee.id)
        assert first.id not in state.excluded_mentor_ids and state.rematches == 0

    assert await scan(db, _needles(first)) == {}
    assert await db.fetchval("SELECT count(*) FROM mentees WHERE id = $1", the_mentee.id) == 1
    assert await _histories_mentioning(client, settings.task_queue, _needles(first)) == []


async def _runs_of(client: Client, workflow_id: str) -> list[Any]:
    return [r async for r in client.list_workflows(f"WorkflowId = '{workflow_id}'")]


async def test_the_event_log_stays_append_only_outside_an_erasure(db: asyncpg.Pool) -> None:
    await db.execute(
        "INSERT INTO tandem_events (mentee_id, enrolment, seq, at, kind, status, phase)"
        " VALUES ('x1', 1, 1, now(), 'enrolled', 'matching', 'study')"
    )
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("UPDATE tandem_events SET mentee_id = 'y' WHERE mentee_id = 'x1'")
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL tandem.erasure = 'on'")
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("UPDATE tandem_events SET kind = 'other' WHERE mentee_id = 'x1'")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("DELETE FROM tandem_events WHERE mentee_id = 'x1'")


async def test_an_unknown_person_is_refused_in_one_line(db: asyncpg.Pool, db_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn}
    code, out, err = await tandem_cli(env, "forget", "NO-SUCH-PERSON-4711", "--yes")
    assert code == 1 and out == ""
    assert err.strip() == "error: nothing is stored about NO-SUCH-PERSON-4711"
