"""Replies by real mail move a real tandem: every request type answered in German and in
English, over SMTP to the running gateway and through a real IMAP mailbox, into the workflow
on the time-skipping server.

The people reply from inside the mail activity (see tests/support.Tandem), so each reply is
decided before the test server's clock moves on."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.smtp import SmtpSender
from replies.answerer import TemporalAnswerer
from replies.inbox import RetryPolicy
from replies.service import ReplyGateway
from starter.mail_cmd import compose_reply
from starter.mailsink import MailSink
from tandem.messages import MailRequest
from tandem.models import Language, Role, TandemStatus
from tandem.settings import Settings
from tests.reply_support import settle
from tests.support import Tandem, events, eventually, history_text, mentor, run_tandem, uid
from tests.test_reply_imap import ImapTestServer, imap_server, imap_settings

SAY = {
    "de": {
        "decision_request": "Ja, gerne machen wir weiter.",
        "met": "Ja, wir haben uns getroffen.",
        "shadowing": "Hospitation, bitte!",
        "shadowing_request": "Ja, gern.",
        "phase_check": "Neue Phase hat begonnen.",
        "stop": "Stop",
    },
    "en": {
        "decision_request": "Yes, let's continue.",
        "met": "Yes, we met last week.",
        "shadowing": "Shadowing please",
        "shadowing_request": "Yes, happy to.",
        "phase_check": "New phase has started.",
        "stop": "stop",
    },
}
SIGNATURE = "\n\n-- \nSent from my phone\n"


@pytest.mark.parametrize("transport", ["smtp", "imap"])
@pytest.mark.parametrize("mentee_language", ["de", "en"])
async def test_every_request_answered_by_reply_mail(
    mentee_language: str,
    transport: str,
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    sink: MailSink,
    settings: Settings,
    tmp_path: Path,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        mailbox = None
        if transport == "imap":  # replies arrive in the office mailbox instead
            mailbox = stack.enter_context(imap_server())
            settings = imap_settings(settings, mailbox, tmp_path)
        await run_with_replies(mentee_language, mailbox, ts_env, db, sink, settings)


async def run_with_replies(
    mentee_language: str,
    mailbox: ImapTestServer | None,
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    sink: MailSink,
    settings: Settings,
) -> None:
    mentor_language = "en" if mentee_language == "de" else "de"
    s, m = uid("S"), uid("M")
    policy = RetryPolicy(first_delay=0.1, max_delay=1.0, poll=0.5)
    accepted = 0

    def count_accepted() -> None:
        nonlocal accepted
        accepted += 1

    answerer = TemporalAnswerer(ts_env.client, timeout=30, on_accepted=count_accepted)
    nudges = 0
    replies = 0

    async with ReplyGateway(
        settings, db, answerer, SmtpSender(settings), policy=policy, port=0
    ) as gateway:

        async def reply(mail: MailRequest, say: str) -> None:
            """Reply by mail, and wait until the workflow accepted the answer: the mail being
            sent belongs to a transition that holds the workflow's lock, so the answer itself
            is taken once that transition is done (before the clock moves on)."""
            nonlocal replies
            original = await sent(db, sink, mail)
            language = mentee_language if mail.to is Role.MENTEE else mentor_language
            text = SAY[language][say] + SIGNATURE
            answer = compose_reply(original, text, language=language)
            if mailbox is None:
                await aiosmtplib.send(answer, hostname="127.0.0.1", port=gateway.port)
            else:
                await mailbox.append(answer.as_bytes())
            replies += 1
            await eventually(lambda: _value(accepted), lambda n: n >= replies, timeout=90)

        async def people(mail: MailRequest, t: Tandem) -> None:
            nonlocal nudges
            if mail.template == "decision_request":
                await reply(mail, "decision_request")
            elif mail.template == "nudge" and mail.to is Role.MENTEE:
                nudges += 1
                await reply(mail, {1: "met", 2: "shadowing"}.get(nudges, "stop"))
            elif mail.template == "shadowing_request":
                await reply(mail, "shadowing_request")
            elif mail.template == "phase_check":
                await reply(mail, "phase_check")

        final, tandem = await run_tandem(
            ts_env,
            db,
            settings,
            people,
            mentors=[mentor(m, language=Language(mentor_language))],
            mentee_id=s,
            language=Language(mentee_language),
            expected_phase_end=date.today() + timedelta(days=200),  # a phase check comes
        )
        decided = await settle(db, replies, timeout=90)
        assert {v["verdict"] for v in decided} == {"accepted"}, [dict(v) for v in decided]
    assert final.status is TandemStatus.ENDED
    assert final.last_contact_at is not None
    # What people wrote, and the mails' subjects, never reach the workflow history.
    history = history_text((await tandem.handle.fetch_history()).to_json_dict())
    written = [*SAY[mentee_language].values(), *SAY[mentor_language].values()]
    for said in [w for w in written if " " in w] + ["Sent from my phone"]:  # not "stop": an intent
        assert said not in history, said
    assert "Mentoring-Tandem" not in history and "mentoring tandem" not in history
    kinds = await events(db, s)
    for kind in (
        "activated",
        "contact",
        "phase_confirmed",
        "shadowing_asked",
        "shadowing_yes",
        "stopped_by_mentee",
    ):
        assert kind in kinds, kind
    assert final.phase == "residency"
    async with db.acquire() as conn:
        intents = [
            r["intent"]
            for r in await conn.fetch("SELECT intent FROM reply_verdicts ORDER BY received_at")
        ]
    assert intents[:2] == ["continue", "continue"]
    assert {"met", "phase_done", "shadowing", "stop"} <= set(intents)


async def _value(n: int) -> int:
    return n


async def sent(pool: asyncpg.Pool, sink: MailSink, mail: MailRequest) -> EmailMessage:
    """The mail the sink received for this request (found by its Message-ID)."""
    async with pool.acquire() as conn:
        message_id = await conn.fetchval(
            "SELECT message_id FROM outbox WHERE idempotency_key = $1", mail.idempotency_key
        )
    [original] = [m for m in sink.messages() if m["Message-ID"] == message_id]
    return original
