"""One reply mail in, one verdict out: the whole decision, independent of how the mail came.

Order matters and is the security argument:

1. caps and parsing (``malformed`` when the mail is too big, too odd or undecodable), off
   the event loop and within a time budget, every header fact read once, strictly;
2. mail nobody wrote by hand is dropped silently (auto-replies, bounces, our own mail);
3. the reply token must exist, be unexpired and unrevoked when the mail arrived, the one
   strictly parsed ``From`` must be the person the token was made for and, with a trusted
   ``Authentication-Results`` server, DMARC must pass for its domain. Anything else is
   refused *silently*: a stranger, a forged or stale token never gets mail from us (no
   backscatter, no way to make us write to someone);
4. a Message-ID that was answered already is not read again (a replay with another text
   changes nothing and is not confirmed), and our own texts coming back are dropped (no loop);
5. only then is the text read (capped), and only intents the request allows count;
6. only then is the workflow asked (``answer`` update, idempotent on the Message-ID hash).

Every mail we send about a reply is rate-limited by the notifier (per answer, per request,
per person and per mailbox). Transient trouble (Temporal, SMTP or the database away) raises
``RetryLater``: the durable inbox tries again. Nothing here logs or returns a body, a subject,
an address or a token.
"""

from __future__ import annotations

import asyncio
import email
import hashlib
import re
from collections.abc import Callable, Sequence
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
from typing import Protocol, TypeVar

import structlog

from replies.reading import Action, UnreadableMail, read_message
from replies.screening import (
    MAX_HEADER_CHARS,
    authentication_results,
    dmarc_passed,
    header,
    own_text,
    sender_address,
    why_automatic,
)
from replies.text import UndecodableBody, body_text, reply_text
from tandem.answers import Answer, AnswerResult, Intent, RequestKind, request_kind
from tandem.mail import (
    is_notice_message_id,
    message_ids,
    token_from_address,
    token_hash,
    token_ref_from_message_id,
)
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
    #: "Frau" / "Herr" / "" and an academic title, as on file: the notices greet as mails do.
    salutation: str = ""
    title: str = ""


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
    #: Whose reply it is (what the notifier's rate limits are keyed on).
    mentee_id: str | None = None
    role: Role | None = None
    person_id: str | None = None
    request_id: str | None = None
    #: The reply answers one of our notices (a confirmation, help text or question).
    answers_notice: bool = False


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


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 10_000_000
    max_header_bytes: int = 256_000
    max_headers: int = 500
    max_parts: int = 100
    #: CPU time one mail may take (parsing, reading) before it is quarantined (``too_slow``).
    cpu_seconds: float = 10.0


@dataclass(frozen=True)
class PipelineConfig:
    mail_domain: str
    reply_domain: str
    office_address: str = ""
    #: Our sending addresses (lower case): mail from them is dropped.
    own_addresses: frozenset[str] = frozenset()
    own_domains: frozenset[str] = frozenset()
    #: ``Authentication-Results`` of this server are trusted: then only ``dmarc=pass`` for
    #: the ``From`` domain counts (missing, ``fail``, ``none`` or another domain is refused).
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


class Malformed(Exception):
    """The mail is quarantined with this reason (a short code)."""


def parse_mail(raw: bytes, limits: Limits) -> EmailMessage:
    """Step 1, caps and parsing: the same for every transport and for ``tandem reply read``.
    Raises ``Malformed`` when the mail is too big, too odd or broken."""
    if len(raw) > limits.max_bytes:
        raise Malformed("too_large")
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    if len(head) > limits.max_header_bytes:
        raise Malformed("headers_too_large")
    # Deep MIME nesting makes the parser recurse: count the parts before parsing.
    if len(_CONTENT_TYPE.findall(raw)) > limits.max_parts:
        raise Malformed("too_many_parts")
    msg = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(msg, EmailMessage)
    if len(msg.keys()) > limits.max_headers:
        raise Malformed("too_many_headers")
    for count, part in enumerate(msg.walk(), start=1):
        if count > limits.max_parts:
            raise Malformed("too_many_parts")
        if any(isinstance(d, _STRUCTURAL_DEFECTS) for d in part.defects):
            raise Malformed("broken_mime")
    return msg


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
            msg, facts = await self._off_loop(self._parse, mail.raw)
            if facts.message_id:
                mid_hash = answer_id_for(facts.message_id)
        except Malformed as err:
            return Verdict(VerdictKind.MALFORMED, str(err), mid_hash)
        except Exception as err:  # the parser on hostile input: quarantine, keep running
            return Verdict(VerdictKind.MALFORMED, f"unparseable:{type(err).__name__}", mid_hash)
        try:
            return await self._decide(mail, msg, facts, mid_hash)
        except RetryLater:
            raise
        except Malformed as err:
            return Verdict(VerdictKind.MALFORMED, str(err), mid_hash)
        except Exception as err:
            # Database or SMTP trouble, or a bug: nothing was decided, so try again later.
            raise RetryLater(type(err).__name__) from err

    async def _off_loop(self, work: Callable[..., _T], *args: object) -> _T:
        """CPU work on a mail in a worker thread, within the time budget: the event loop (the
        SMTP sessions) keeps running meanwhile."""
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(work, *args), self.config.limits.cpu_seconds
            )
        except TimeoutError:
            raise Malformed("too_slow") from None

    # -- 1. caps and parsing

    def _parse(self, raw: bytes) -> tuple[EmailMessage, _Facts]:
        msg = parse_mail(raw, self.config.limits)
        return msg, self._facts(msg)

    def _facts(self, msg: EmailMessage) -> _Facts:
        """Everything the decision needs from the headers, read once (in the worker thread)."""
        cfg = self.config
        automatic = why_automatic(
            msg,
            null_sender=False,
            own_addresses=cfg.own_addresses,
            own_domains=cfg.own_domains,
        )
        tokens: list[str] = []
        for name in ("Delivered-To", "X-Original-To", "To", "Cc"):
            raw = header(msg, name)[:MAX_HEADER_CHARS]
            for _, addr in getaddresses([raw]) if raw else []:
                token = token_from_address(
                    addr, reply_domain=cfg.reply_domain, office_address=cfg.office_address
                )
                if token:
                    tokens.append(token)
        parents = message_ids(header(msg, "In-Reply-To"))
        ids = parents + message_ids(header(msg, "References"))[::-1]
        refs = [ref for mid in ids[:20] if (ref := token_ref_from_message_id(mid, cfg.mail_domain))]
        return _Facts(
            message_id=_message_id(msg),
            automatic=automatic,
            sender=sender_address(msg),
            tokens=tuple(tokens),
            refs=tuple(refs),
            answers_notice=any(is_notice_message_id(m, cfg.mail_domain) for m in ids[:20]),
            auth_results=tuple(authentication_results(msg)) if cfg.trusted_authserv_id else (),
        )

    def _prepare(self, msg: EmailMessage) -> tuple[EmailMessage, str, str]:
        """(the mail as plain text with capped lines, the text above the quote, the whole
        text): what is read, and what tells our own text coming back. In the worker thread.

        The text's regular expressions are not linear on long runs of blanks or long lines:
        runs of blanks are cut to a few, lines to ``_MAX_LINE_CHARS``, the text to
        ``_MAX_LINES``; nothing a person writes on top of a reply is longer."""
        try:
            text = body_text(msg)
        except UndecodableBody:
            raise Malformed("undecodable_body") from None
        capped = _capped(text)
        top = reply_text(capped)
        plain = EmailMessage()
        subject = _CONTROL.sub(" ", header(msg, "Subject")[:300])
        if subject.strip():
            plain["Subject"] = subject
        plain.set_content(capped or "\n", charset="utf-8")
        return plain, top, capped

    # -- 2. to 6.

    async def _decide(
        self, mail: Inbound, msg: EmailMessage, facts: _Facts, mid_hash: str
    ) -> Verdict:
        cfg = self.config
        automatic = "bounce" if mail.null_sender else facts.automatic
        if automatic is not None:
            return Verdict(VerdictKind.DROPPED, automatic, mid_hash)

        sender = facts.sender
        message_id = facts.message_id
        found = self._token(mail, facts)
        if found is None:  # not a reply to us at all: no answer, not even a help text
            return Verdict(VerdictKind.REFUSED, "no_token", mid_hash)
        token, ref = found
        # From here on a refusal sends nothing: only a verified person ever gets mail.
        record = await self.directory.token(ref)
        if record is None:
            return Verdict(VerdictKind.REFUSED, "unknown_token", mid_hash)
        ids = {
            "mentee_id": record.mentee_id,
            "role": record.role.value,
            "request_id": record.request_id,
        }
        problem = record.problem_at(mail.received_at)
        if problem is not None:
            return Verdict(VerdictKind.REFUSED, problem, mid_hash, **ids)
        person = await self.directory.person(record.role, record.person_id)
        if person is None:
            return Verdict(VerdictKind.REFUSED, "person_gone", mid_hash, **ids)
        if sender is None or sender != person.email.strip().lower():
            return Verdict(VerdictKind.REFUSED, "sender_mismatch", mid_hash, **ids)
        if cfg.trusted_authserv_id and not dmarc_passed(
            list(facts.auth_results), cfg.trusted_authserv_id, sender.rpartition("@")[2]
        ):
            return Verdict(VerdictKind.REFUSED, "unauthenticated", mid_hash, **ids)
        if await self.directory.answered_before(mid_hash):
            # The same Message-ID again (re-delivered, or replayed with another text): the
            # first answer stands; nothing is read, asked or confirmed again.
            return Verdict(VerdictKind.ACCEPTED, "duplicate", mid_hash, **ids)
        ctx = ReplyContext(
            mid_hash,
            message_id,
            mail.received_at,
            token,
            mentee_id=record.mentee_id,
            role=record.role,
            person_id=record.person_id,
            request_id=record.request_id,
            answers_notice=facts.answers_notice,
        )
        try:
            kind = request_kind(record.request_id)
        except ValueError:
            await self.notifier.help(person, ctx, RequestKind.OFFICE, None)
            return Verdict(VerdictKind.REFUSED, "no_request", mid_hash, **ids)

        msg, top, full = await self._off_loop(self._prepare, msg)
        if own_text(top, full):  # our confirmation, help text or request came back
            return Verdict(VerdictKind.DROPPED, "own_text", mid_hash, **ids)

        # 4. the text, read once, never kept
        try:
            reading = read_message(msg, kind, mail.received_at)
        except UnreadableMail as err:
            raise Malformed(str(err)) from None
        if reading.reason == "automatic":  # an out-of-office note without its headers
            return Verdict(VerdictKind.DROPPED, "out_of_office", mid_hash, **ids)
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
        except AnswerRefused as err:
            # The workflow's reason names ids and status only (never what was written).
            log.info("answer_refused", mentee_id=record.mentee_id, why=str(err)[:120])
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

    def _token(self, mail: Inbound, facts: _Facts) -> tuple[str | None, bytes] | None:
        """(the reply token, its hash): envelope first, then the addressed headers, then the
        Message-IDs the mail answers (when a mail system rewrote the address; those carry a
        reference to the token only, so then there is no token for our Reply-To)."""
        if mail.rcpt_tokens:
            return mail.rcpt_tokens[0], token_hash(mail.rcpt_tokens[0])
        if facts.tokens:
            return facts.tokens[0], token_hash(facts.tokens[0])
        if facts.refs:
            return None, facts.refs[0]
        return None


@dataclass(frozen=True)
class _Facts:
    """What the headers say, read once: ids and codes (the sender's address only to compare)."""

    message_id: str | None
    automatic: str | None
    sender: str | None
    tokens: tuple[str, ...]
    refs: tuple[bytes, ...]
    answers_notice: bool
    auth_results: tuple[str, ...]


_T = TypeVar("_T")
_CONTENT_TYPE = re.compile(rb"^content-type[ \t]*:", re.IGNORECASE | re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BLANKS = re.compile(r"[^\S\n]{8,}")
_MAX_TEXT_CHARS = 64_000
_MAX_LINES = 1_000
_MAX_LINE_CHARS = 300


def _capped(text: str) -> str:
    """The text as the reading may see it: bounded, so no regular expression runs long."""
    text = _BLANKS.sub("       ", text[:_MAX_TEXT_CHARS])
    return "\n".join(line[:_MAX_LINE_CHARS] for line in text.splitlines()[:_MAX_LINES])


def answer_id_for(message_id: str) -> str:
    """The answer's idempotency key: the same reply mail is the same answer."""
    return hashlib.sha256(message_id.strip().encode("utf-8", "surrogateescape")).hexdigest()


def _message_id(msg: EmailMessage) -> str | None:
    value = header(msg, "Message-ID")
    return value[:998] if value else None


def own_addresses(addresses: Sequence[str]) -> frozenset[str]:
    return frozenset(a.strip().lower() for a in addresses if a and "@" in a)
