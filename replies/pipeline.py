"""One reply mail in, one verdict out: the whole decision, independent of how the mail came.

Order matters and is the security argument:

1. caps and parsing (``malformed`` when the mail is too big, too odd or undecodable);
2. mail nobody wrote by hand is dropped silently (auto-replies, bounces, our own mail);
3. the reply token must exist, be unexpired and unrevoked when the mail arrived, and the
   ``From`` must be the person the token was made for;
4. only then is the text read, and only intents the request allows count;
5. only then is the workflow asked (``answer`` update, idempotent on the Message-ID hash).

Transient trouble (Temporal, SMTP or the database away) raises ``RetryLater``: the durable
inbox tries again. Nothing here logs or returns a body, a subject or an address.
"""

from __future__ import annotations

import email
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.errors import (
    CloseBoundaryNotFoundDefect,
    InvalidMultipartContentTransferEncodingDefect,
    MessageDefect,
    MissingHeaderBodySeparatorDefect,
    MultipartInvariantViolationDefect,
    NoBoundaryInMultipartDefect,
    StartBoundaryNotFoundDefect,
)
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import getaddresses
from enum import StrEnum
from typing import Protocol

import structlog

from replies.reading import Action, UnreadableMail, read_message
from replies.screening import header, why_automatic
from tandem.answers import Answer, AnswerResult, Intent, RequestKind, request_kind
from tandem.mail import message_ids, token_from_address, token_from_message_id, token_hash
from tandem.models import Language, Role
from tandem.reply_grammar import Reading

log = structlog.get_logger(__name__)


class VerdictKind(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    DROPPED = "dropped"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class Verdict:
    """All that is kept of a reply: what happened and why, with ids only."""

    kind: VerdictKind
    reason: str
    message_id_hash: str
    mentee_id: str | None = None
    role: str | None = None
    request_id: str | None = None
    intent: str | None = None


@dataclass(frozen=True)
class Inbound:
    """A stored mail as the transports hand it over."""

    id: int
    raw: bytes
    received_at: datetime
    #: Tokens of the envelope recipients (SMTP ``RCPT TO``); none for IMAP.
    rcpt_tokens: tuple[str, ...] = ()
    #: ``MAIL FROM:<>``: a bounce or another automatic message.
    null_sender: bool = False


class RetryLater(Exception):
    """Nothing decided: try the same mail again later (the reason is a short code)."""


# -- ports -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRecord:
    mentee_id: str
    role: Role
    person_id: str
    request_id: str
    expires_at: datetime
    revoked_at: datetime | None = None

    def problem_at(self, when: datetime) -> str | None:
        """Why this token did not hold when the mail arrived, or ``None``."""
        if self.revoked_at is not None and self.revoked_at <= when:
            return "revoked_token"
        if self.expires_at <= when:
            return "expired_token"
        return None


@dataclass(frozen=True)
class Person:
    email: str
    first_name: str
    last_name: str
    language: Language


class Directory(Protocol):
    """Look-ups in the data on file (Postgres in production, a dict in property tests)."""

    async def token(self, token_hash: bytes) -> TokenRecord | None: ...

    async def answered_before(self, message_id_hash: str) -> bool:
        """An answer from a mail with this Message-ID was taken already (a re-delivery)."""
        ...

    async def person(self, role: Role, person_id: str) -> Person | None: ...


class AnswerRefused(Exception):
    """The workflow's validator said no (the request is closed, already decided, …)."""


class TandemGone(Exception):
    """No such workflow (any more): the answer can never be taken."""


class Answerer(Protocol):
    """Hands an answer to the tandem workflow. Raises ``AnswerRefused`` or ``TandemGone``
    for a final no; anything else is transient and retried."""

    async def answer(self, mentee_id: str, answer: Answer) -> AnswerResult: ...


@dataclass(frozen=True)
class ReplyContext:
    """What a confirmation or help mail needs to thread under the reply."""

    answer_id: str
    message_id: str | None  # the reply's Message-ID (In-Reply-To of ours)
    received_at: datetime
    token: str | None = None  # the valid token, so our mail's Reply-To can carry it


class Notifier(Protocol):
    """Sends the short mails about a reply; raises on transient trouble (then retried)."""

    async def confirm(
        self,
        to: Person,
        ctx: ReplyContext,
        kind: RequestKind,
        answer: Answer,
        *,
        duplicate: bool = False,
    ) -> None:
        """``duplicate``: the workflow had this answer already (a replay, or our own retry
        after a crash): confirmed again at most once a day."""

    async def help(
        self, to: Person, ctx: ReplyContext, kind: RequestKind, reading: Reading | None
    ) -> None: ...

    async def ask_to_confirm(
        self, to: Person, ctx: ReplyContext, kind: RequestKind, intent: Intent
    ) -> None:
        """A destructive answer not said plainly: ask "you want to end? reply 'Ja, beenden'"."""

    async def neutral_help(self, to_address: str, ctx: ReplyContext) -> None: ...


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 10_000_000
    max_header_bytes: int = 256_000
    max_headers: int = 500
    max_parts: int = 100


@dataclass(frozen=True)
class PipelineConfig:
    mail_domain: str
    reply_domain: str
    office_address: str = ""
    #: Our sending addresses (lower case): mail from them is dropped.
    own_addresses: frozenset[str] = frozenset()
    own_domains: frozenset[str] = frozenset()
    #: ``Authentication-Results`` of this server are trusted (``dmarc=fail`` is refused).
    trusted_authserv_id: str | None = None
    limits: Limits = field(default_factory=Limits)


_STRUCTURAL_DEFECTS: tuple[type[MessageDefect], ...] = (
    NoBoundaryInMultipartDefect,
    StartBoundaryNotFoundDefect,
    CloseBoundaryNotFoundDefect,
    MultipartInvariantViolationDefect,
    InvalidMultipartContentTransferEncodingDefect,
    MissingHeaderBodySeparatorDefect,
)


class _Malformed(Exception):
    """Internal: the mail is quarantined with this reason."""


# -- the pipeline ------------------------------------------------------------------------------


class Pipeline:
    def __init__(
        self,
        config: PipelineConfig,
        directory: Directory,
        answerer: Answerer,
        notifier: Notifier,
    ) -> None:
        self.config = config
        self.directory = directory
        self.answerer = answerer
        self.notifier = notifier

    async def process(self, mail: Inbound) -> Verdict:
        """Decide about one mail. Raises ``RetryLater`` only; never anything else."""
        mid_hash = hashlib.sha256(b"raw:" + mail.raw).hexdigest()
        try:
            msg = self._parse(mail.raw)
            message_id = _message_id(msg)
            if message_id:
                mid_hash = answer_id_for(message_id)
        except _Malformed as err:
            return Verdict(VerdictKind.MALFORMED, str(err), mid_hash)
        except Exception as err:  # the parser on hostile input: quarantine, keep running
            return Verdict(VerdictKind.MALFORMED, f"unparseable:{type(err).__name__}", mid_hash)
        try:
            return await self._decide(mail, msg, message_id, mid_hash)
        except RetryLater:
            raise
        except _Malformed as err:
            return Verdict(VerdictKind.MALFORMED, str(err), mid_hash)
        except Exception as err:
            # Database or SMTP trouble, or a bug: nothing was decided, so try again later.
            raise RetryLater(type(err).__name__) from err

    # -- 1. caps and parsing

    def _parse(self, raw: bytes) -> EmailMessage:
        limits = self.config.limits
        if len(raw) > limits.max_bytes:
            raise _Malformed("too_large")
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        if len(head) > limits.max_header_bytes:
            raise _Malformed("headers_too_large")
        msg = email.message_from_bytes(raw, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        if len(msg.keys()) > limits.max_headers:
            raise _Malformed("too_many_headers")
        for count, part in enumerate(msg.walk(), start=1):
            if count > limits.max_parts:
                raise _Malformed("too_many_parts")
            if any(isinstance(d, _STRUCTURAL_DEFECTS) for d in part.defects):
                raise _Malformed("broken_mime")
        return msg

    # -- 2. to 6.

    async def _decide(
        self, mail: Inbound, msg: EmailMessage, message_id: str | None, mid_hash: str
    ) -> Verdict:
        cfg = self.config
        automatic = why_automatic(
            msg,
            null_sender=mail.null_sender,
            own_addresses=cfg.own_addresses,
            own_domains=cfg.own_domains,
        )
        if automatic is not None:
            return Verdict(VerdictKind.DROPPED, automatic, mid_hash)

        sender = _single_sender(msg)
        ctx = ReplyContext(answer_id=mid_hash, message_id=message_id, received_at=mail.received_at)
        token = self._token(mail, msg)
        if token is None:  # not a reply to us at all: no answer, not even a help text
            return Verdict(VerdictKind.REFUSED, "no_token", mid_hash)
        record = await self.directory.token(token_hash(token))
        if record is None:
            return await self._neutral(
                sender, ctx, Verdict(VerdictKind.REFUSED, "unknown_token", mid_hash)
            )
        ids = {
            "mentee_id": record.mentee_id,
            "role": record.role.value,
            "request_id": record.request_id,
        }
        problem = record.problem_at(mail.received_at)
        if problem is not None:
            return await self._neutral(
                sender, ctx, Verdict(VerdictKind.REFUSED, problem, mid_hash, **ids)
            )
        person = await self.directory.person(record.role, record.person_id)
        if person is None:
            return await self._neutral(
                sender, ctx, Verdict(VerdictKind.REFUSED, "person_gone", mid_hash, **ids)
            )
        if sender is None or sender != person.email.strip().lower():
            return await self._neutral(
                sender, ctx, Verdict(VerdictKind.REFUSED, "sender_mismatch", mid_hash, **ids)
            )
        if self._dmarc_failed(msg):
            return await self._neutral(
                sender, ctx, Verdict(VerdictKind.REFUSED, "unauthenticated", mid_hash, **ids)
            )
        ctx = ReplyContext(mid_hash, message_id, mail.received_at, token)
        try:
            kind = request_kind(record.request_id)
        except ValueError:
            await self.notifier.help(person, ctx, RequestKind.OFFICE, None)
            return Verdict(VerdictKind.REFUSED, "no_request", mid_hash, **ids)

        # 4. the text, read once, never kept
        try:
            reading = read_message(msg, kind, mail.received_at)
        except UnreadableMail as err:
            raise _Malformed(str(err)) from None
        if reading.action is Action.REFUSE or reading.intent is None:
            await self.notifier.help(
                person, ctx, kind, Reading(None, problem="not_understood", found=reading.found)
            )
            return Verdict(
                VerdictKind.REFUSED,
                reading.reason,
                mid_hash,
                intent=reading.found.value if reading.found else None,
                **ids,
            )
        if reading.action is Action.CONFIRM:  # destructive, not said plainly: ask back
            await self.notifier.ask_to_confirm(person, ctx, kind, reading.intent)
            return Verdict(
                VerdictKind.REFUSED,
                "needs_confirmation",
                mid_hash,
                intent=reading.intent.value,
                **ids,
            )

        # 5. the workflow decides
        answer = Answer(
            role=record.role,
            person_id=record.person_id,
            request_id=record.request_id,
            intent=reading.intent,
            details=reading.details,
            answer_id=mid_hash,
        )
        ids["intent"] = reading.intent.value
        try:
            result = await self.answerer.answer(record.mentee_id, answer)
        except AnswerRefused:
            await self.notifier.help(person, ctx, kind, None)
            return Verdict(VerdictKind.REFUSED, "workflow_refused", mid_hash, **ids)
        except TandemGone:
            await self.notifier.help(person, ctx, kind, None)
            return Verdict(VerdictKind.REFUSED, "no_tandem", mid_hash, **ids)
        except Exception as err:
            raise RetryLater(f"answer:{type(err).__name__}") from err
        if not result.accepted:
            await self.notifier.help(person, ctx, kind, None)
            return Verdict(VerdictKind.REFUSED, "workflow_refused", mid_hash, **ids)

        # 6. tell the sender what we understood. The update's id is the answer's, so the
        # server answers a re-delivered mail with the first result: the verdicts tell.
        duplicate = result.duplicate or await self.directory.answered_before(mid_hash)
        await self.notifier.confirm(person, ctx, kind, answer, duplicate=duplicate)
        reason = "duplicate" if duplicate else "answered"
        return Verdict(VerdictKind.ACCEPTED, reason, mid_hash, **ids)

    async def _neutral(self, sender: str | None, ctx: ReplyContext, verdict: Verdict) -> Verdict:
        """Forged, foreign, expired: one neutral help text a day, nothing about the tandem."""
        if sender is not None:
            await self.notifier.neutral_help(sender, ctx)
        return verdict

    def _token(self, mail: Inbound, msg: EmailMessage) -> str | None:
        """The reply token: envelope first, then the addressed headers, then the Message-IDs
        the mail answers (when a mail system rewrote the address)."""
        cfg = self.config
        if mail.rcpt_tokens:
            return mail.rcpt_tokens[0]
        for name in ("Delivered-To", "X-Original-To", "To", "Cc"):
            raw = header(msg, name)
            for _, addr in getaddresses([raw]) if raw else []:
                token = token_from_address(
                    addr, reply_domain=cfg.reply_domain, office_address=cfg.office_address
                )
                if token:
                    return token
        ids = message_ids(header(msg, "In-Reply-To")) + message_ids(header(msg, "References"))[::-1]
        for mid in ids[:20]:
            token = token_from_message_id(mid, cfg.mail_domain)
            if token:
                return token
        return None

    def _dmarc_failed(self, msg: EmailMessage) -> bool:
        trusted = self.config.trusted_authserv_id
        if not trusted:
            return False
        for value in msg.get_all("Authentication-Results") or []:
            text = str(value)
            authserv = text.split(";", 1)[0].strip().split()[0:1]
            if authserv and authserv[0].lower() == trusted.lower():
                return "dmarc=fail" in text.lower().replace(" ", "")
        return False


def answer_id_for(message_id: str) -> str:
    """The answer's idempotency key: the same reply mail is the same answer."""
    return hashlib.sha256(message_id.strip().encode("utf-8", "surrogateescape")).hexdigest()


def _message_id(msg: EmailMessage) -> str | None:
    value = header(msg, "Message-ID")
    return value[:998] if value else None


def _single_sender(msg: EmailMessage) -> str | None:
    """The one address in ``From`` (lower case); ``None`` for none or several."""
    raw = header(msg, "From")
    if not raw:
        return None
    found = [addr for _, addr in getaddresses([raw]) if addr]
    if len(found) != 1 or "@" not in found[0]:
        return None
    return found[0].strip().lower()


def own_addresses(addresses: Sequence[str]) -> frozenset[str]:
    return frozenset(a.strip().lower() for a in addresses if a and "@" in a)
