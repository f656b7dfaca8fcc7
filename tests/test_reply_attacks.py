"""Attacks on the reply gateway that once got through, each shown to change nothing and to
send no mail where none should go: our own texts echoed back (a mail loop), floods of
answers, strangers and made-up tokens (backscatter), forged senders, replayed Message-IDs,
raw tokens in Message-IDs, and mails built to keep the gateway busy."""

from __future__ import annotations

import asyncio
import quopri
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage

import aiosmtplib
import asyncpg
import pytest
import pytest_asyncio

from activities.smtp import SmtpSender
from replies.inbox import RetryPolicy
from replies.notify import NOTICES_PER_MAILBOX_PER_DAY
from replies.pipeline import Inbound, Pipeline, VerdictKind
from replies.service import ReplyGateway, pipeline_config
from starter.mailsink import MailSink
from tandem.answers import RequestKind
from tandem.mail import message_id, token_from_message_id, token_hash, token_ref_from_message_id
from tandem.models import Role
from tandem.settings import Settings
from tests.reply_support import (
    QUOTE_DE,
    FakeAnswerer,
    Rig,
    Tandem,
    make_rig,
    mint_token,
    put_tandem,
    reply_mail,
    settle,
    with_from,
)
from tests.support import mentee, put_people


@pytest_asyncio.fixture
async def rig(db: asyncpg.Pool, settings: Settings) -> Rig:
    return await make_rig(db, settings)


def _unchanged(rig: Rig, row: asyncpg.Record, verdict: str, reason: str) -> None:
    assert rig.answerer.calls == []
    assert (row["verdict"], row["reason"]) == (verdict, reason)


def _echo(rig: Rig, token: str, ours: EmailMessage, *, quoted: bool = False) -> EmailMessage:
    """A reply whose text is our mail's text, sent back by the person (or a responder
    without auto-reply headers), threaded under our mail."""
    text = ours.get_content()
    if quoted:
        text = "\n".join(f"> {line}" for line in text.splitlines())
    msg = EmailMessage()
    msg["From"] = rig.tandem.mentee_email
    msg["To"] = str(ours["Reply-To"] or rig.settings.reply_address(token))
    msg["Subject"] = f"AW: {ours['Subject']}"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@client.example.org>"
    msg["In-Reply-To"] = str(ours["Message-ID"])
    msg["References"] = str(ours["Message-ID"])
    msg.set_content(text)
    return msg


# -- 1. our own texts coming back ----------------------------------------------------------------


async def test_our_confirmation_echoed_back_is_dropped_silently_and_starts_no_loop(
    rig: Rig,
) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    await rig.deliver(reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="Hilfe"))
    [confirmation] = rig.sender.sent
    calls = len(rig.answerer.calls)
    for quoted in (False, True, False):
        row = await rig.deliver(_echo(rig, token, confirmation, quoted=quoted))
        assert row["verdict"] == "dropped"
        assert row["reason"] == "own_text"
    assert len(rig.answerer.calls) == calls
    assert rig.sender.sent == [confirmation]


async def test_our_help_text_echoed_back_is_dropped_silently(rig: Rig) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE, RequestKind.DECISION)
    await rig.deliver(
        reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="Wie bitte?")
    )
    [help_mail] = rig.sender.sent
    await rig.db.execute("DELETE FROM reply_notice_counts")  # another day: a help mail may go
    for _ in range(3):
        row = await rig.deliver(_echo(rig, token, help_mail))
        _unchanged(rig, row, "dropped", "own_text")
    assert rig.sender.sent == [help_mail]


async def test_our_request_echoed_back_with_nothing_above_the_marker_is_dropped(
    rig: Rig,
) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    msg = reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="x")
    msg.set_content(QUOTE_DE)  # our request's text as it was, unquoted, marker first
    row = await rig.deliver(msg)
    _unchanged(rig, row, "dropped", "own_text")
    assert rig.sender.sent == []


async def test_a_correction_replied_to_our_confirmation_is_still_taken(rig: Rig) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    await rig.deliver(reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="ja"))
    [confirmation] = rig.sender.sent
    correction = _echo(rig, token, confirmation, quoted=True)
    correction.set_content("später\n\n" + correction.get_content())
    row = await rig.deliver(correction)
    assert (row["verdict"], row["intent"]) == ("accepted", "snooze")


# -- 2. floods of answers ------------------------------------------------------------------------


async def test_twelve_help_answers_from_one_person_give_one_confirmation(rig: Rig) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    for _ in range(12):
        await rig.deliver(
            reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="Hilfe")
        )
    assert len(rig.answerer.calls) == 12  # the workflow decides what a second answer does
    assert len(rig.sender.sent) == 1


async def test_answers_to_many_requests_give_few_mails_to_one_person_a_day(rig: Rig) -> None:
    for number in range(10):
        token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE, number=number)
        for text in ("Ja, getroffen", "Wie bitte?"):
            await rig.deliver(
                reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text=text)
            )
    assert len(rig.answerer.calls) == 10
    helps = [m for m in rig.sender.sent if "nicht übernehmen" in str(m["Subject"])]
    assert len(helps) == 1
    assert len(rig.sender.sent) <= 4


async def test_a_mentor_of_five_tandems_hears_back_on_each_answer_of_the_day(rig: Rig) -> None:
    """A mentor with five new mentees answers the five introductions the same morning: each
    answer is confirmed, threaded under its own reply (the limit per mailbox is for floods
    and loops, not for a busy mentor)."""
    first = await put_tandem(rig.db)
    others = [mentee(f"{first.mentee_id}-{i}") for i in range(4)]
    await put_people(rig.db, [], others)
    tandems = [first] + [
        Tandem(m.id, first.mentor_id, str(m.email), first.mentor_email) for m in others
    ]
    texts = [
        "Ja, weitermachen. Das erste Gespräch war sehr angenehm.",
        "Guten Tag,\n\nich möchte das Tandem gern fortsetzen.",
        "ja",
        "Ja, wir machen weiter!",
        "Hallo,\n\nja, gern weiter. Wir treffen uns wieder im Juni.",
    ]
    for tandem, text in zip(tandems, texts, strict=True):
        token = await mint_token(rig.db, rig.settings, tandem, Role.MENTOR, RequestKind.DECISION)
        row = await rig.deliver(
            reply_mail(
                rig.settings,
                token,
                sender=f"Dr. Petra Beispiel <{first.mentor_email}>",
                text=text,
                signature="Mit freundlichen Grüßen\nDr. Petra Beispiel\nPraxis am Markt",
            )
        )
        assert (row["verdict"], row["reason"]) == ("accepted", "answered")
    assert [c[0] for c in rig.answerer.calls] == [t.mentee_id for t in tandems]
    assert [str(m["To"]) for m in rig.sender.sent] == [first.mentor_email] * 5
    assert len({str(m["In-Reply-To"]) for m in rig.sender.sent}) == 5


async def test_one_mailbox_in_many_tandems_gets_at_most_its_days_share_of_mails(rig: Rig) -> None:
    """Forty tandems on file with plus-tagged variants of one address, each answering its
    request: every answer is taken, but the mailbox gets no more than its day's share."""
    box = f"shared{uuid.uuid4().hex[:6]}"
    for i in range(NOTICES_PER_MAILBOX_PER_DAY + 10):
        tandem = await put_tandem(rig.db, mentee_email=f"{box}+{i}@example.org")
        token = await mint_token(rig.db, rig.settings, tandem, Role.MENTEE, RequestKind.DECISION)
        row = await rig.deliver(
            reply_mail(rig.settings, token, sender=tandem.mentee_email, text="Ja, weitermachen")
        )
        assert (row["verdict"], row["reason"]) == ("accepted", "answered")
    assert len(rig.answerer.calls) == NOTICES_PER_MAILBOX_PER_DAY + 10
    assert len(rig.sender.sent) == NOTICES_PER_MAILBOX_PER_DAY


async def test_plus_tagged_variants_of_one_mailbox_get_one_help_mail(rig: Rig) -> None:
    box = f"victim{uuid.uuid4().hex[:6]}"
    for i in range(8):
        address = f"{box}+{i}@Example.ORG" if i % 2 else f"{box.upper()}+{i}@example.org"
        tandem = await put_tandem(rig.db, mentee_email=address)
        token = await mint_token(rig.db, rig.settings, tandem, Role.MENTEE, RequestKind.DECISION)
        row = await rig.deliver(
            reply_mail(rig.settings, token, sender=tandem.mentee_email, text="Wie bitte?")
        )
        assert row["reason"] == "not_understood"
    assert len(rig.sender.sent) == 1


# -- 3. strangers and made-up tokens: no mail at all ----------------------------------------------


async def test_a_made_up_token_over_imap_gets_no_reply(rig: Rig) -> None:
    made_up = "q" * 26
    msg = reply_mail(rig.settings, made_up, sender=rig.tandem.mentee_email, text="Stop")
    row = await rig.deliver(msg)
    _unchanged(rig, row, "refused", "unknown_token")
    assert rig.sender.sent == []


async def test_expired_revoked_and_foreign_tokens_get_no_reply(rig: Rig) -> None:
    from datetime import timedelta

    expired = await mint_token(
        rig.db, rig.settings, rig.tandem, Role.MENTEE, expires_in=timedelta(seconds=-1)
    )
    revoked = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE, revoked=True)
    valid = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTOR)
    cases = [
        (expired, rig.tandem.mentee_email, "expired_token"),
        (revoked, rig.tandem.mentee_email, "revoked_token"),
        (valid, "fremd@example.com", "sender_mismatch"),
        (valid, rig.tandem.mentee_email, "sender_mismatch"),
    ]
    for token, sender, reason in cases:
        row = await rig.deliver(reply_mail(rig.settings, token, sender=sender, text="ja"))
        _unchanged(rig, row, "refused", reason)
    assert rig.sender.sent == []


# -- 4. senders that only look like the person on file ------------------------------------------


def _forged_froms(mentee: str) -> list[list[str]]:
    local, _, domain = mentee.partition("@")
    return [
        [f"{mentee} <attacker@evil.org>"],
        [f"{mentee})<attacker@evil.org>"],
        [f"=?utf-8?q?{local}=40{domain}?="],
        [f"=?utf-8?q?{local}=40{domain}?= <attacker@evil.org>"],
        [f'"{mentee}" <attacker@evil.org>'],
        [mentee, "attacker@evil.org"],
        [mentee, mentee],
        [f"Team: {mentee};"],
        [f"Team: {mentee}, attacker@evil.org;"],
        [f"{mentee} (Jonas)"],
        [f"attacker@evil.org ({mentee})"],
        [f"({mentee}) <attacker@evil.org>"],
        [f"Jonas <attacker@evil.org> {mentee}"],
        [f"{mentee}, attacker@evil.org"],
        [f"<{mentee}> <attacker@evil.org>"],
        [f"Jonas <@evil.org:{mentee}>"],
        [f'"Jonas" <"{local}"@{domain}>'],
        [f"{local}@{domain}.evil.org"],
    ]


@pytest.mark.parametrize("case", range(len(_forged_froms("a@b.c"))))
async def test_a_from_that_only_looks_like_the_mentee_is_refused(rig: Rig, case: int) -> None:
    froms = _forged_froms(rig.tandem.mentee_email)[case]
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    msg = reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="Stop")
    row = await rig.deliver(with_from(msg, *froms))
    _unchanged(rig, row, "refused", "sender_mismatch")
    assert rig.sender.sent == []


@pytest.mark.parametrize(
    "template",
    [
        "{m}",
        "<{m}>",
        "Jonas Beispiel <{m}>",
        '"Beispiel, Jonas" <{m}>',
        "=?utf-8?q?J=C3=B6nas_B.?= <{m}>",
        '"{m}" <{m}>',
        "{M}",
    ],
)
async def test_an_ordinary_from_of_the_mentee_is_taken(rig: Rig, template: str) -> None:
    m = rig.tandem.mentee_email
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    msg = reply_mail(rig.settings, token, sender=m, text="ja")
    row = await rig.deliver(with_from(msg, template.format(m=m, M=m.upper())))
    assert (row["verdict"], row["reason"]) == ("accepted", "answered")


@pytest.mark.parametrize(
    ("results", "taken"),
    [
        ([], False),
        (["mx.tandem.invalid; dmarc=fail header.from={d}"], False),
        (["mx.tandem.invalid; dmarc=none header.from={d}"], False),
        (["mx.tandem.invalid; dmarc=pass header.from=evil.org"], False),
        (["mx.tandem.invalid; dmarc=pass"], False),
        (["other.example.org; dmarc=pass header.from={d}"], False),
        # Ours is the topmost; one an attacker wrote further down does not count.
        (
            [
                "mx.tandem.invalid; dmarc=fail header.from={d}",
                "mx.tandem.invalid; dmarc=pass header.from={d}",
            ],
            False,
        ),
        (["mx.tandem.invalid; dmarc=pass (p=none) header.from={d}"], True),
        (["MX.tandem.invalid 1; spf=pass smtp.mailfrom={d}; dmarc=pass header.from={D}"], True),
    ],
)
async def test_with_a_trusted_authserv_id_only_dmarc_pass_for_the_from_domain_counts(
    rig: Rig, results: list[str], taken: bool
) -> None:
    rig.use(
        pipeline_config(
            rig.settings.model_copy(update={"gateway_trusted_authserv_id": "mx.tandem.invalid"})
        )
    )
    m = rig.tandem.mentee_email
    domain = m.partition("@")[2]
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    msg = reply_mail(rig.settings, token, sender=m, text="ja")
    raw = bytes(msg)
    for value in reversed(results):
        line = "Authentication-Results: " + value.format(d=domain, D=domain.upper())
        raw = line.encode() + b"\n" + raw
    row = await rig.deliver(raw)
    if taken:
        assert row["verdict"] == "accepted"
    else:
        _unchanged(rig, row, "refused", "unauthenticated")
        assert rig.sender.sent == []


# -- 5. a replayed Message-ID -------------------------------------------------------------------


async def test_a_replayed_message_id_with_another_text_changes_nothing_and_sends_nothing(
    rig: Rig,
) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    mid = f"<{uuid.uuid4().hex}@client.example.org>"
    first = reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="ja", mid=mid)
    assert (await rig.deliver(first))["verdict"] == "accepted"
    [confirmation] = rig.sender.sent
    await rig.db.execute("DELETE FROM reply_notice_counts")  # even on another day
    replay = reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="Stop", mid=mid)
    row = await rig.deliver(replay)
    assert (row["verdict"], row["reason"], row["intent"]) == ("accepted", "duplicate", None)
    assert len(rig.answerer.calls) == 1
    assert rig.sender.sent == [confirmation]


async def test_a_mail_whose_confirmation_failed_is_confirmed_once_on_the_next_attempt(
    rig: Rig,
) -> None:
    rig.sender.fail_times = 1  # the workflow took the answer, then the relay was away
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    msg = reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="ja")
    row = await rig.deliver(msg)
    assert (row["verdict"], row["attempts"]) == ("accepted", 2)
    assert len(rig.answerer.calls) == 2  # the update is idempotent: the same answer id
    assert len(rig.sender.sent) == 1


async def test_a_mail_whose_first_attempt_crashed_before_the_answer_is_taken(rig: Rig) -> None:
    rig.answerer.fail_times = 2
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    row = await rig.deliver(
        reply_mail(rig.settings, token, sender=rig.tandem.mentee_email, text="ja")
    )
    assert (row["verdict"], row["reason"]) == ("accepted", "answered")
    assert len(rig.sender.sent) == 1


# -- 6. no raw token in a Message-ID -------------------------------------------------------------


def test_a_request_message_id_carries_a_reference_not_the_token() -> None:
    token = "abcdefghijklmnopqrstuvwxyz"
    mid = message_id("key", "tandem.invalid", token)
    assert token not in mid.lower()
    assert len(mid) < 78 - len("In-Reply-To: ")  # one header line, never an encoded word
    assert token_ref_from_message_id(mid, "tandem.invalid") == token_hash(token)[:15]
    assert token_ref_from_message_id(mid, "other.invalid") is None
    assert token_from_message_id(mid, "tandem.invalid") is None
    # Ids of mails sent before still find their request.
    old = f"<{'0' * 20}.{token}@tandem.invalid>"
    assert token_ref_from_message_id(old, "tandem.invalid") == token_hash(token)


async def test_a_reply_found_only_by_its_references_is_taken_without_a_reply_to(
    rig: Rig,
) -> None:
    token = await mint_token(rig.db, rig.settings, rig.tandem, Role.MENTEE)
    msg = reply_mail(
        rig.settings, token, sender=rig.tandem.mentee_email, text="ja", to="someone@elsewhere.org"
    )
    assert token not in str(msg["In-Reply-To"])
    row = await rig.deliver(msg)
    assert (row["verdict"], row["reason"]) == ("accepted", "answered")
    [confirmation] = rig.sender.sent
    assert confirmation["Reply-To"] is None


async def test_the_mail_activity_keeps_no_raw_token_in_outbox_result_or_log(
    db: asyncpg.Pool, settings: Settings, sink: MailSink
) -> None:
    import structlog

    from activities.mail import Outbox
    from tandem.messages import MailRequest
    from tandem.programs import load_programs
    from tests.support import mentee, put_people

    the_mentee = mentee(f"o{uuid.uuid4().hex[:6]}-S1")
    await put_people(db, [], [the_mentee])
    programs = load_programs(settings.programs_dir)
    outbox = Outbox(db, settings, SmtpSender(settings), programs)
    request = MailRequest.model_validate(
        {
            "idempotency_key": f"{the_mentee.id}/nudge/1/mentee",
            "template": "nudge",
            "to": "mentee",
            "mentee_id": the_mentee.id,
            "program": the_mentee.program,
            "phase": "study",
            "request_id": "nudge/1",
        }
    )
    with structlog.testing.capture_logs() as logs:
        receipt = await outbox.send(request)
    [sent] = [m for m in sink.messages() if m["To"] == the_mentee.email]
    token = str(sent["Reply-To"]).partition("+")[2].partition("@")[0]
    assert len(token) == 26
    ref = token_ref_from_message_id(str(sent["Message-ID"]), settings.mail_domain)
    assert ref == token_hash(token)[:15]
    row = await db.fetchrow("SELECT * FROM outbox")
    assert token not in " ".join(str(v) for v in row.values())
    assert token not in receipt.message_id
    assert receipt.message_id == f"<{receipt.message_id[1:21]}@{settings.mail_domain}>"
    assert token not in str(logs)


# -- 7. bounded work per mail --------------------------------------------------------------------

MARKER = "-- Bitte oberhalb dieser Zeile antworten --"


def _nested(depth: int) -> str:
    parts = [
        f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n" for i in range(depth)
    ]
    return "".join(parts) + f"--b{depth}\r\nContent-Type: text/plain\r\n\r\nja\r\n"


def _pathological(settings: Settings, token: str, sender: str) -> list[bytes]:
    head = (
        f"From: {sender}\r\nTo: {settings.reply_address(token)}\r\nSubject: AW: x\r\n"
        "MIME-Version: 1.0\r\n"
    )

    def mail(content_type: str, body: str) -> bytes:
        """SMTP lines are short: long lines travel quoted-printable, as clients send them."""
        mid = f"Message-ID: <{uuid.uuid4().hex}@client.example.org>\r\n"
        if max(len(line) for line in body.splitlines()) > 900:
            encoded = quopri.encodestring(body.encode()).decode().replace("\n", "\r\n")
            cte = "Content-Transfer-Encoding: quoted-printable\r\n"
            return f"{head}{mid}Content-Type: {content_type}\r\n{cte}\r\n{encoded}".encode()
        return f"{head}{mid}Content-Type: {content_type}\r\n\r\n{body}".encode()

    return [
        mail("text/plain", " " * 40_000 + "x\r\n" + MARKER + "\r\n"),
        mail("text/plain", "\t " * 20_000 + "x\r\n" + "-" * 30_000 + "\r\n" + MARKER + "\r\n"),
        mail("multipart/mixed; boundary=b0", _nested(3000)),
        mail("text/plain", "x\r\n" * 100_000),
        mail("text/html", "<div>" * 50_000 + " " * 40_000 + "x<br>" + MARKER),
    ]


async def test_pathological_mails_are_decided_quickly_off_the_event_loop(
    db: asyncpg.Pool, settings: Settings
) -> None:
    tandem = await put_tandem(db)
    token = await mint_token(db, settings, tandem, Role.MENTEE)
    answerer = FakeAnswerer()

    class _Quiet:
        async def confirm(self, *a: object, **k: object) -> None: ...
        async def help(self, *a: object, **k: object) -> None: ...
        async def ask_to_confirm(self, *a: object, **k: object) -> None: ...

    from replies.directory import PgDirectory

    pipeline = Pipeline(pipeline_config(settings), PgDirectory(db), answerer, _Quiet())  # type: ignore[arg-type]
    for i, raw in enumerate(_pathological(settings, token, tandem.mentee_email)):
        started = time.monotonic()
        verdict = await pipeline.process(Inbound(i, raw, datetime.now(UTC), (token,)))
        assert time.monotonic() - started < 5, i
        assert verdict.kind in (VerdictKind.REFUSED, VerdictKind.MALFORMED, VerdictKind.ACCEPTED)


@pytest_asyncio.fixture
async def gateway(
    db: asyncpg.Pool, settings: Settings, sink: MailSink
) -> AsyncIterator[ReplyGateway]:
    policy = RetryPolicy(first_delay=0.05, max_delay=0.2, poll=0.5)
    gw = ReplyGateway(settings, db, FakeAnswerer(), SmtpSender(settings), policy=policy, port=0)
    await gw.start()
    yield gw
    await gw.stop()


async def test_the_smtp_gateway_keeps_answering_while_it_decides_pathological_mails(
    gateway: ReplyGateway, db: asyncpg.Pool, settings: Settings
) -> None:
    tandem = await put_tandem(db)
    token = await mint_token(db, settings, tandem, Role.MENTEE)
    mails = _pathological(settings, token, tandem.mentee_email) * 2
    probe = aiosmtplib.SMTP(hostname="127.0.0.1", port=gateway.port, timeout=30)
    await probe.connect()
    slowest = 0.0
    done = asyncio.Event()

    async def deliver() -> None:
        try:
            for raw in mails:
                await aiosmtplib.send(
                    raw,
                    sender=tandem.mentee_email,
                    recipients=[settings.reply_address(token)],
                    hostname="127.0.0.1",
                    port=gateway.port,
                    timeout=60,
                )
            await settle(db, len(mails), timeout=120)
        finally:
            done.set()

    task = asyncio.create_task(deliver())
    try:
        while not done.is_set():
            started = time.monotonic()
            await probe.ehlo()
            await probe.noop()
            slowest = max(slowest, time.monotonic() - started)
            await asyncio.sleep(0.02)
        await task
    finally:
        task.cancel()
        await probe.quit()
    assert slowest < 1.0
    rows = await settle(db, len(mails))
    assert all(r["verdict"] in ("refused", "malformed", "accepted") for r in rows)


async def test_over_imap_a_reply_found_only_by_its_reference_is_fetched_and_taken(
    db: asyncpg.Pool, settings: Settings, sink: MailSink, tmp_path: object
) -> None:
    from pathlib import Path

    from tests.support import eventually
    from tests.test_reply_imap import gateway_with_imap, imap_server, imap_settings

    answerer = FakeAnswerer()
    with imap_server() as server:
        cfg = imap_settings(settings, server, Path(str(tmp_path)))
        tandem = await put_tandem(db)
        token = await mint_token(db, settings, tandem, Role.MENTEE)
        msg = reply_mail(settings, token, sender=tandem.mentee_email, text="ja")
        del msg["To"]
        msg["To"] = "mentoring@tandem.invalid"  # the reply address was rewritten on the way
        async with gateway_with_imap(cfg, db, answerer):
            await server.append(bytes(msg))
            [row] = await settle(db, 1, timeout=30)
            await eventually(server.messages, lambda found: found == [], timeout=10)
    assert (row["verdict"], row["reason"]) == ("accepted", "answered")
    assert len(answerer.calls) == 1
