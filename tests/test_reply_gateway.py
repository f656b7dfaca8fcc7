"""End to end over real SMTP: aiosmtplib -> the gateway on a free port -> durable inbox ->
pipeline -> a fake Answerer; confirmations through SMTP into the sink. German and English
replies with the quoted original and a signature, for every request kind; retries until a
worker takes the answer; a restart loses nothing; nothing of a mail's content is kept."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import aiosmtplib
import asyncpg
import pytest
import pytest_asyncio
import structlog

from activities.smtp import SmtpSender
from replies.inbox import RetryPolicy
from replies.pipeline import answer_id_for
from replies.service import ReplyGateway
from starter.mailsink import MailSink
from tandem.answers import AnswerDetails, Intent, RequestKind
from tandem.models import Language, Role
from tandem.settings import Settings
from tests.reply_support import (
    QUOTE_EN,
    FakeAnswerer,
    mint_token,
    put_tandem,
    reply_mail,
    settle,
)
from tests.support import eventually

FAST = RetryPolicy(first_delay=0.05, max_delay=0.2, poll=0.5)


def _past(month: int, day: int) -> date:
    today = datetime.now(UTC).date()
    found = date(today.year, month, day)
    return found if found <= today else found.replace(year=today.year - 1)


@pytest_asyncio.fixture
async def answerer() -> FakeAnswerer:
    return FakeAnswerer()


@pytest_asyncio.fixture
async def gateway(
    db: asyncpg.Pool, settings: Settings, answerer: FakeAnswerer, sink: MailSink
) -> AsyncIterator[ReplyGateway]:
    gw = ReplyGateway(settings, db, answerer, SmtpSender(settings), policy=FAST, port=0)
    await gw.start()
    yield gw
    await gw.stop()


async def send(gw: ReplyGateway, msg: object) -> None:
    await aiosmtplib.send(msg, hostname="127.0.0.1", port=gw.port)  # type: ignore[arg-type]


# (request kind, role, language, text, signature, expected intent, expected details)
CASES = [
    (RequestKind.DECISION, Role.MENTEE, "de", "Ja, ich möchte gern weitermachen.", None,
     Intent.CONTINUE, AnswerDetails()),
    (RequestKind.DECISION, Role.MENTOR, "en", "No, I'd rather not continue.", None,
     Intent.DECLINE, AnswerDetails()),
    (RequestKind.DECISION, Role.MENTEE, "de", "Hallo,\n\nunentschieden, wir kennen uns kaum.",
     "Mit freundlichen Grüßen\nJonas", Intent.UNDECIDED, AnswerDetails()),
    (RequestKind.NUDGE, Role.MENTEE, "de", "Ja, wir haben uns am 3.5. getroffen.", None,
     Intent.MET, AnswerDetails(met_on=_past(5, 3))),
    (RequestKind.NUDGE, Role.MENTOR, "en", "We met on 3 May, thanks!", "--\nDr. Henrike M.\n+49 0",
     Intent.MET, AnswerDetails(met_on=_past(5, 3))),
    (RequestKind.NUDGE, Role.MENTEE, "de", "Bitte später, in 3 Wochen.",
     "Gesendet von meinem iPhone", Intent.SNOOZE, AnswerDetails(snooze_weeks=3)),
    (RequestKind.NUDGE, Role.MENTEE, "en", "Shadowing please", None,
     Intent.SHADOWING, AnswerDetails()),
    (RequestKind.NUDGE, Role.MENTOR, "de", "Hilfe", "Viele Grüße", Intent.HELP, AnswerDetails()),
    (RequestKind.PHASE_CHECK, Role.MENTEE, "de", "Neue Phase hat begonnen!", None,
     Intent.PHASE_DONE, AnswerDetails()),
    (RequestKind.PHASE_CHECK, Role.MENTEE, "en", "Not yet - later in 3 weeks", None,
     Intent.SNOOZE, AnswerDetails(snooze_weeks=3)),
    (RequestKind.SHADOWING, Role.MENTOR, "de", "Ja, gerne!", "Beste Grüße\nH.",
     Intent.CONTINUE, AnswerDetails()),
    (RequestKind.SHADOWING, Role.MENTOR, "en", "Unfortunately not.", None,
     Intent.DECLINE, AnswerDetails()),
    (RequestKind.INTRODUCTION, Role.MENTEE, "en", "yes we met", None, Intent.MET, AnswerDetails()),
    (RequestKind.DECISION, Role.MENTOR, "de", "Stop", None, Intent.STOP, AnswerDetails()),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "role", "lang", "text", "signature", "intent", "details"), CASES)
async def test_a_reply_per_request_kind_reaches_the_answerer_and_is_confirmed(
    gateway: ReplyGateway,
    db: asyncpg.Pool,
    settings: Settings,
    sink: MailSink,
    answerer: FakeAnswerer,
    kind: RequestKind,
    role: Role,
    lang: str,
    text: str,
    signature: str | None,
    intent: Intent,
    details: AnswerDetails,
) -> None:
    language = Language(lang)
    tandem = await put_tandem(db, language=language)
    token = await mint_token(db, settings, tandem, role, kind)
    msg = reply_mail(
        settings,
        token,
        # Mail systems may change the case of an address: still the person on file.
        sender=tandem.email(role).upper() if lang == "en" else tandem.email(role),
        text=text,
        language=lang,
        signature=signature,
        **({"quote": QUOTE_EN} if lang == "en" else {}),  # type: ignore[arg-type]
    )
    await send(gateway, msg)
    [row] = await settle(db, 1)
    assert (row["verdict"], row["reason"], row["intent"]) == ("accepted", "answered", intent.value)
    [(mentee_id, answer, _)] = answerer.calls
    assert mentee_id == tandem.mentee_id
    assert (answer.role, answer.request_id, answer.intent) == (role, row["request_id"], intent)
    assert answer.details == details
    assert answer.answer_id == answer_id_for(msg["Message-ID"])
    confirmations = await eventually(
        lambda: _mails_to(sink, tandem.email(role)), lambda found: len(found) == 1, timeout=10
    )
    [confirmation] = confirmations
    assert confirmation["In-Reply-To"] == msg["Message-ID"]
    assert confirmation["Auto-Submitted"] == "auto-replied"
    subject = "Your answer has arrived" if lang == "en" else "Ihre Antwort ist angekommen"
    assert confirmation["Subject"] == subject


async def _mails_to(sink: MailSink, address: str) -> list:  # type: ignore[type-arg]
    return [m for m in sink.messages() if str(m["To"]).lower() == address.lower()]


async def test_an_html_only_reply_from_outlook_is_read(
    gateway: ReplyGateway, db: asyncpg.Pool, settings: Settings, answerer: FakeAnswerer
) -> None:
    tandem = await put_tandem(db)
    token = await mint_token(db, settings, tandem, Role.MENTEE)
    msg = reply_mail(settings, token, sender=tandem.mentee_email, text="später", html=True)
    await send(gateway, msg)
    [row] = await settle(db, 1)
    assert (row["verdict"], row["intent"]) == ("accepted", "snooze")


async def test_the_inbox_retries_until_a_worker_takes_the_answer(
    gateway: ReplyGateway, db: asyncpg.Pool, settings: Settings, answerer: FakeAnswerer
) -> None:
    answerer.fail_times = 3
    tandem = await put_tandem(db)
    token = await mint_token(db, settings, tandem, Role.MENTEE)
    await send(gateway, reply_mail(settings, token, sender=tandem.mentee_email, text="getroffen"))
    [row] = await settle(db, 1)
    assert (row["verdict"], row["attempts"]) == ("accepted", 4)
    assert len(answerer.calls) == 1


async def test_an_accepted_mail_survives_a_restart_of_the_gateway(
    db: asyncpg.Pool, settings: Settings, sink: MailSink
) -> None:
    tandem = await put_tandem(db)
    token = await mint_token(db, settings, tandem, Role.MENTEE)
    down = FakeAnswerer(fail_times=10**6)  # Temporal away the whole time
    first = ReplyGateway(settings, db, down, SmtpSender(settings), policy=FAST, port=0)
    await first.start()
    try:
        await send(first, reply_mail(settings, token, sender=tandem.mentee_email, text="ja"))
        await eventually(
            lambda: db.fetchval("SELECT attempts FROM inbound_mail"),
            lambda attempts: (attempts or 0) >= 2,
            timeout=10,
        )
    finally:
        await first.stop()
    assert await db.fetchval("SELECT count(*) FROM reply_verdicts") == 0
    up = FakeAnswerer()
    second = ReplyGateway(settings, db, up, SmtpSender(settings), policy=FAST, port=0)
    async with second:
        await db.execute("UPDATE inbound_mail SET next_attempt_at = now(), leased_until = NULL")
        second.inbox.wake()
        [row] = await settle(db, 1)
    assert row["verdict"] == "accepted"
    assert len(up.calls) == 1


async def test_lmtp_behind_postfix(
    db: asyncpg.Pool, settings: Settings, answerer: FakeAnswerer, sink: MailSink
) -> None:
    lmtp = settings.model_copy(update={"gateway_lmtp": True})
    tandem = await put_tandem(db)
    token = await mint_token(db, settings, tandem, Role.MENTEE)
    async with ReplyGateway(lmtp, db, answerer, SmtpSender(settings), policy=FAST, port=0) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)

        async def say(line: bytes) -> bytes:
            writer.write(line + b"\r\n")
            await writer.drain()
            return await _response(reader)

        try:
            assert (await _response(reader)).startswith(b"220")
            assert (await say(b"LHLO postfix.example.org")).startswith(b"250")
            assert (await say(b"MAIL FROM:<s@studium.example.org>")).startswith(b"250")
            assert (await say(f"RCPT TO:<{settings.reply_address(token)}>".encode())).startswith(
                b"250"
            )
            forged = b"RCPT TO:<reply+" + b"a" * 26 + b"@reply.tandem.invalid>"
            assert (await say(forged)).startswith(b"550")
            assert (await say(b"DATA")).startswith(b"354")
            msg = reply_mail(settings, token, sender=tandem.mentee_email, text="ja")
            body = bytes(msg).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            # LMTP: one status per accepted recipient (here: one).
            assert (await say(body + b"\r\n.")) == b"250 2.0.0 Stored\r\n"
            await say(b"QUIT")
        finally:
            writer.close()
        [row] = await settle(db, 1)
    assert row["verdict"] == "accepted"


async def test_no_body_subject_or_address_of_a_reply_is_kept_in_any_table_or_log(
    gateway: ReplyGateway,
    db: asyncpg.Pool,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tandem = await put_tandem(db)
    marks = ["Zebrafinkgeheimnis", "Okapikennwort", "Quokkavertraulich", "Axolotlnotiz"]
    texts = [f"Ja, getroffen. {marks[0]}", f"{marks[1]} nichts verstanden", "Stop"]
    senders = [tandem.mentee_email, tandem.mentee_email, "weitergeleitet-x9@example.net"]
    with structlog.testing.capture_logs() as logs:
        for i, (text, sender) in enumerate(zip(texts, senders, strict=True)):
            token = await mint_token(db, settings, tandem, Role.MENTEE, number=i + 1)
            msg = reply_mail(
                settings,
                token,
                sender=sender,
                text=text,
                subject=f"AW: {marks[2]} {i}",
                signature=f"Gruß\n{marks[3]}",
            )
            await send(gateway, msg)
        rows = await settle(db, 3)
    assert [r["verdict"] for r in rows] == ["accepted", "refused", "refused"]
    dump = await _dump_all_tables(db)
    logged = "\n".join(str(entry) for entry in logs) + "\n" + caplog.text
    for mark in marks:
        assert mark not in dump
        assert mark.lower() not in logged.lower()
    assert "weitergeleitet-x9" not in dump and "weitergeleitet-x9" not in logged
    assert tandem.mentee_email not in logged


async def _response(reader: asyncio.StreamReader) -> bytes:
    """One (possibly multi-line) SMTP/LMTP response."""
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout=10)
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return b"".join(lines)


async def _dump_all_tables(db: asyncpg.Pool) -> str:
    tables = await db.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    out = []
    for t in tables:
        for row in await db.fetch(f'SELECT * FROM "{t["table_name"]}"'):
            for value in row.values():
                out.append(
                    value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                )
    return "\n".join(out)


async def test_give_up_after_the_retry_window(
    db: asyncpg.Pool, settings: Settings, sink: MailSink
) -> None:
    tandem = await put_tandem(db)
    token = await mint_token(db, settings, tandem, Role.MENTEE)
    policy = RetryPolicy(first_delay=0.05, max_delay=0.1, poll=0.5, give_up_after=timedelta(0))
    gw = ReplyGateway(
        settings, db, FakeAnswerer(fail_times=99), SmtpSender(settings), policy=policy, port=0
    )
    async with gw:
        await send(gw, reply_mail(settings, token, sender=tandem.mentee_email, text="ja"))
        [row] = await settle(db, 1)
    assert (row["verdict"], row["reason"]) == ("refused", "gave_up")
