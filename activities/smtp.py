"""Hands a finished message to the SMTP relay (the dev sink, Mailpit, or the office's relay).

The relay's answers are sorted here, and nothing the relay said leaves this module except its
codes, because its text often repeats the recipient's address:

- ``MailRefused``: the relay refused this mail for good (5xx to the recipient or the data).
  The outbox records it as a fact and the tandem goes on.
- a retryable ``ApplicationError``: 4xx, a dropped connection, a timeout, a relay that is
  down, or a relay that refuses *us* (sender, login) — a problem of the setup, not of the mail.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from email.message import Message

import aiosmtplib
from temporalio.exceptions import ApplicationError

from tandem.settings import Settings

#: Seconds one send may take in all; a worker's graceful shutdown outlasts it.
SEND_TIMEOUT = 20

_ENHANCED_STATUS = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})(?!\S)")


class MailRefused(Exception):
    """A permanent refusal of one mail; ``failure`` is e.g. ``550 5.1.1`` and nothing else."""

    def __init__(self, failure: str) -> None:
        super().__init__(f"mail refused by the relay: {failure}")
        self.failure = failure


def smtp_code(code: int, message: str) -> str:
    """``550 5.1.1``: the reply code and the enhanced status code, never the relay's text."""
    match = _ENHANCED_STATUS.match(message or "")
    return f"{code} {match.group(1)}" if match else str(code)


def classify(err: BaseException) -> BaseException:
    """The error to raise instead of ``err``: ``MailRefused`` or a scrubbed retryable one."""
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused):
        refusals = err.recipients
        codes = [smtp_code(r.code, r.message) for r in refusals]
        if refusals and all(500 <= r.code < 600 for r in refusals):
            return MailRefused(", ".join(codes))
        return _retry("SmtpDeferred", f"the relay deferred the recipient: {', '.join(codes)}")
    if isinstance(err, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        code = smtp_code(err.code, err.message)
        if 500 <= err.code < 600:
            return MailRefused(code)
        return _retry("SmtpDeferred", f"the relay deferred the mail: {code}")
    if isinstance(err, aiosmtplib.SMTPSenderRefused | aiosmtplib.SMTPAuthenticationError):
        # Refuses us, not this mail: every mail would fail the same way until the setup is
        # fixed, so it is retried (and, after the activity's bound, the office is told).
        code = smtp_code(err.code, err.message)
        return _retry("SmtpSetupRefused", f"the relay refuses our sender or login: {code}")
    if isinstance(err, aiosmtplib.SMTPResponseException):
        return _retry("SmtpDeferred", f"the relay answered {smtp_code(err.code, err.message)}")
    if isinstance(err, aiosmtplib.SMTPException | OSError | TimeoutError):
        return _retry("SmtpUnavailable", f"the relay could not be reached ({type(err).__name__})")
    return _retry("SmtpError", f"sending failed ({type(err).__name__})")


def _retry(kind: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=kind)


#: Idle relay sessions a sender keeps for the next mails (one per concurrent send, at most).
IDLE_SESSIONS = 8
#: An idle session older than this is closed, not reused: relays hang up on idle clients.
IDLE_FOR_AT_MOST = 30.0
#: An idle session is asked NOOP before it carries a mail once it has been idle this long;
#: within a burst the next mail follows at once and the relay's hang-up shows as a closed
#: connection (the rare one that crosses the mail is a retryable error: the outbox retries).
CHECK_IDLE_AFTER = 1.0
#: Mails per session, then a fresh one (relays limit them, e.g. Postfix's 100 per session).
MAILS_PER_SESSION = 50


@dataclass
class _Session:
    smtp: aiosmtplib.SMTP
    mails: int = 0
    idle_since: float = field(default_factory=time.monotonic)


class SmtpSender:
    """Sends over a few relay sessions kept open between mails: a session's connect, EHLO,
    STARTTLS and login are paid once per ``MAILS_PER_SESSION`` mails, not per mail. A session
    idle for a while is checked with NOOP before it carries a mail; a session that failed in
    any way is closed, never reused."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._idle: list[_Session] = []
        self._closing: set[asyncio.Task[None]] = set()

    async def send(self, message: Message) -> None:
        """Raises ``MailRefused`` or a retryable ``ApplicationError``; never the relay's text.

        Returns as soon as the relay accepted the data, so the caller marks the mail sent at
        once (the shorter the time between the relay's 250 and that mark, the smaller the
        chance that a crash sends a mail twice)."""
        session: _Session | None = None
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                session = await self._session()
                await session.smtp.send_message(message)
        except Exception as err:  # every error is sorted and scrubbed here
            if session is not None:
                session.smtp.close()
            raise classify(err) from None
        session.mails += 1
        self._give_back(session)

    async def close(self) -> None:
        """Say QUIT on every idle session (a worker that stops)."""
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(s.smtp) for s in idle))

    async def _session(self) -> _Session:
        """An idle session that still answers, else a new one."""
        while self._idle:
            session = self._idle.pop()
            idle = time.monotonic() - session.idle_since
            if idle > IDLE_FOR_AT_MOST:
                self._quit_later(session)
                continue
            if not session.smtp.is_connected:
                session.smtp.close()
                continue
            if idle > CHECK_IDLE_AFTER:
                try:
                    await session.smtp.noop()
                except Exception:  # the relay hung up meanwhile (a restart, its idle limit)
                    session.smtp.close()
                    continue
            return session
        s = self._settings
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=SEND_TIMEOUT,
        )
        try:
            await smtp.connect()
        except BaseException:
            smtp.close()
            raise
        return _Session(smtp)

    def _give_back(self, session: _Session) -> None:
        if session.mails >= MAILS_PER_SESSION or len(self._idle) >= IDLE_SESSIONS:
            self._quit_later(session)
            return
        session.idle_since = time.monotonic()
        self._idle.append(session)

    def _quit_later(self, session: _Session) -> None:
        closing = asyncio.create_task(_quit(session.smtp))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    try:
        async with asyncio.timeout(5):
            await smtp.quit()
    except Exception:  # the mail is accepted; a relay that hangs up on QUIT changes nothing
        smtp.close()
