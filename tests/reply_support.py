"""Helpers for the reply gateway tests: people and tokens on file, reply mails as clients
write them, and fakes for the workflow side."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import asyncpg

from replies.directory import PgDirectory
from replies.inbox import Inbox, RetryPolicy
from replies.notify import MailNotifier
from replies.pipeline import AnswerRefused, Pipeline, PipelineConfig
from replies.service import pipeline_config
from starter.mail_cmd import text_body
from tandem.answers import Answer, AnswerResult, RequestKind, request_id
from tandem.mail import message_id, reply_token, token_hash
from tandem.models import Language, Mentee, Mentor, Role, TandemStatus
from tandem.settings import Settings
from tests.support import mentee, mentor, put_people

QUOTE_DE = (
    "-- Bitte oberhalb dieser Zeile antworten --\n\nGuten Tag,\n\nhatten Sie Kontakt?\n\n"
    "Antworten Sie einfach mit:\n  ja             \u2013 ich möchte das Tandem fortsetzen\n"
    "  nein           \u2013 ich möchte dieses Tandem nicht fortsetzen\n  Stop\n"
)
QUOTE_EN = (
    "-- Please reply above this line --\n\nDear Lea,\n\nhave you been in touch?\n\n"
    "Simply reply with:\n  yes\n  no\n  stop\n"
)


@dataclass
class Tandem:
    """A mentor and a mentee on file, with helpers to mint their reply tokens."""

    mentee_id: str
    mentor_id: str
    mentee_email: str
    mentor_email: str

    def email(self, role: Role) -> str:
        return self.mentee_email if role is Role.MENTEE else self.mentor_email

    def person_id(self, role: Role) -> str:
        return self.mentee_id if role is Role.MENTEE else self.mentor_id


async def put_tandem(
    pool: asyncpg.Pool,
    prefix: str | None = None,
    *,
    language: Language = Language.DE,
    mentee_email: str | None = None,
) -> Tandem:
    p = prefix or f"r{uuid.uuid4().hex[:6]}"
    extra = {"email": mentee_email} if mentee_email else {}
    m, s = mentor(f"{p}-M", language=language), mentee(f"{p}-S", language=language, **extra)
    await put_people(pool, [m], [s])
    return Tandem(s.id, m.id, str(s.email), str(m.email))


async def mint_token(
    pool: asyncpg.Pool,
    settings: Settings,
    tandem: Tandem,
    role: Role,
    kind: RequestKind = RequestKind.NUDGE,
    *,
    number: int | str = 1,
    expires_in: timedelta = timedelta(days=60),
    revoked: bool = False,
    request: str | None = None,
) -> str:
    """A reply token as activities/mail.py writes it; returns the token."""
    rid = request or request_id(kind, number)
    key = f"{tandem.mentee_id}/{rid}/{role.value}/{uuid.uuid4().hex[:6]}"
    token = reply_token(settings.reply_token_secret.get_secret_value().encode(), key)
    await pool.execute(
        "INSERT INTO reply_tokens (token_hash, mentee_id, role, person_id, request_id,"
        " expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, now() + $6::interval,"
        " CASE WHEN $7 THEN now() - interval '1 minute' END)",
        token_hash(token),
        tandem.mentee_id,
        role.value,
        tandem.person_id(role),
        rid,
        expires_in,
        revoked,
    )
    return token


def reply_mail(
    settings: Settings,
    token: str,
    *,
    sender: str,
    text: str,
    quote: str = QUOTE_DE,
    language: str = "de",
    signature: str | None = None,
    subject: str = "AW: Kurze Nachfrage zu Ihrem Mentoring-Tandem",
    html: bool = False,
    to: str | None = None,
    headers: dict[str, str] | None = None,
    mid: str | None = None,
) -> EmailMessage:
    """A reply as a mail client writes it: text on top, signature, then the quoted original."""
    original_id = message_id(f"orig/{token}", settings.mail_domain, token)
    sent = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    if language == "de":
        attribution = "Am 01.05.2026 um 10:00 schrieb Tandem Mentoring <mentoring@tandem.invalid>:"
        sig = signature if signature is not None else "Viele Grüße\nJonas Beispiel"
    else:
        attribution = (
            "On Fri, 1 May 2026 at 10:00, Tandem Mentoring <mentoring@tandem.invalid> wrote:"
        )
        sig = signature if signature is not None else "Best regards,\nLea"
    quoted = "\n".join(f"> {line}" if line else ">" for line in quote.splitlines())
    body = f"{text}\n\n{sig}\n\n{attribution}\n{quoted}\n"
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to or settings.reply_address(token)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(sent + timedelta(days=2))
    msg["Message-ID"] = mid or f"<{uuid.uuid4().hex}@client.example.org>"
    msg["In-Reply-To"] = original_id
    msg["References"] = original_id
    for name, value in (headers or {}).items():
        msg[name] = value
    if html:
        paragraphs = "".join(f"<div>{line}</div>" for line in f"{text}\n\n{sig}".splitlines())
        msg.set_content(
            f'<html><body>{paragraphs}<br><div class="gmail_quote"><div>{attribution}</div>'
            f'<blockquote class="gmail_quote">{quote.replace(chr(10), "<br>")}</blockquote>'
            "</div></body></html>",
            subtype="html",
        )
    else:
        msg.set_content(body)
    return msg


@dataclass
class FakeAnswerer:
    """Records every call; ``refuse``/``fail_times`` make it say no or fail transiently."""

    calls: list[tuple[str, Answer, float]] = field(default_factory=list)
    refuse: bool = False
    fail_times: int = 0
    status: TandemStatus = TandemStatus.ACTIVE
    seen: set[str] = field(default_factory=set)
    on_call: Callable[[str, Answer], None] | None = None

    async def answer(self, mentee_id: str, answer: Answer) -> AnswerResult:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("no worker yet")
        if self.refuse:
            raise AnswerRefused("this request is closed")
        self.calls.append((mentee_id, answer, time.monotonic()))
        if self.on_call is not None:
            self.on_call(mentee_id, answer)
        duplicate = answer.answer_id in self.seen
        self.seen.add(answer.answer_id)
        return AnswerResult(duplicate=duplicate, status=self.status)


@dataclass
class FakeSender:
    sent: list[EmailMessage] = field(default_factory=list)
    #: Fail this many sends with a transient error first (the relay away).
    fail_times: int = 0

    async def send(self, message: EmailMessage) -> None:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("relay away")
        self.sent.append(message)


def with_from(msg: EmailMessage | bytes, *from_values: str) -> bytes:
    """The mail as bytes with its ``From`` header replaced by these raw header lines, exactly
    as written (no folding, no encoding): what an attacker can put on the wire."""
    raw = msg if isinstance(msg, bytes) else bytes(msg)
    head, sep, body = raw.partition(b"\n\n")
    lines = [ln for ln in head.split(b"\n") if not ln.lower().startswith(b"from:")]
    new = [f"From: {value}".encode("utf-8", "surrogateescape") for value in from_values]
    return b"\n".join(new + lines) + sep + body


async def verdicts(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM reply_verdicts ORDER BY inbound_id")


async def settle(pool: asyncpg.Pool, count: int, timeout: float = 20.0) -> list[asyncpg.Record]:
    """Wait until ``count`` verdicts exist and the inbox is empty."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await verdicts(pool)
        pending = await pool.fetchval("SELECT count(*) FROM inbound_mail")
        if len(rows) >= count and pending == 0:
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(rows)} verdicts, {pending} pending after {timeout}s")
        await asyncio.sleep(0.05)


@dataclass
class Rig:
    """The pipeline with the real notifier and inbox on Postgres, a fake workflow and relay."""

    db: asyncpg.Pool
    settings: Settings
    answerer: FakeAnswerer
    sender: FakeSender
    inbox: Inbox
    tandem: Tandem

    async def deliver(
        self, msg: EmailMessage | bytes, *, null_sender: bool = False
    ) -> asyncpg.Record:
        """Store one mail (as the IMAP transport would: no envelope token) and decide it."""
        raw = msg if isinstance(msg, bytes) else bytes(msg)
        before = len(await verdicts(self.db))
        await self.inbox.store(raw, transport="test", null_sender=null_sender)
        deadline = time.monotonic() + 20
        while len(await verdicts(self.db)) <= before and time.monotonic() < deadline:
            await self.inbox.process_due()
            await asyncio.sleep(0.02)
        rows = await settle(self.db, before + 1)
        return rows[-1]

    def use(self, config: PipelineConfig) -> None:
        """Decide with another pipeline configuration from now on."""
        self.inbox._pipeline = Pipeline(
            config,
            PgDirectory(self.db),
            self.answerer,
            MailNotifier(self.db, self.settings, self.sender),
        )


async def make_rig(db: asyncpg.Pool, settings: Settings) -> Rig:
    answerer, sender = FakeAnswerer(), FakeSender()
    pipeline = Pipeline(
        pipeline_config(settings), PgDirectory(db), answerer, MailNotifier(db, settings, sender)
    )
    inbox = Inbox(db, pipeline, policy=RetryPolicy(first_delay=0.01, max_delay=0.05))
    return Rig(db, settings, answerer, sender, inbox, await put_tandem(db))


def client_reply(
    original: EmailMessage, person: Mentee | Mentor, text: str, n: int
) -> EmailMessage:
    """A reply as a person's mail client writes it: the answer on top, a signature, the
    original below (Thunderbird's "Am … schrieb …:" with "> " quotes, or Outlook's header
    block), threaded, to the Reply-To of the mail it answers."""
    sent = original["Date"].datetime if original["Date"] else datetime.now(UTC)
    name = f"{person.first_name} {person.last_name}"
    msg = EmailMessage()
    msg["From"] = f"{name} <{person.email}>"
    msg["To"] = str(original["Reply-To"])
    msg["Subject"] = f"AW: {original['Subject']}"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(idstring=f"r{n}", domain="mail.example.net")
    parent = str(original["Message-ID"]).strip()
    msg["In-Reply-To"] = parent
    msg["References"] = parent
    original_text = text_body(original)
    if n % 2 == 0:
        msg["User-Agent"] = "Mozilla Thunderbird"
        quoted = "\n".join(f"> {ln}" if ln else ">" for ln in original_text.splitlines())
        body = (
            f"{text}\n\nViele Grüße\n{person.first_name}\n\n-- \n{name}\nTel. 0171 555 01{n:02d}"
            f"\n\nAm {sent:%d.%m.%Y} um {sent:%H:%M} schrieb {original['From']}:\n{quoted}\n"
        )
    else:
        msg["X-Mailer"] = "Microsoft Outlook 16.0"
        body = (
            f"{text}\n\nMit freundlichen Grüßen\n{name}\nPraxis am Markt · Tel. 04321 98 76{n:02d}"
            f"\n\nVon: {original['From']}\nGesendet: {format_datetime(sent)}\n"
            f"An: {original['To']}\nBetreff: {original['Subject']}\n\n{original_text}\n"
        )
    msg.set_content(body)
    return msg
