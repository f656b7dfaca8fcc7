"""Nobody can fool the gateway: each bad reply changes nothing (the workflow is never asked)
and leaves one verdict; auto-replies and bounces are dropped silently; strangers and made-up
or stale tokens get no mail at all; help texts go to the person on file at most once a day.
(More attacks, each once let through: tests/test_reply_attacks.py.)"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

import aiosmtplib
import asyncpg
import pytest
import pytest_asyncio

from replies.directory import PgDirectory
from replies.notify import MailNotifier
from replies.pipeline import Pipeline
from replies.service import ReplyGateway, pipeline_config
from starter.mailsink import MailSink
from tandem.answers import Intent, RequestKind
from tandem.mail import build_reply_address
from tandem.models import Role
from tandem.settings import Settings
from tests.reply_support import (
    FakeAnswerer,
    Rig,
    make_rig,
    mint_token,
    put_tandem,
    reply_mail,
    verdicts,
)


@pytest_asyncio.fixture
async def rig(db: asyncpg.Pool, settings: Settings) -> Rig:
    return await make_rig(db, settings)


def _nothing_changed(rig: Rig, row: asyncpg.Record, verdict: str, reason: str) -> None:
    assert rig.answerer.calls == []
    assert (row["verdict"], row["reason"]) == (verdict, reason)


async def test_a_valid_reply_is_taken_and_confirmed(rig: Rig) -> None:
    """The baseline the refusals below differ from in exactly one respect."""
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    msg = reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="Ja, getroffen")
    row = await rig.deliver(msg)
    assert (row["verdict"], row["reason"], row["intent"]) == ("accepted", "answered", "met")
    assert [(m, a.intent, a.role) for m, a, _ in rig.answerer.calls] == [
        (rig.tandem.mentee_id, Intent.MET, Role.MENTEE)
    ]
    [confirmation] = rig.sender.sent
    assert confirmation["To"] == rig.tandem.mentee_email
    assert confirmation["Auto-Submitted"] == "auto-replied"
    assert confirmation["In-Reply-To"] == msg["Message-ID"]
    assert confirmation["Reply-To"] == rig.settings.reply_address(token)
    assert await rig.db.fetchval("SELECT count(*) FROM inbound_mail") == 0


async def test_forged_token_gets_no_mail(rig: Rig) -> None:
    forged = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(26))
    msg = reply_mail(rig.settings, forged, sender=rig.tandem.mentee_email, text="Stop")
    row = await rig.deliver(msg)
    _nothing_changed(rig, row, "refused", "unknown_token")
    assert row["mentee_id"] is None
    assert rig.sender.sent == []  # no backscatter, whoever the From names


async def test_token_of_another_tandem_gets_no_mail(rig: Rig) -> None:
    other = await put_tandem(rig.db)
    token = await mint_token(rig.db, rig.settings, other, Role.MENTOR, RequestKind.DECISION)
    msg = reply_mail(rig.settings, token, sender=rig.tandem.mentor_email, text="nein")
    row = await rig.deliver(msg)
    _nothing_changed(rig, row, "refused", "sender_mismatch")
    assert rig.sender.sent == []


async def test_expired_token(rig: Rig) -> None:
    token = await mint_token(
        rig.db, rig.settings, rig.tandem, Role.MENTEE, expires_in=timedelta(seconds=-1)
    )
    row = await rig.deliver(
        reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="ja")
    )
    _nothing_changed(rig, row, "refused", "expired_token")


async def test_revoked_token(rig: Rig) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE, revoked=True)
    row = await rig.deliver(
        reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="ja")
    )
    _nothing_changed(rig, row, "refused", "revoked_token")


async def test_forwarded_reply_from_another_sender_gets_no_mail(rig: Rig) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTOR)
    for text in ("Stop", "Hilfe"):
        msg = reply_mail(rig.settings, token, sender="sekretariat@praxis.example.org", text=text)
        row = await rig.deliver(msg)
        _nothing_changed(rig, row, "refused", "sender_mismatch")
    assert rig.sender.sent == []


@pytest.mark.parametrize(
    ("headers", "subject", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "AW: Nachfrage", "auto_reply"),
        ({"X-Autoreply": "yes"}, "Re: question", "auto_reply"),
        ({"X-Autorespond": "on"}, "Re: question", "auto_reply"),
        ({"X-Auto-Response-Suppress": "All"}, "Automatische Antwort: Nachfrage", "auto_reply"),
        ({"Precedence": "bulk"}, "AW: Nachfrage", "list"),
        ({}, "Abwesenheitsnotiz: Kurze Nachfrage", "out_of_office"),
        ({}, "Automatische Antwort: Kurze Nachfrage", "out_of_office"),
        ({}, "Out of Office: Your mentoring tandem", "out_of_office"),
    ],
)
async def test_auto_replies_and_out_of_office_are_dropped_silently(
    rig: Rig, headers: dict[str, str], subject: str, reason: str
) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    msg = reply_mail(
        rig.settings,
        token,
        sender=rig.tandem.mentee_email,
        text="Ich bin bis zum 20.5. nicht im Büro. Ja.",
        subject=subject,
        headers=headers,
    )
    row = await rig.deliver(msg)
    _nothing_changed(rig, row, "dropped", reason)
    assert rig.sender.sent == []


async def test_bounce_is_dropped_silently(rig: Rig) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    report = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        f"To: {rig.settings.reply_address(token)}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@mx.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nThis is the mail system. ja\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n--b1--\r\n"
    ).encode()
    row = await rig.deliver(report, null_sender=True)
    _nothing_changed(rig, row, "dropped", "bounce")
    assert rig.sender.sent == []


async def test_mail_from_our_own_address_is_dropped(rig: Rig) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    msg = reply_mail(rig.settings, token, sender=rig.settings.mail_from, text="ja")
    row = await rig.deliver(msg)
    _nothing_changed(rig, row, "dropped", "own_mail")


async def _raw_with(rig: Rig, content_type: str, body: str) -> bytes:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    return (
        f"From: {rig.tandem.mentee_email}\r\nTo: {rig.settings.reply_address(token)}\r\n"
        f"Subject: AW: Nachfrage\r\nMessage-ID: <{uuid.uuid4().hex}@client.example.org>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n{body}"
    ).encode()


async def test_broken_mime_is_quarantined(rig: Rig) -> None:
    raw = await _raw_with(
        rig, "multipart/mixed", "--x\r\nContent-Type: text/plain\r\n\r\nja\r\n--x--\r\n"
    )
    row = await rig.deliver(raw)
    _nothing_changed(rig, row, "malformed", "broken_mime")
    raw = await _raw_with(rig, 'multipart/alternative; boundary="never"', "ja\r\n")
    row = await rig.deliver(raw)
    _nothing_changed(rig, row, "malformed", "broken_mime")
    assert rig.sender.sent == []


async def test_unknown_charset_is_quarantined(rig: Rig) -> None:
    raw = await _raw_with(rig, 'text/plain; charset="x-klingon-42"', "ja\r\n")
    row = await rig.deliver(raw)
    _nothing_changed(rig, row, "malformed", "undecodable_body")


async def test_garbage_is_quarantined_and_the_inbox_keeps_going(rig: Rig) -> None:
    row = await rig.deliver(b"\x00\xff" * 100 + b"\r\n\r\n\xfe")
    assert rig.answerer.calls == []
    assert row["verdict"] in ("malformed", "refused")
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    ok = await rig.deliver(
        reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="ja")
    )
    assert ok["verdict"] == "accepted"


async def test_an_answer_not_understood_or_not_allowed_gets_one_help_mail(rig: Rig) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE, RequestKind.DECISION)
    msg = reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="Hospitation")
    row = await rig.deliver(msg)
    _nothing_changed(rig, row, "refused", "not_allowed")
    assert row["intent"] == "shadowing"
    msg = reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="Wie bitte?")
    row = await rig.deliver(msg)
    _nothing_changed(rig, row, "refused", "not_understood")
    [help_mail] = rig.sender.sent  # the second one the same day is not sent
    text = help_mail.get_content()
    assert "unentschieden" in text and "Hospitation" not in text
    assert help_mail["Reply-To"] == rig.settings.reply_address(token)


async def test_a_refusal_by_the_workflow_changes_nothing_and_is_recorded(rig: Rig) -> None:
    rig.answerer.refuse = True
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTOR, RequestKind.DECISION)
    row = await rig.deliver(
        reply_mail(rig.settings, token, sender=rig.tandem.mentor_email, text="ja")
    )
    assert (row["verdict"], row["reason"], row["intent"]) == (
        "refused",
        "workflow_refused",
        "continue",
    )
    assert len(rig.sender.sent) == 1


async def test_plus_addressed_office_mailbox_and_rewritten_to(rig: Rig) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    plus = build_reply_address(
        token,
        "plus",
        reply_domain=rig.settings.reply_domain,
        office_address="buero@uni.example.org",
    )
    settings = rig.settings.model_copy(update={"reply_office_address": "buero@uni.example.org"})
    rig.inbox._pipeline = Pipeline(
        pipeline_config(settings),
        PgDirectory(rig.db),
        rig.answerer,
        MailNotifier(rig.db, settings, rig.sender),
    )
    row = await rig.deliver(
        reply_mail(settings, token, sender=rig.tandem.mentee_email, text="ja", to=plus)
    )
    assert row["verdict"] == "accepted"
    # A mail system rewrote the To: the token is still found in In-Reply-To.
    msg = reply_mail(
        settings, token, sender=rig.tandem.mentee_email, text="später", to="buero@uni.example.org"
    )
    row = await rig.deliver(msg)
    assert (row["verdict"], row["intent"]) == ("accepted", "snooze")


# -- at the SMTP door ---------------------------------------------------------------------------


@pytest_asyncio.fixture
async def gateway(db: asyncpg.Pool, settings: Settings, sink: MailSink) -> ReplyGateway:
    from activities.smtp import SmtpSender

    gw = ReplyGateway(settings, db, FakeAnswerer(), SmtpSender(settings), port=0)
    await gw.start()
    yield gw  # type: ignore[misc]
    await gw.stop()


async def test_smtp_refuses_unknown_expired_and_revoked_tokens_at_rcpt(
    gateway: ReplyGateway, db: asyncpg.Pool, settings: Settings, sink: MailSink
) -> None:
    tandem = await put_tandem(db)
    expired = await mint_token(db, settings, tandem, Role.MENTEE, expires_in=timedelta(seconds=-1))
    revoked = await mint_token(db, settings, tandem, Role.MENTEE, revoked=True, number=2)
    forged = "a" * 26
    for token in (forged, expired, revoked):
        msg = reply_mail(settings, token, sender=tandem.mentee_email, text="ja")
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as err:
            await aiosmtplib.send(msg, hostname="127.0.0.1", port=gateway.port)
        [refusal] = err.value.recipients
        assert refusal.code == 550
    for address in ("someone@reply.tandem.invalid", "reply+notatoken@reply.tandem.invalid"):
        msg = reply_mail(settings, forged, sender=tandem.mentee_email, text="ja", to=address)
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await aiosmtplib.send(msg, hostname="127.0.0.1", port=gateway.port)
    assert await db.fetchval("SELECT count(*) FROM inbound_mail") == 0
    assert await verdicts(db) == []
    assert sink.messages() == []  # no backscatter


async def test_a_30_mb_mail_is_refused_at_smtp_level(
    gateway: ReplyGateway, db: asyncpg.Pool, settings: Settings
) -> None:
    tandem = await put_tandem(db)
    token = await mint_token(db, settings, tandem, Role.MENTEE)
    msg = reply_mail(settings, token, sender=tandem.mentee_email, text="ja")
    msg.add_attachment(b"\0" * 30_000_000, maintype="application", subtype="octet-stream")
    with pytest.raises(aiosmtplib.SMTPResponseException) as err:
        await aiosmtplib.send(msg, hostname="127.0.0.1", port=gateway.port, timeout=120)
    assert err.value.code == 552
    assert await db.fetchval("SELECT count(*) FROM inbound_mail") == 0
    assert await verdicts(db) == []
