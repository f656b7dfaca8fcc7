"""The whole way with the real workflow: enrol -> introduction mail in the sink -> the mentee
replies "Hilfe" quoting it -> SMTP gateway -> Temporal ``answer`` update -> the tandem asks the
programme office to get in touch. The same mail again is a duplicate that changes nothing."""

from __future__ import annotations

import uuid

import aiosmtplib
import asyncpg
from temporalio.testing import WorkflowEnvironment

from activities.smtp import SmtpSender
from replies.answerer import TemporalAnswerer
from replies.inbox import RetryPolicy
from replies.service import ReplyGateway
from starter.mail_cmd import compose_reply
from starter.mailsink import MailSink
from starter.tandem_cmds import enroll_ids
from tandem.models import TandemStatus
from tandem.programs import load_programs
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


async def test_a_reply_to_the_introduction_reaches_the_real_workflow(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
) -> None:
    p = f"g{uuid.uuid4().hex[:6]}"
    the_mentee = mentee(f"{p}-S1")
    await put_people(db, [mentor(f"{p}-M1")], [the_mentee])
    client = dev_env.client
    policy = RetryPolicy(first_delay=0.1, max_delay=1.0, poll=1.0)
    answerer = TemporalAnswerer(client, timeout=20)
    async with (
        running_worker(client, settings, db),
        ReplyGateway(settings, db, answerer, SmtpSender(settings), policy=policy, port=0) as gw,
    ):
        await enroll_ids(client, db_dsn, [the_mentee.id], settings)
        await wait_status(client, the_mentee.id, TandemStatus.INTRODUCED)
        office = str(load_programs(settings.programs_dir)[the_mentee.program].coordinator_email)
        [introduction] = await mails_to(sink, the_mentee.email)
        assert not any(m["To"] == office for m in sink.messages())
        assert introduction["Reply-To"]
        reply = compose_reply(introduction, "Hilfe, bitte rufen Sie mich an.")
        await aiosmtplib.send(reply, hostname="127.0.0.1", port=gw.port)
        [row] = await settle(db, 1, timeout=60)
        assert (row["verdict"], row["reason"], row["intent"]) == ("accepted", "answered", "help")
        assert row["mentee_id"] == the_mentee.id

        def office_mail(mails: list) -> list:  # type: ignore[type-arg]
            return [
                m for m in mails if "mentee" not in str(m["To"]) and "praxis" not in str(m["To"])
            ]

        await eventually(lambda: _messages(sink), lambda mails: len(office_mail(mails)) >= 1)

        def confirmations(mails: list) -> list:  # type: ignore[type-arg]
            # A long In-Reply-To is folded on the way; compare the ids, not the whitespace.
            wanted = str(reply["Message-ID"]).strip()
            return [m for m in mails if str(m["In-Reply-To"] or "").strip() == wanted]

        # The confirmation goes out after the verdict: wait for it, then count.
        await eventually(lambda: _messages(sink), lambda mails: len(confirmations(mails)) >= 1)
        assert len(confirmations(sink.messages())) == 1

        await aiosmtplib.send(reply, hostname="127.0.0.1", port=gw.port)  # delivered twice
        rows = await settle(db, 2, timeout=60)
        assert (rows[1]["verdict"], rows[1]["reason"]) == ("accepted", "duplicate")


async def _messages(sink: MailSink) -> list:  # type: ignore[type-arg]
    return sink.messages()
