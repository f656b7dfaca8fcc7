"""The short mails about a reply: a confirmation of what we understood, or a help text.

Confirmations go to the person on file, threaded under their reply, with the same reply
address, so a correction is one more reply. Help texts go out at most once a day per sender
(kept as a keyed hash, never as an address). Every one carries ``Auto-Submitted:
auto-replied`` (RFC 3834: no auto-reply to it) and a Message-ID derived from the reply's, so
a retry sends the very same mail.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol

import aiosmtplib
import asyncpg
import structlog

from replies.pipeline import Person, ReplyContext
from tandem.answers import Answer, Intent, RequestKind
from tandem.mail import message_id, message_ids, render
from tandem.reply_grammar import CONFIRM_WORDS, Reading, allowed_intents
from tandem.settings import Settings

log = structlog.get_logger(__name__)


class Sender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class MailNotifier:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, sender: Sender) -> None:
        self._pool = pool
        self._settings = settings
        self._sender = sender
        self._secret = settings.reply_token_secret.get_secret_value().encode()

    async def confirm(
        self,
        to: Person,
        ctx: ReplyContext,
        kind: RequestKind,
        answer: Answer,
        *,
        duplicate: bool = False,
    ) -> None:
        language = to.language.value
        details = answer.details
        mail = render(
            "reply_confirmed",
            language,
            {
                "recipient": to,
                "intent": answer.intent.value,
                "kind": kind.value,
                "met_on": _date(details.met_on, language) if details.met_on else None,
                "snooze_weeks": details.snooze_weeks,
            },
        )
        message = self._message(to.email, mail.subject, mail.body, ctx, "confirmed", ctx.token)
        if duplicate:  # a replayed mail must not become a way to send mail to someone
            await self._once_a_day(to.email, ctx, message)
        elif await self._send(message, ctx):
            log.info("reply_confirmed", answer_id=ctx.answer_id[:16])

    async def help(
        self, to: Person, ctx: ReplyContext, kind: RequestKind, reading: Reading | None
    ) -> None:
        if kind is RequestKind.OFFICE:
            reason, allowed = "no_request", []
        else:
            reason = "not_understood" if reading is not None else "refused"
            allowed = [i.value for i in allowed_intents(kind)]
        context: dict[str, Any] = {
            "recipient": to,
            "reason": reason,
            "kind": kind.value,
            "allowed": allowed,
        }
        mail = render("reply_help", to.language.value, context)
        token = ctx.token if allowed else None
        message = self._message(to.email, mail.subject, mail.body, ctx, "help", token)
        await self._once_a_day(to.email, ctx, message)

    async def ask_to_confirm(
        self, to: Person, ctx: ReplyContext, kind: RequestKind, intent: Intent
    ) -> None:
        language = to.language.value
        context: dict[str, Any] = {
            "recipient": to,
            "kind": kind.value,
            "intent": intent.value,
            "phrase": CONFIRM_WORDS[intent][language if language in ("de", "en") else "de"],
        }
        mail = render("reply_confirm_question", language, context)
        message = self._message(to.email, mail.subject, mail.body, ctx, "question", ctx.token)
        await self._once_a_day(to.email, ctx, message)

    async def neutral_help(self, to_address: str, ctx: ReplyContext) -> None:
        mail = render("reply_neutral", "de", {})
        try:
            message = self._message(to_address, mail.subject, mail.body, ctx, "neutral", None)
        except (ValueError, TypeError, IndexError):
            log.info("reply_help_skipped", answer_id=ctx.answer_id[:16], why="bad_address")
            return
        await self._once_a_day(to_address, ctx, message)

    # -- helpers

    async def _once_a_day(self, address: str, ctx: ReplyContext, message: EmailMessage) -> None:
        """Send unless this sender got a help text today; a failed send frees the day again."""
        key = self._sender_key(address)
        day = ctx.received_at.astimezone(UTC).date()
        async with self._pool.acquire() as conn:
            claimed = await conn.fetchval(
                "INSERT INTO reply_help_sent (sender_key, day) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING RETURNING true",
                key,
                day,
            )
            if not claimed:
                log.info("reply_help_skipped", answer_id=ctx.answer_id[:16], why="sent_today")
                return
            await conn.execute("DELETE FROM reply_help_sent WHERE day < $1::date - 7", day)
        try:
            sent = await self._send(message, ctx)
        except BaseException:
            await self._pool.execute(
                "DELETE FROM reply_help_sent WHERE sender_key = $1 AND day = $2", key, day
            )
            raise
        if sent:
            log.info("reply_help_sent", answer_id=ctx.answer_id[:16])

    async def _send(self, message: EmailMessage, ctx: ReplyContext) -> bool:
        """Send; a permanent refusal by the relay (5xx: no such mailbox) is final, not
        retried. Anything else raises, and the reply is tried again later."""
        try:
            await self._sender.send(message)
        except aiosmtplib.SMTPRecipientsRefused:
            log.warning("reply_notice_refused", answer_id=ctx.answer_id[:16])
            return False
        except aiosmtplib.SMTPResponseException as err:
            if err.code < 500:
                raise
            log.warning("reply_notice_refused", answer_id=ctx.answer_id[:16], code=err.code)
            return False
        return True

    def _sender_key(self, address: str) -> bytes:
        return hmac.new(
            self._secret, b"help-sender:" + address.strip().lower().encode(), hashlib.sha256
        ).digest()

    def _message(
        self,
        to: str,
        subject: str,
        body: str,
        ctx: ReplyContext,
        what: str,
        token: str | None,
    ) -> EmailMessage:
        s = self._settings
        msg = EmailMessage()
        msg["From"] = s.mail_from
        msg["To"] = to
        msg["Subject"] = subject
        msg["Message-ID"] = message_id(f"reply/{ctx.answer_id}/{what}", s.mail_domain)
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Auto-Submitted"] = "auto-replied"
        parent = message_ids(ctx.message_id or "")
        if len(parent) == 1 and parent[0] == (ctx.message_id or "").strip():
            msg["In-Reply-To"] = parent[0]  # only a well-formed id: it is the sender's text
            msg["References"] = parent[0]
        if token:
            msg["Reply-To"] = s.reply_address(token)
        msg.set_content(body)
        return msg


def _date(value: date, language: str) -> str:
    return value.strftime("%d.%m.%Y") if language == "de" else value.isoformat()
