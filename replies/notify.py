"""The short mails about a reply: a confirmation of what we understood, or a help text.

Confirmations go to the person on file, threaded under their reply, with the same reply
address, so a correction is one more reply. Every one carries ``Auto-Submitted:
auto-replied`` (RFC 3834: no auto-reply to it) and a Message-ID derived from the reply's, so
a retry sends the very same mail.

Nothing here can be made to send much: per day, at most one confirmation per answer and per
request and person, at most one help text or question per person and per mailbox (plus-tags
and case folded: ``Victim+3@X`` is ``victim@x``), at most ``NOTICES_PER_DAY`` mails about
replies per person in a tandem and ``NOTICES_PER_MAILBOX_PER_DAY`` per mailbox (higher: a
mentor of several tandems who answers each of them the same day hears back on each). The
counts are kept per keyed hash of the scope (HMAC with the reply-token secret), never as an
id or an address. A help text in answer to one of our own notices that was not understood is
not sent at all (that is how loops start).
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

#: Mails about replies one person in one tandem gets a day, whatever they send.
NOTICES_PER_DAY = 3
#: Mails about replies one mailbox gets a day, over all the tandems it is in: a loop or a
#: flood still ends there, and a mentor of ten tandems answering all of them is confirmed.
NOTICES_PER_MAILBOX_PER_DAY = 30


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
        # One confirmation per answer (``duplicate``: our own retry after a crash, confirmed
        # only if the first attempt did not) and per request and person a day.
        scopes = [(f"confirm-answer:{ctx.answer_id}", 1)]
        if ctx.request_id is not None:
            scopes.append((f"confirm-request:{_person(ctx, to)}/{ctx.request_id}", 1))
        await self._limited(to.email, ctx, message, scopes, "confirmed")

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
        if ctx.answers_notice and reading is not None:
            log.info("reply_help_skipped", answer_id=ctx.answer_id[:16], why="answers_notice")
            return
        await self._limited(to.email, ctx, message, self._help_scopes(to, ctx), "help")

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
        await self._limited(to.email, ctx, message, self._help_scopes(to, ctx), "question")

    # -- helpers

    def _help_scopes(self, to: Person, ctx: ReplyContext) -> list[tuple[str, int]]:
        """One help text or question a day per person and per mailbox."""
        return [(f"help-person:{_person(ctx, to)}", 1), (f"help-mailbox:{_mailbox(to.email)}", 1)]

    async def _limited(
        self,
        address: str,
        ctx: ReplyContext,
        message: EmailMessage,
        scopes: list[tuple[str, int]],
        what: str,
    ) -> None:
        """Send unless one of the scopes had its share today (every mail also counts for the
        person and the mailbox); a failed send gives the shares back."""
        scopes = [
            *scopes,
            (f"notice-person:{_person(ctx, None) or _mailbox(address)}", NOTICES_PER_DAY),
            (f"notice-mailbox:{_mailbox(address)}", NOTICES_PER_MAILBOX_PER_DAY),
        ]
        keys = sorted({(self._scope_key(scope), limit) for scope, limit in scopes})
        day = ctx.received_at.astimezone(UTC).date()
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    for key, limit in keys:  # in key order: no deadlock between two mails
                        claimed = await conn.fetchval(
                            "INSERT INTO reply_notice_counts AS c (scope_key, day, sent)"
                            " VALUES ($1, $2, 1) ON CONFLICT (scope_key, day) DO UPDATE"
                            " SET sent = c.sent + 1 WHERE c.sent < $3 RETURNING sent",
                            key,
                            day,
                            limit,
                        )
                        if claimed is None:
                            raise _Limited
            except _Limited:
                log.info("reply_notice_skipped", answer_id=ctx.answer_id[:16], what=what)
                return
            await conn.execute("DELETE FROM reply_notice_counts WHERE day < $1::date - 7", day)
        try:
            sent = await self._send(message, ctx)
        except BaseException:
            async with self._pool.acquire() as conn, conn.transaction():
                for key, _ in keys:
                    await conn.execute(
                        "UPDATE reply_notice_counts SET sent = sent - 1"
                        " WHERE scope_key = $1 AND day = $2 AND sent > 0",
                        key,
                        day,
                    )
            raise
        if sent:
            log.info("reply_notice_sent", answer_id=ctx.answer_id[:16], what=what)

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

    def _scope_key(self, scope: str) -> bytes:
        return hmac.new(self._secret, scope.encode(), hashlib.sha256).digest()

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


class _Limited(Exception):
    """Internal: a scope had its share of mails today."""


def _person(ctx: ReplyContext, to: Person | None) -> str:
    """The person a reply is from, by ids (tandem, role, person); by mailbox without them."""
    if ctx.mentee_id and ctx.role is not None and ctx.person_id:
        return f"{ctx.mentee_id}/{ctx.role.value}/{ctx.person_id}"
    return _mailbox(to.email) if to is not None else ""


def _mailbox(address: str) -> str:
    """The mailbox an address reaches: case and plus-tag folded (``A+x@B`` -> ``a@b``)."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.partition('+')[0]}@{domain}"


def _date(value: date, language: str) -> str:
    return value.strftime("%d.%m.%Y") if language == "de" else value.isoformat()
