"""A destructive answer not said plainly is asked back, never acted on; the plain answer to
that question is. The whole way with the real workflow on the dev server: introduction mail
-> "Ich überlege, das Tandem zu beenden" -> a question mail, the tandem unchanged -> "Ja,
beenden" to the question -> the tandem ends. An out-of-office note without its headers is
dropped without any mail."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage

import aiosmtplib
import asyncpg
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.smtp import SmtpSender
from replies.answerer import TemporalAnswerer
from replies.inbox import RetryPolicy
from replies.service import ReplyGateway
from starter.mail_cmd import compose_reply
from starter.mailsink import MailSink
from starter.tandem_cmds import enroll_ids
from tandem.models import Mentee, TandemStatus
from tandem.settings import Settings
from tests.reply_support import settle
from tests.support import (
    eventually,
    mails_to,
    mentee,
    mentor,
    put_people,
    running_worker,
    wait_status,
)
from workflows.client import TandemClient


async def _messages(sink: MailSink) -> list[EmailMessage]:
    return sink.messages()  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def introduced(
    client: Client, db: asyncpg.Pool, db_dsn: str, settings: Settings, sink: MailSink
) -> AsyncIterator[tuple[Mentee, ReplyGateway, EmailMessage]]:
    """A new tandem waiting in ``introduced``, the worker and the gateway running: yields the
    mentee, the gateway and the introduction mail the mentee got."""
    p = f"q{uuid.uuid4().hex[:6]}"
    the_mentee = mentee(f"{p}-S1")
    await put_people(db, [mentor(f"{p}-M1")], [the_mentee])
    policy = RetryPolicy(first_delay=0.1, max_delay=1.0, poll=1.0)
    answerer = TemporalAnswerer(client, timeout=20)
    async with (
        running_worker(client, settings, db),
        ReplyGateway(settings, db, answerer, SmtpSender(settings), policy=policy, port=0) as gw,
    ):
        await enroll_ids(client, db_dsn, [the_mentee.id], settings)
        await wait_status(client, the_mentee.id, TandemStatus.INTRODUCED)
        [introduction] = await mails_to(sink, the_mentee.email)
        yield the_mentee, gw, introduction


async def test_an_unsure_stop_is_asked_back_and_the_plain_answer_ends_the_tandem(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
) -> None:
    client = dev_env.client
    async with introduced(client, db, db_dsn, settings, sink) as (the_mentee, gw, introduction):
        # 1. not plain: a question back, nothing else
        unsure = compose_reply(introduction, "Ich überlege, das Tandem zu beenden.")
        await aiosmtplib.send(unsure, hostname="127.0.0.1", port=gw.port)
        [row] = await settle(db, 1, timeout=60)
        assert (row["verdict"], row["reason"], row["intent"]) == (
            "refused",
            "needs_confirmation",
            "stop",
        )

        def questions(mails: list[EmailMessage]) -> list[EmailMessage]:
            wanted = str(unsure["Message-ID"]).strip()
            return [m for m in mails if str(m["In-Reply-To"] or "").strip() == wanted]

        mails = await eventually(lambda: _messages(sink), lambda ms: len(questions(ms)) == 1)
        [question] = questions(mails)
        assert question["To"] == the_mentee.email
        assert question["Auto-Submitted"] == "auto-replied"
        assert "„Ja, beenden“" in question.get_content()
        state = await TandemClient(client).state(the_mentee.id)
        assert state.status is TandemStatus.INTRODUCED

        # 2. the plain answer to the question is taken
        plain = compose_reply(question, "Ja, beenden")
        await aiosmtplib.send(plain, hostname="127.0.0.1", port=gw.port)
        rows = await settle(db, 2, timeout=60)
        assert (rows[1]["verdict"], rows[1]["intent"]) == ("accepted", "stop")
        await wait_status(client, the_mentee.id, TandemStatus.ENDED)


async def test_an_out_of_office_note_without_headers_is_dropped_without_mail(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
) -> None:
    client = dev_env.client
    async with introduced(client, db, db_dsn, settings, sink) as (the_mentee, gw, introduction):
        note = compose_reply(
            introduction,
            "Vielen Dank für Ihre Nachricht. Ich bin bis einschließlich 30.11. nicht im Büro"
            " und habe keinen Zugriff auf meine E-Mails. In dringenden Fällen wenden Sie sich"
            " bitte an das Sekretariat. Stop.",
        )
        await aiosmtplib.send(note, hostname="127.0.0.1", port=gw.port)
        [row] = await settle(db, 1, timeout=60)
        assert (row["verdict"], row["reason"]) == ("dropped", "out_of_office")
        note_id = str(note["Message-ID"]).strip()
        assert not [m for m in sink.messages() if str(m["In-Reply-To"] or "").strip() == note_id]
        to_mentee = [m["Message-ID"] for m in sink.messages() if m["To"] == the_mentee.email]
        assert to_mentee == [introduction["Message-ID"]]
        await wait_status(client, the_mentee.id, TandemStatus.INTRODUCED)
