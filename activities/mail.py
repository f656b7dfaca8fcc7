"""Send a mail exactly once: render, write to the outbox, send over SMTP, mark sent.

The outbox row is keyed by the mail's idempotency key, so a retried activity finds the row
and, once SMTP has accepted it, sends nothing again. The ``Message-ID`` is derived from the
same key, so even a resend after a crash in the instant between "accepted" and "marked"
carries the same id and is recognisable as a duplicate by receivers.

No raw reply token is kept: the outbox row holds the Message-ID with its token reference (the
token's hash) and no ``Reply-To`` (it is derived again from the key when the mail is built),
and the receipt, which lands in workflow history, holds the Message-ID without the reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC
from email import policy
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeAlias

import asyncpg
import structlog
from temporalio.exceptions import ApplicationError

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

from activities import metrics
from activities.people import Conn, get_mentee, get_mentor
from activities.smtp import MailRefused
from tandem.answers import RequestKind, request_id, request_kind
from tandem.mail import (
    RenderedMail,
    bare_message_id,
    mail_context,
    message_id,
    render,
    reply_token,
    token_hash,
)
from tandem.messages import FailedMail, MailReceipt, MailRequest
from tandem.models import Mentee, Mentor, Role
from tandem.programs import Program, ProgramError
from tandem.settings import Settings

log = structlog.get_logger(__name__)

#: Seconds to keep trying to mark a mail the relay accepted (within the activity's 60 s).
MARK_SENT_PATIENCE = 40.0
#: The channel a worker notifies when it hands a mail over, and the one the mailer notifies
#: when a handed-over mail is done (sent or refused); the payload is the idempotency key.
HANDED_OVER = "tandem_outbox"
DONE = "tandem_outbox_done"
#: Seconds a worker waits for a notification before it looks at the row itself (a missed
#: notification, e.g. across a database restart, costs at most this).
LOOK_AGAIN_EVERY = 1.0


@contextlib.asynccontextmanager
async def _mail_lock(conn: Conn, key: str) -> AsyncIterator[None]:
    """One attempt at a time per mail, across workers: a session lock, so each statement
    commits on its own. The mark "sent" is then one statement that commits the moment it
    reaches the server, even if this worker dies right after (a transaction's would be
    rolled back). A worker that dies holding the lock loses it with its connection."""
    await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 7143))", key)
    async with _unlocking(conn, key):
        yield


@contextlib.asynccontextmanager
async def _unlocking(conn: Conn, key: str) -> AsyncIterator[None]:
    """Give back the mail's lock (taken by ``_mail_lock``, or by ``_ENQUEUE`` with the row)."""
    try:
        yield
    finally:
        try:
            await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 7143))", key)
        except BaseException:
            conn.terminate()  # never back to the pool holding the lock: it goes with it
            raise


class Sender(Protocol):
    async def send(self, message: Message) -> None:
        """Raises ``MailRefused`` for a permanent refusal of this mail, else a retryable
        error; neither carries an address."""


class ProgramSource(Protocol):
    def get(self, program_id: str, /) -> Program | None: ...


class Outbox:
    """Sends lifecycle mail through the outbox table (used by ``EffectActivities``)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        sender: Sender,
        programs: ProgramSource,
        *,
        after_accept: Callable[[MailRequest], Awaitable[None]] | None = None,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._sender = sender
        self._programs = programs
        self._hand_over = settings.mail_delivery == "mailer"
        self._done = _DoneListener(pool) if self._hand_over else None
        #: Test hook: runs after SMTP accepted and the outbox was marked (fault injection).
        self._after_accept = after_accept

    async def send(self, request: MailRequest) -> MailReceipt:
        """Send the mail once; a refusal for good comes back as the receipt's ``failure``."""
        async with self._pool.acquire() as conn:
            [receipt] = await self.send_all(conn, [request])
        return receipt

    async def send_all(self, conn: Conn, requests: Sequence[MailRequest]) -> list[MailReceipt]:
        """A transition's mails, in order, on the caller's connection: the tandem's people
        are read once for all of them (``send``, mail by mail)."""
        people = _People(conn)
        receipts = []
        for request in requests:
            receipt = await self._store_and_send(conn, people, request)
            receipts.append(await self._noted(request, receipt) if self._done is None else receipt)
        if self._done is None:
            return receipts
        return [await self._noted(r, await self._done.outcome(r.idempotency_key)) for r in requests]

    async def _store_and_send(
        self, conn: Conn, people: _People, request: MailRequest
    ) -> MailReceipt:
        """Stored, then sent (a mailer sends: handed over, and the receipt a placeholder).
        A row this call stored is locked with it, so it goes straight to the relay."""
        key = request.idempotency_key
        exists = await conn.fetchval("SELECT 1 FROM outbox WHERE idempotency_key = $1", key)
        fresh = None if exists is not None else await self._enqueue(conn, people, request)
        if self._done is not None:
            return MailReceipt(message_id="", newly_sent=False)
        return await self._deliver(conn, key, fresh)

    async def _noted(self, request: MailRequest, receipt: MailReceipt) -> MailReceipt:
        """A mail newly sent is logged (ids only), and the test hook runs."""
        if receipt.newly_sent:
            log.info(
                "mail_sent",
                key=request.idempotency_key,
                template=request.template,
                to_role=request.to.value,
                mentee_id=request.mentee_id,
            )
            if self._after_accept is not None:
                await self._after_accept(request)
        return receipt

    async def send_to_office(
        self, key: str, *, label: str, template: str, to_address: str, mail: RenderedMail
    ) -> MailReceipt:
        """A mail the office gets that no tandem sends (the digest): rendered by the caller,
        stored under ``key`` (``label`` stands where a tandem's mentee id would) and sent
        once, the same way as a tandem's mail. It invites no reply: no reply token."""
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                inserted = await conn.fetchval(
                    """
                    INSERT INTO outbox (idempotency_key, message_id, mentee_id, recipient_role,
                                        recipient_id, template, to_address, reply_to, subject,
                                        body)
                    VALUES ($1, $2, $3, 'coordinator', NULL, $4, $5, NULL, $6, $7)
                    ON CONFLICT (idempotency_key) DO NOTHING
                    RETURNING 1
                    """,
                    key,
                    message_id(key, self._settings.mail_domain),
                    label,
                    template,
                    to_address,
                    mail.subject,
                    mail.body,
                )
                if inserted and self._hand_over:
                    await conn.execute("SELECT pg_notify($1, $2)", HANDED_OVER, key)
            if self._done is None:
                receipt = await self._deliver(conn, key)
        if self._done is not None:
            receipt = await self._done.outcome(key)
        if receipt.newly_sent:
            log.info("mail_sent", key=key, template=template, to_role="coordinator")
        return receipt

    async def resend(self, idempotency_key: str) -> bool:
        """Send a stored, unsent row now (``tandem doctor``, ``tandem retry``); True if it was
        sent by this call. A refused row is tried again only once its address changed."""
        if self._done is not None:
            return await self._resend_by_mailer(idempotency_key)
        async with self._pool.acquire() as conn:
            receipt = await self._deliver(conn, idempotency_key)
        if receipt.newly_sent:
            log.info("mail_resent", key=idempotency_key)
        return receipt.newly_sent

    async def _resend_by_mailer(self, key: str) -> bool:
        """``resend`` when a mailer sends: free the row for it (a refused row only once its
        address changed), then wait until it is done."""
        assert self._done is not None
        async with self._pool.acquire() as conn, _mail_lock(conn, key):
            row = await conn.fetchrow(_ROW_AND_ADDRESS, key)
            if row is None:
                raise ApplicationError("no such outbox row", non_retryable=True, type="UnknownMail")
            if row["sent_at"] is not None:
                return False
            address = _address_now(row)
            if row["failed_at"] is not None and address == row["to_address"]:
                return False
            await conn.execute(
                "UPDATE outbox SET to_address = $2, failed_at = NULL, failure = NULL,"
                " next_attempt_at = NULL WHERE idempotency_key = $1",
                key,
                address,
            )
            await conn.execute("SELECT pg_notify($1, $2)", HANDED_OVER, key)
        receipt = await self._done.outcome(key)
        if receipt.newly_sent:
            log.info("mail_resent", key=key)
        return receipt.newly_sent

    async def deliver(self, idempotency_key: str) -> MailReceipt:
        """The mailer's part: send one handed-over row exactly once, and say it is done."""
        async with self._pool.acquire() as conn:
            receipt = await self._deliver(conn, idempotency_key)
            await conn.execute("SELECT pg_notify($1, $2)", DONE, idempotency_key)
        if receipt.newly_sent:
            log.info("mail_sent", key=idempotency_key)
        return receipt

    async def failed_mail(self, idempotency_key: str) -> FailedMail | None:
        """The stored row as a ``FailedMail`` if the relay refused it (ids and code only)."""
        row = await self._pool.fetchrow(
            "SELECT template, recipient_role, recipient_id, failure FROM outbox"
            " WHERE idempotency_key = $1 AND sent_at IS NULL AND failed_at IS NOT NULL",
            idempotency_key,
        )
        if row is None:
            return None
        return FailedMail(
            idempotency_key=idempotency_key,
            template=row["template"],
            to=Role(row["recipient_role"]),
            person_id=row["recipient_id"],
            failure=row["failure"] or "",
        )

    async def _deliver(self, conn: Conn, key: str, fresh: _Fresh | None = None) -> MailReceipt:
        """Send one stored row exactly once: the row is locked while it is sent and marked, so
        an overlapping attempt (a retry, a second worker, ``tandem doctor``) waits and then
        finds it sent. Until it is sent, the address is the one on file now. ``fresh``: the
        row this attempt just stored, locked already, with its mail built."""
        accepted: list[str] = []  # the Message-ID, once the relay said 250
        try:
            if fresh is None:
                return await self._deliver_locked(conn, key, accepted)
            async with _unlocking(conn, key):
                return await self._send_and_mark(conn, key, fresh.message, fresh.bare, accepted)
        except Exception:
            if accepted:
                # The relay has the mail but the mark was lost (the database went away
                # between the two): mark it on a fresh connection, or a retry sends it again.
                await self._mark_sent_after_all(key)
                return MailReceipt(message_id=accepted[0], newly_sent=True)
            # Counted after the rollback: the attempt was made, whatever became of it.
            with contextlib.suppress(Exception):
                await self._pool.execute(
                    "UPDATE outbox SET attempts = attempts + 1 WHERE idempotency_key = $1", key
                )
            raise

    async def _mark_sent_after_all(self, key: str) -> None:
        """Retried with back-off for most of the activity's time (a database restart takes
        seconds); only if the database stays away longer can the mail be sent twice, and then
        with the same Message-ID."""
        deadline = time.monotonic() + MARK_SENT_PATIENCE
        delay = 0.2
        while True:
            try:
                await self._pool.execute(
                    "UPDATE outbox SET sent_at = now(), failed_at = NULL, failure = NULL,"
                    " attempts = attempts + 1 WHERE idempotency_key = $1 AND sent_at IS NULL",
                    key,
                )
                log.info("mail_marked_after_reconnect", key=key)
                return
            except Exception:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 3.0)

    async def _deliver_locked(self, conn: Conn, key: str, accepted: list[str]) -> MailReceipt:
        async with _mail_lock(conn, key):
            row = await conn.fetchrow(_ROW_AND_ADDRESS, key)
            if row is None:
                raise ApplicationError("no such outbox row", non_retryable=True, type="UnknownMail")
            bare = bare_message_id(row["message_id"])
            if row["sent_at"] is not None:
                log.info("mail_already_sent", key=key)
                return MailReceipt(message_id=bare, newly_sent=False)
            address = _address_now(row)
            if row["failed_at"] is not None and address == row["to_address"]:
                return MailReceipt(message_id=bare, newly_sent=False, failure=row["failure"])
            if address != row["to_address"]:
                await conn.execute(
                    "UPDATE outbox SET to_address = $2, failed_at = NULL, failure = NULL"
                    " WHERE idempotency_key = $1",
                    key,
                    address,
                )
            return await self._send_and_mark(conn, key, self._message(row, address), bare, accepted)

    async def _send_and_mark(
        self, conn: Conn, key: str, message: Message, bare: str, accepted: list[str]
    ) -> MailReceipt:
        """The relay's part, with the mail's lock held: sent and marked, or marked refused."""
        try:
            await self._sender.send(message)
            accepted.append(bare)
        except MailRefused as refusal:
            await conn.execute(
                "UPDATE outbox SET failed_at = now(), failure = $2, attempts = attempts + 1"
                " WHERE idempotency_key = $1",
                key,
                refusal.failure,
            )
            log.warning("mail_refused", key=key, failure=refusal.failure)
            metrics.mail_refused()
            return MailReceipt(message_id=bare, newly_sent=False, failure=refusal.failure)
        await conn.execute(
            "UPDATE outbox SET sent_at = now(), failed_at = NULL, failure = NULL,"
            " attempts = attempts + 1 WHERE idempotency_key = $1",
            key,
        )
        metrics.mail_sent()
        return MailReceipt(message_id=bare, newly_sent=True)

    async def _enqueue(self, conn: Conn, people: _People, request: MailRequest) -> _Fresh | None:
        """Render once and store (and tell the mailer, if one sends); a concurrent or later
        attempt reuses the stored row. Returns the mail if this call stored the row, locked
        with it when this process sends (``None``: another attempt stored it first)."""
        try:
            program = self._programs.get(request.program)
        except ProgramError as err:
            raise ApplicationError(
                f"programme file of {request.program} is invalid: {err}",
                non_retryable=True,
                type="ProgramError",
            ) from None
        if program is None:
            raise ApplicationError(
                f"unknown programme {request.program}", non_retryable=True, type="UnknownProgram"
            )
        mentee = await people.mentee(request.mentee_id)
        mentor = await people.mentor(request.mentor_id) if request.mentor_id else None
        if request.to is Role.MENTOR and request.mentor_id is None:
            raise ApplicationError(
                "mail to the mentor of a tandem without one", non_retryable=True, type="NoMentor"
            )
        if mentee is None or (request.mentor_id and mentor is None):
            raise ApplicationError(
                "person of this tandem is no longer on file",
                non_retryable=True,
                type="UnknownPerson",
            )
        recipient, context = mail_context(request, program, mentee, mentor)
        language = recipient.language.value if recipient else program.language.value
        to_address = recipient.email if recipient else str(program.coordinator_email)
        recipient_id = recipient.id if recipient else None
        if recipient is None and _asks_office(request):
            recipient_id = office_person(program.id)  # the coordinator answers by reply
        mail = render(request.template, language, context)
        secret = self._settings.reply_token_secret.get_secret_value().encode()
        token = reply_token(secret, request.idempotency_key)
        # One statement, so one round trip and atomic all the same: the row, its reply token,
        # and the mail's lock (this process sends) or the notice (a mailer sends).
        stored_id = message_id(
            request.idempotency_key, self._settings.mail_domain, token if recipient_id else None
        )
        stored = await conn.fetchrow(
            _ENQUEUE,
            request.idempotency_key,
            stored_id,
            request.mentee_id,
            request.to.value,
            recipient_id,
            request.template,
            to_address,
            mail.subject,
            mail.body,
            token_hash(token) if recipient_id is not None else None,
            request.request_id or request_id(RequestKind.INFO, request.idempotency_key),
            program.reply_token_valid_for,
            HANDED_OVER if self._hand_over else None,
        )
        if stored is None or stored["created_at"] is None or self._hand_over:
            return None
        row = {
            "idempotency_key": request.idempotency_key,
            "message_id": stored_id,
            "recipient_id": recipient_id,
            "subject": mail.subject,
            "body": mail.body,
            "reply_to": None,
            "created_at": stored["created_at"],
        }
        return _Fresh(self._message(row, to_address), bare_message_id(stored_id))

    def _message(self, row: asyncpg.Record | Mapping[str, Any], to_address: str) -> Message:
        msg = plain_text(row["body"])
        msg["From"] = address_header(self._settings.mail_from)
        msg["To"] = address_header(to_address)
        msg["Subject"] = text_header("Subject", row["subject"])
        msg["Message-ID"] = row["message_id"]
        msg["Date"] = format_datetime(row["created_at"].astimezone(UTC))
        msg["Auto-Submitted"] = "auto-generated"
        reply_to = row["reply_to"]  # rows written before tokens were no longer kept
        if not reply_to and row["recipient_id"] is not None:
            secret = self._settings.reply_token_secret.get_secret_value().encode()
            reply_to = self._settings.reply_address(reply_token(secret, row["idempotency_key"]))
        if reply_to:
            msg["Reply-To"] = reply_to
        return msg


#: SMTP's limit on a line of the body, in bytes, without its CRLF (RFC 5321, 4.5.3.1.6).
MAX_LINE = 998


def plain_text(body: str) -> Message:
    """A text/plain UTF-8 message, built the classic way (``email.mime``): a tenth of the CPU
    of ``EmailMessage.set_content`` with its header registry, which a nudge day's thousands
    of mails pay for (``make bench``). The body goes as 8bit, readable in the raw mail, unless
    a line is too long for SMTP: then as quoted-printable."""
    charset = Charset("utf-8")
    long_line = any(len(line.encode()) > MAX_LINE for line in body.splitlines())
    charset.body_encoding = QP if long_line else None  # type: ignore[assignment]  # 8bit
    return MIMEText(body, "plain", charset)  # type: ignore[arg-type]  # a Charset is taken


def text_header(name: str, value: str) -> str:
    """A header of free text (the subject): RFC 2047 encoded and folded if it is not plain
    ASCII or could be read as encoded (the name counts in the first line's length)."""
    if value.isascii() and "=?" not in value:
        return value
    return Header(value, "utf-8", header_name=name).encode()


@functools.lru_cache(maxsize=256)
def address_header(value: str) -> str:
    """``Name <address>`` as it goes on the wire: a name with umlauts, commas or quotes is
    encoded by the standard header registry (slow, so each distinct value once)."""
    if value.isascii() and not any(c in value for c in ',;"'):
        return value
    folded: str = policy.SMTP.fold("To", policy.SMTP.header_factory("To", value))
    return folded.removeprefix("To: ").rstrip("\r\n")


#: The outbox row (no ``Reply-To``: it is derived again from the key when the mail is built,
#: so no raw token is kept), the reply token's row if the recipient may answer ($10 set), and
#: the mailer's notice if one sends ($13 set), else the mail's lock if the row is new. Both
#: inserts run whatever the query reads; its subqueries make the lock and notice run too.
_ENQUEUE = """
WITH row AS (
    INSERT INTO outbox (idempotency_key, message_id, mentee_id, recipient_role, recipient_id,
                        template, to_address, reply_to, subject, body)
    VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, NULL,
            $8::text, $9::text)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING created_at
), token AS (
    INSERT INTO reply_tokens (token_hash, mentee_id, role, person_id, request_id, expires_at)
    SELECT $10::bytea, $3::text, $4::text, $5::text, $11::text, now() + $12::interval
    WHERE $10::bytea IS NOT NULL
    ON CONFLICT DO NOTHING
), locked AS (
    -- Only a row this statement stored: no other attempt can have seen it, let alone sent
    -- it, before this lock is held (the row is visible from the statement's commit on).
    SELECT pg_advisory_lock(hashtextextended($1::text, 7143)) FROM row WHERE $13::text IS NULL
), notified AS (
    SELECT pg_notify($13::text, $1::text) WHERE $13::text IS NOT NULL
)
SELECT (SELECT created_at FROM row) AS created_at, (SELECT count(*) FROM locked) AS locked,
       (SELECT count(*) FROM notified) AS notified
"""

#: The stored row and its recipient's address on file now (a re-import corrects a wrong one):
#: one round trip.
_ROW_AND_ADDRESS = """
SELECT o.*, CASE o.recipient_role
                WHEN 'mentee' THEN (SELECT email FROM mentees WHERE id = o.recipient_id)
                WHEN 'mentor' THEN (SELECT email FROM mentors WHERE id = o.recipient_id)
            END AS address_on_file
FROM outbox o WHERE o.idempotency_key = $1
"""


def _address_now(row: asyncpg.Record) -> str:
    """The recipient's address on file now; the row's own for the office, or a person no
    longer on file (``_ROW_AND_ADDRESS``)."""
    current = row["address_on_file"]
    return str(current) if current else str(row["to_address"])


def office_person(program_id: str) -> str:
    """The "person" a coordinator's reply token is made for: the programme's office."""
    return f"office:{program_id}"


def _asks_office(request: MailRequest) -> bool:
    """A mail to the office that its reply answers (a proposed match to approve)."""
    if request.request_id is None:
        return False
    try:
        return request_kind(request.request_id) is RequestKind.PROPOSAL
    except ValueError:
        return False


class _DoneListener:
    """A worker's wait for the mailer: one listening connection per process while any mail
    is awaited (back to the pool when none is), an event per mail, and a look at the row
    itself every ``LOOK_AGAIN_EVERY`` seconds."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._waiting: dict[str, list[asyncio.Event]] = {}
        self._conn: Listening | None = None
        self._connecting = asyncio.Lock()

    async def outcome(self, key: str) -> MailReceipt:
        """Returns once the row is sent or refused; a wait cut short by a lost worker is
        taken up by the activity's retry, which finds the row done or waits on."""
        done = asyncio.Event()
        self._waiting.setdefault(key, []).append(done)
        try:
            while True:
                await self._listen()
                receipt = await self._looked_up(key)
                if receipt is not None:
                    return receipt
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), timeout=LOOK_AGAIN_EVERY)
                done.clear()
        finally:
            waiting = self._waiting.get(key, [])
            if done in waiting:
                waiting.remove(done)
            if not waiting:
                self._waiting.pop(key, None)
            await self._unlisten()

    async def _looked_up(self, key: str) -> MailReceipt | None:
        row = await self._pool.fetchrow(
            "SELECT message_id, sent_at, failed_at, failure FROM outbox WHERE idempotency_key = $1",
            key,
        )
        if row is None:
            raise ApplicationError("no such outbox row", non_retryable=True, type="UnknownMail")
        bare = bare_message_id(row["message_id"])
        if row["sent_at"] is not None:
            # "newly" in the worker's sense: the mail went out for this request
            return MailReceipt(message_id=bare, newly_sent=True)
        if row["failed_at"] is not None:
            return MailReceipt(message_id=bare, newly_sent=False, failure=row["failure"])
        return None

    async def _listen(self) -> None:
        """(Re)take the listening connection; without one the periodic look still works."""
        async with self._connecting:
            self._conn = await listening(self._pool, self._conn, DONE, self._notified)

    async def _unlisten(self) -> None:
        async with self._connecting:
            if self._waiting or self._conn is None:
                return
            conn, self._conn = self._conn, None
            await unlisten(self._pool, conn, DONE, self._notified)

    def _notified(self, _conn: object, _pid: int, _channel: str, key: object) -> None:
        for done in self._waiting.get(str(key), []):
            done.set()


Listener = Callable[[Any, int, str, object], None]
Listening: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"


def _alive(conn: Listening) -> bool:
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:  # the pool took it back after its connection was lost
        return False


async def unlisten(pool: asyncpg.Pool, conn: Listening, channel: str, callback: Listener) -> None:
    """Stop listening and give the connection back (a broken one, the pool discards)."""
    with contextlib.suppress(Exception):
        await conn.remove_listener(channel, callback)
    with contextlib.suppress(Exception):
        await pool.release(conn)


async def listening(
    pool: asyncpg.Pool, conn: Listening | None, channel: str, callback: Listener
) -> Listening | None:
    """A pool connection kept for LISTEN on ``channel``: ``conn`` while it is alive, else a
    new one (the old one goes back to the pool, which discards it), or None if the database
    is away just now."""
    if conn is not None and _alive(conn):
        return conn
    if conn is not None:
        await unlisten(pool, conn, channel, callback)
    try:
        fresh = await pool.acquire()
    except Exception:  # the database away just now (refused, reset, shutting down)
        return None
    try:
        await fresh.add_listener(channel, callback)
    except Exception:
        with contextlib.suppress(Exception):
            await pool.release(fresh)
        return None
    return fresh


class _Fresh(NamedTuple):
    """A row this attempt stored (and locked): its mail, built from what was rendered."""

    message: Message
    bare: str


class _People:
    """A transition's mentee and mentor, read once for all of its mails."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn
        self._mentees: dict[str, Mentee | None] = {}
        self._mentors: dict[str, Mentor | None] = {}

    async def mentee(self, mentee_id: str) -> Mentee | None:
        if mentee_id not in self._mentees:
            self._mentees[mentee_id] = await get_mentee(self._conn, mentee_id)
        return self._mentees[mentee_id]

    async def mentor(self, mentor_id: str) -> Mentor | None:
        if mentor_id not in self._mentors:
            self._mentors[mentor_id] = await get_mentor(self._conn, mentor_id)
        return self._mentors[mentor_id]
