"""``tandem mail reply ID TEXT``: a real reply to a mail in the dev sink, quoted as a mail client
quotes, sent over SMTP to the gateway, with the gateway's verdict shown."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from email.message import EmailMessage

import aiosmtplib
import asyncpg
import pytest_asyncio

from activities.smtp import SmtpSender
from replies.inbox import RetryPolicy
from replies.service import ReplyGateway
from starter.mail_cmd import compose_reply
from starter.mailsink import MailSink, list_mail
from tandem.answers import Intent, RequestKind
from tandem.mail import message_id
from tandem.models import Role
from tandem.settings import Settings
from tests.reply_support import FakeAnswerer, mint_token, put_tandem
from tests.support import tandem_cli


def _request(settings: Settings, token: str, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = "Kurze Nachfrage zu Ihrem Mentoring-Tandem"
    msg["Message-ID"] = message_id(f"req/{token}", settings.mail_domain, token)
    msg["Date"] = "Fri, 01 May 2026 10:00:00 +0000"
    msg["Reply-To"] = settings.reply_address(token)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        "-- Bitte oberhalb dieser Zeile antworten --\n\nGuten Tag,\n\nhatten Sie Kontakt?\n\n"
        "Antworten Sie einfach mit:\n  getroffen\n  später\n  Stop\n"
    )
    return msg


def test_compose_quotes_like_a_mail_client(settings: Settings) -> None:
    original = _request(settings, "a" * 26, "s1@studium.example.org")
    reply = compose_reply(original, "Ja, getroffen")
    assert reply["From"] == "s1@studium.example.org"
    assert reply["To"] == settings.reply_address("a" * 26)
    assert reply["In-Reply-To"] == original["Message-ID"]
    assert reply["References"] == original["Message-ID"]
    assert reply["Subject"] == "AW: Kurze Nachfrage zu Ihrem Mentoring-Tandem"
    body = reply.get_content()
    assert body.startswith("Ja, getroffen\n\nAm 01.05.2026 um 10:00 schrieb Tandem Mentoring")
    assert "> -- Bitte oberhalb dieser Zeile antworten --" in body
    english = compose_reply(original, "yes", language="en", sender="x@example.org")
    assert english["From"] == "x@example.org"
    assert "On Fri, 01 May 2026 at 10:00, Tandem Mentoring" in english.get_content()


@pytest_asyncio.fixture
async def gateway(
    db: asyncpg.Pool, settings: Settings, sink: MailSink
) -> AsyncIterator[tuple[ReplyGateway, FakeAnswerer]]:
    answerer = FakeAnswerer()
    policy = RetryPolicy(first_delay=0.05, max_delay=0.2, poll=0.5)
    gw = ReplyGateway(settings, db, answerer, SmtpSender(settings), policy=policy, port=0)
    async with gw:
        yield gw, answerer


async def _tandem(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    return await tandem_cli(env, *args)


async def test_mail_reply_answers_through_the_gateway(
    gateway: tuple[ReplyGateway, FakeAnswerer],
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
) -> None:
    gw, answerer = gateway
    tandem = await put_tandem(db)
    token = await mint_token(db, settings, tandem, Role.MENTEE, RequestKind.NUDGE)
    await aiosmtplib.send(
        _request(settings, token, tandem.mentee_email), hostname="127.0.0.1", port=sink.port
    )
    [request] = list_mail(settings.mail_dir)
    env = {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "TANDEM_HOME": str(settings.home),
        "TANDEM_SMTP_PORT": str(sink.port),
        "TANDEM_GATEWAY_PORT": str(gw.port),
        "TANDEM_REPLY_TOKEN_SECRET": settings.reply_token_secret.get_secret_value(),
    }
    code, out, err = await _tandem(
        "mail", "reply", request.id, "Ja, wir haben uns getroffen", "--json", env=env
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["verdict"]["verdict"] == "accepted"
    assert result["verdict"]["intent"] == "met"
    [(mentee_id, answer, _)] = answerer.calls
    assert (mentee_id, answer.intent) == (tandem.mentee_id, Intent.MET)

    # Replying as someone else (a forwarded mail): refused, shown as such, nothing answered.
    code, out, err = await _tandem(
        "mail", "reply", request.id, "Stop", "--from", "chef@praxis.example.org", env=env
    )
    assert code == 0, err
    assert "refused (sender_mismatch)" in out
    assert len(answerer.calls) == 1

    code, _, err = await _tandem("mail", "reply", "no-such-id", "ja", env=env)
    assert code == 1
    assert err.strip() == "error: no mail with id 'no-such-id': see `tandem mail list`"
