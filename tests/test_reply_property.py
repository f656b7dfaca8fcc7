"""Thousands of generated mails against the pipeline (in-memory directory, fake answerer):
it never crashes, and it never calls the answerer without a valid token and the matching
sender. Mails are built from parts the test knows (so it knows which ones are legitimate),
then some are mangled byte by byte (then the oracle is the raw bytes themselves)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from replies.pipeline import (
    Inbound,
    Person,
    Pipeline,
    PipelineConfig,
    ReplyContext,
    TokenRecord,
    Verdict,
    own_addresses,
)
from tandem.answers import Answer, AnswerResult, Intent, RequestKind
from tandem.mail import build_reply_address, message_id, reply_token, token_hash
from tandem.models import Language, Role, TandemStatus
from tandem.reply_grammar import Reading

# The email package draws MIME boundaries with `random`; that is fine here.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
REPLY_DOMAIN = "reply.tandem.invalid"
MAIL_DOMAIN = "tandem.invalid"
OFFICE = "mentoring@tandem.invalid"
CONFIG = PipelineConfig(
    mail_domain=MAIL_DOMAIN,
    reply_domain=REPLY_DOMAIN,
    office_address=OFFICE,
    own_addresses=own_addresses([OFFICE]),
    own_domains=frozenset({REPLY_DOMAIN}),
)

PEOPLE = {
    (Role.MENTEE, "S1"): Person("s1@studium.example.org", "Jonas", "Beispiel", Language.DE),
    (Role.MENTOR, "M1"): Person("m1@praxis.example.org", "Henrike", "Muster", Language.EN),
    (Role.MENTEE, "S2"): Person("s2@studium.example.org", "Lea", "Probe", Language.DE),
}


def _token(name: str) -> str:
    return reply_token(b"property-secret", name)


#: name -> (token, record); the test knows which are valid.
TOKENS: dict[str, tuple[str, TokenRecord | None]] = {
    "valid_mentee": (
        _token("a"),
        TokenRecord("S1", Role.MENTEE, "S1", "nudge:1", NOW + timedelta(days=9)),
    ),
    "valid_mentor": (
        _token("b"),
        TokenRecord("S1", Role.MENTOR, "M1", "decision:0", NOW + timedelta(days=9)),
    ),
    "valid_other": (
        _token("c"),
        TokenRecord("S2", Role.MENTEE, "S2", "phase_check:residency", NOW + timedelta(days=9)),
    ),
    "expired": (
        _token("d"),
        TokenRecord("S1", Role.MENTEE, "S1", "nudge:2", NOW - timedelta(seconds=1)),
    ),
    "revoked": (
        _token("e"),
        TokenRecord(
            "S1", Role.MENTEE, "S1", "nudge:3", NOW + timedelta(days=9), NOW - timedelta(days=1)
        ),
    ),
    "no_request": (
        _token("f"),
        TokenRecord("S1", Role.MENTEE, "S1", "S1/intro/x", NOW + timedelta(days=9)),
    ),
    "forged": ("abcdefghijklmnopqrstuvwxyz", None),
}
VALID = {"valid_mentee", "valid_mentor", "valid_other", "no_request"}
BY_HASH = {token_hash(t): r for t, r in TOKENS.values() if r is not None}
OWNER = {name: PEOPLE[(r.role, r.person_id)].email for name, (_, r) in TOKENS.items() if r}


class Directory:
    async def answered_before(self, message_id_hash: str) -> bool:
        return False

    async def token(self, token_hash: bytes) -> TokenRecord | None:
        return BY_HASH.get(token_hash)

    async def person(self, role: Role, person_id: str) -> Person | None:
        return PEOPLE.get((role, person_id))


@dataclass
class Answerer:
    calls: list[tuple[str, Answer]] = field(default_factory=list)

    async def answer(self, mentee_id: str, answer: Answer) -> AnswerResult:
        self.calls.append((mentee_id, answer))
        return AnswerResult(status=TandemStatus.ACTIVE)


class Notifier:
    async def confirm(
        self,
        to: Person,
        ctx: ReplyContext,
        kind: RequestKind,
        answer: Answer,
        *,
        duplicate: bool = False,
    ) -> None:
        assert to in PEOPLE.values()

    async def help(
        self, to: Person, ctx: ReplyContext, kind: RequestKind, reading: Reading | None
    ) -> None:
        assert to in PEOPLE.values()

    async def ask_to_confirm(
        self, to: Person, ctx: ReplyContext, kind: RequestKind, intent: Intent
    ) -> None:
        assert to in PEOPLE.values()

    async def neutral_help(self, to_address: str, ctx: ReplyContext) -> None:
        assert isinstance(to_address, str)


# -- mails --------------------------------------------------------------------------------------

WORDS = [
    "ja",
    "Ja,",
    "nein",
    "yes",
    "no",
    "getroffen",
    "met",
    "später",
    "in 3 Wochen",
    "in 3 weeks",
    "Hilfe",
    "help",
    "stop",
    "beenden",
    "Hospitation",
    "weiter",
    "unentschieden",
    "neue Phase",
    "nicht",
    "noch nicht",
    "am 3.5.",
    "on 2026-05-03",
    "Hallo,",
    "Viele Grüße",
    "--",
    ">",
    "Am 01.05.2026 schrieb X <x@y>:",
    "Von: Tandem",
    "Gesendet: Freitag",
    "-- Bitte oberhalb dieser Zeile antworten --",
    "<blockquote>",
    "</div>",
    "\n",
    "\n\n",
    "&nbsp;",
    "ü",
    "ß",
]
SENDERS = {
    "owner": None,  # the person the token was made for
    "other_person": "s2@studium.example.org",
    "stranger": "fremd@example.com",
    "own": OFFICE,
    "missing": "",
    "two": "s1@studium.example.org, m1@praxis.example.org",
    "uppercase_owner": "UPPER",
}
AUTO_HEADERS = [
    ("Auto-Submitted", "auto-replied"),
    ("Auto-Submitted", "no"),
    ("X-Autoreply", "yes"),
    ("Precedence", "bulk"),
    ("Return-Path", "<>"),
    ("X-Auto-Response-Suppress", "OOF"),
    ("List-Id", "<x.example.org>"),
]
PLACES = ["rcpt", "to", "to_plus", "in_reply_to", "references", "nowhere"]


@st.composite
def mails(draw: st.DrawFn) -> tuple[bytes, tuple[str, ...], str, str]:
    token_name = draw(
        st.sampled_from(sorted(TOKENS)) | st.sampled_from(sorted(VALID - {"no_request"}))
    )
    token = TOKENS[token_name][0]
    place = draw(st.sampled_from(PLACES))
    sender_kind = draw(st.sampled_from(sorted(SENDERS)) | st.just("owner"))
    owner = OWNER.get(token_name, "s1@studium.example.org")
    sender = {"owner": owner, "uppercase_owner": owner.upper()}.get(sender_kind) or SENDERS[
        sender_kind
    ]
    text = " ".join(draw(st.lists(st.sampled_from(WORDS), max_size=12)))
    text += draw(st.text(max_size=60))
    msg = EmailMessage()
    try:
        if sender is not None and sender != "":
            msg["From"] = sender
        reply_to = build_reply_address(token, "domain", reply_domain=REPLY_DOMAIN)
        if place == "to":
            msg["To"] = reply_to
        elif place == "to_plus":
            msg["To"] = build_reply_address(
                token, "plus", reply_domain=REPLY_DOMAIN, office_address=OFFICE
            )
        else:
            msg["To"] = OFFICE
        original = message_id("orig", MAIL_DOMAIN, token)
        if place == "in_reply_to":
            msg["In-Reply-To"] = original
        if place == "references":
            msg["References"] = f"<a@b> {original} <c@d>"
        msg["Subject"] = draw(
            st.text(max_size=40).map(lambda s: s.replace("\n", " ").replace("\r", " "))
        )
        if draw(st.booleans()):
            msg["Message-ID"] = f"<{draw(st.integers(0, 10**9))}@client.example.org>"
        if draw(st.integers(0, 3)) == 0:
            for name, value in draw(
                st.lists(st.sampled_from(AUTO_HEADERS), max_size=2, unique=True)
            ):
                msg[name] = value
        charset = draw(st.sampled_from(["utf-8", "latin-1", "ascii"]))
        subtype = draw(st.sampled_from(["plain", "html"]))
        try:
            msg.set_content(text, subtype=subtype, charset=charset)
        except (UnicodeError, ValueError):
            msg.set_content(text, subtype=subtype)
        if draw(st.booleans()):
            msg.add_alternative(f"<div>{text}</div>", subtype="html")
    except (ValueError, TypeError, IndexError):
        pass  # the email package refused a header value: send what is there
    raw = bytes(msg)
    if draw(st.booleans()):
        raw = raw.replace(b"utf-8", draw(st.sampled_from([b"x-unknown", b"utf-7", b"utf-8"])))
    rcpt = (token,) if place == "rcpt" else ()
    return raw, rcpt, token_name, (sender or "").strip().lower()


def _run(raw: bytes, rcpt: tuple[str, ...], null_sender: bool = False) -> tuple[Verdict, Answerer]:
    answerer = Answerer()
    pipeline = Pipeline(CONFIG, Directory(), answerer, Notifier())
    verdict = asyncio.run(
        pipeline.process(Inbound(1, raw, NOW, rcpt_tokens=rcpt, null_sender=null_sender))
    )
    assert isinstance(verdict, Verdict)
    return verdict, answerer


FAST = settings(
    max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


@FAST
@given(mails())
def test_generated_mails_never_crash_and_never_answer_without_token_and_sender(
    mail: tuple[bytes, tuple[str, ...], str, str],
) -> None:
    raw, rcpt, token_name, sender = mail
    verdict, answerer = _run(raw, rcpt)
    event(f"{verdict.kind}:{verdict.reason}")
    if answerer.calls:
        assert token_name in VALID, verdict
        assert sender == OWNER[token_name], verdict
        [(mentee_id, answer)] = answerer.calls
        record = TOKENS[token_name][1]
        assert record is not None
        assert (mentee_id, answer.role, answer.request_id) == (
            record.mentee_id,
            record.role,
            record.request_id,
        )
        assert verdict.kind == "accepted"
    else:
        assert verdict.kind != "accepted"


@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(
    mails(),
    st.lists(st.tuples(st.integers(0, 4000), st.binary(min_size=0, max_size=8)), max_size=6),
    st.booleans(),
)
def test_mangled_mails_never_crash_and_never_answer_without_their_token_and_sender(
    mail: tuple[bytes, tuple[str, ...], str, str],
    edits: list[tuple[int, bytes]],
    null_sender: bool,
) -> None:
    raw, rcpt, _, _ = mail
    for at, junk in edits:
        at = at % (len(raw) + 1)
        raw = raw[:at] + junk + raw[at + len(junk) // 2 :]
    _verdict, answerer = _run(raw, rcpt, null_sender)
    for mentee_id, answer in answerer.calls:
        matching = [
            (t, r)
            for t, r in TOKENS.values()
            if r is not None
            and (r.mentee_id, r.role, r.request_id) == (mentee_id, answer.role, answer.request_id)
        ]
        [(token, record)] = matching
        assert record.problem_at(NOW) is None
        assert token in rcpt or token.encode() in raw.lower()
        owner = PEOPLE[(record.role, record.person_id)].email
        assert owner.encode() in raw.lower()
        assert not null_sender


@FAST
@given(st.binary(max_size=3000))
def test_random_bytes_never_crash(raw: bytes) -> None:
    verdict, answerer = _run(raw, ())
    assert answerer.calls == []
    assert verdict.kind in ("malformed", "refused", "dropped")
