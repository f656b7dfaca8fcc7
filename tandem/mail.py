"""Outgoing mail, pure: deterministic Message-IDs, reply tokens and template rendering.

Texts live as Jinja files in ``tandem/templates/<language>/<name>.txt.j2``; each file has a
``subject`` block and a ``body`` block. Templates address people and say durations through
the functions of ``tandem/salutation.py`` and ``tandem/durations.py`` (``greeting``,
``named``, ``full_name``, ``every``, ``within``, ``ago``, ``human_duration``), never by hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import timedelta
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from tandem.durations import ago, every, human_duration, within
from tandem.messages import MailRequest
from tandem.models import Mentee, Mentor, Role
from tandem.programs import Program, phase_label
from tandem.salutation import full_name, greeting, named

TEMPLATES_DIR = Path(__file__).parent / "templates"


def message_id(idempotency_key: str, domain: str, token: str | None = None) -> str:
    """The same key always gives the same ``Message-ID``, so a resend is recognisable.

    A request mail's id also carries a reference to its reply token (``token_ref``: the
    first 120 bits of the token's SHA-256 as stored in ``reply_tokens``, never the token;
    short, so the id fits one header line): a reply's
    ``In-Reply-To``/``References`` still finds the request when a mail system rewrote the
    ``To`` address, and the id can be kept and shown without giving away a reply address.
    """
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]
    return f"<{digest}-{token_ref(token)}@{domain}>" if token else f"<{digest}@{domain}>"


def bare_message_id(value: str) -> str:
    """``value`` without the token reference (``<digest@domain>``): what may be kept or
    returned where the reference is not needed (workflow history, logs)."""
    match = _MESSAGE_ID.fullmatch(value.strip()[:MAX_ID_CHARS])
    if match is None:
        return value
    return f"<{match.group(1)}@{match.group(4)}>"


#: How many bytes of ``token_hash`` a Message-ID's reference holds (120 bits).
TOKEN_REF_BYTES = 15


def token_ref(token: str) -> str:
    """The opaque reference to a token a Message-ID carries: base32 of the first
    ``TOKEN_REF_BYTES`` of ``token_hash`` (24 characters)."""
    return base64.b32encode(token_hash(token)[:TOKEN_REF_BYTES]).decode().lower()


def reply_token(secret: bytes, idempotency_key: str) -> str:
    """128 bits derived by HMAC from the mail's key: unguessable, and stable across retries."""
    mac = hmac.new(secret, idempotency_key.encode(), hashlib.sha256).digest()[:16]
    return base64.b32encode(mac).decode().rstrip("=").lower()


def token_hash(token: str) -> bytes:
    """Tokens are stored hashed only: a leaked table does not leak valid reply addresses."""
    return hashlib.sha256(token.encode()).digest()


def reply_address(token: str, domain: str) -> str:
    return f"reply+{token}@{domain}"


#: A reply token as ``reply_token`` makes it: 26 base32 characters (128 bits).
TOKEN_PATTERN = re.compile(r"[a-z2-7]{26}")
_REPLY_LOCAL = "reply"
#: ``<digest-REF@domain>`` (``REF``: 24 base32 characters of the token's hash) and, in mail
#: sent before, ``<digest.TOKEN@domain>`` with the raw token (26 characters).
_MESSAGE_ID = re.compile(
    r"<?\s*([0-9a-f]{20})(?:-([A-Za-z2-7]{24})|\.([A-Za-z2-7]{26}))@([^<>\s]{1,253})\s*>?"
)
#: Ids longer than this are no ids of ours (and no regular expression sees more).
MAX_ID_CHARS = 400


def build_reply_address(
    token: str, style: str, *, reply_domain: str, office_address: str = ""
) -> str:
    """The reply address holding ``token``.

    ``domain`` style: ``reply+TOKEN@<reply_domain>``; ``plus`` style: plus-addressing of the
    office mailbox, ``<local>+TOKEN@<domain>`` of ``office_address``.
    """
    if style == "domain":
        return reply_address(token, reply_domain)
    if style == "plus":
        local, sep, domain = office_address.rpartition("@")
        if not sep or not local or not domain:
            raise ValueError("the plus style needs an office address like office@example.org")
        return f"{local}+{token}@{domain}"
    raise ValueError(f"unknown reply address style {style!r}")


def token_from_address(address: str, *, reply_domain: str, office_address: str = "") -> str | None:
    """The reply token in ``address`` (either style, so mail sent before a change of style
    still finds its request), or ``None``. Accepts ``Name <addr>`` too; case-insensitive."""
    addr = parseaddr(address)[1] if "<" in address else address.strip()
    local, sep, domain = addr.rpartition("@")
    if not sep:
        return None
    base, plus, tag = local.partition("+")
    if not plus:
        return None
    token = tag.lower()
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    domain = domain.lower()
    if base.lower() == _REPLY_LOCAL and domain == reply_domain.lower():
        return token
    office_local, _, office_domain = office_address.rpartition("@")
    if office_local and base.lower() == office_local.lower() and domain == office_domain.lower():
        return token
    return None


def token_from_message_id(value: str, mail_domain: str) -> str | None:
    """The raw reply token in a request Message-ID of the old form (``<digest.TOKEN@...>``,
    mail sent before ids carried a reference only), or ``None``."""
    match = _MESSAGE_ID.fullmatch(value.strip()[:MAX_ID_CHARS])
    if match is None or match.group(4).lower() != mail_domain.lower() or not match.group(3):
        return None
    return match.group(3).lower()


def token_ref_from_message_id(value: str, mail_domain: str) -> bytes | None:
    """What one of our request Message-IDs says about its token, for ``Directory.token``:
    the first ``TOKEN_REF_BYTES`` of its ``token_hash`` (decoded from the reference), or the
    whole hash of an old id's raw token."""
    match = _MESSAGE_ID.fullmatch(value.strip()[:MAX_ID_CHARS])
    if match is None or match.group(4).lower() != mail_domain.lower():
        return None
    if match.group(3):
        return token_hash(match.group(3).lower())
    try:
        return base64.b32decode(match.group(2).upper())
    except ValueError:
        return None


def is_notice_message_id(value: str, mail_domain: str) -> bool:
    """One of our ids without a token reference (``<digest@mail_domain>``): a confirmation,
    help text or question about a reply (or a mail to the office, which nobody answers)."""
    match = _NOTICE_ID.fullmatch(value.strip()[:MAX_ID_CHARS])
    return match is not None and match.group(1).lower() == mail_domain.lower()


_NOTICE_ID = re.compile(r"<[0-9a-f]{20}@([^<>\s]{1,253})>")


def message_ids(value: str) -> list[str]:
    """The ``<...>`` ids of an ``In-Reply-To``/``References`` value, in order (at most 50,
    read from the first 20,000 characters)."""
    return re.findall(r"<[^<>\s]{1,250}>", value[:20_000])[:50]


@lru_cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - plain-text mail, never HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        greeting=greeting,
        named=named,
        full_name=full_name,
        every=every,
        within=within,
        ago=ago,
        human_duration=human_duration,
    )
    env.filters["upper_first"] = _upper_first
    return env


def _upper_first(text: str) -> str:
    """``in 30 Tagen`` -> ``In 30 Tagen`` at the start of a sentence (``capitalize`` would
    also lower the rest: ``In 30 tagen``)."""
    return text[:1].upper() + text[1:]


class RenderedMail:
    __slots__ = ("body", "subject")

    def __init__(self, subject: str, body: str) -> None:
        self.subject = subject
        self.body = body


def render(template: str, language: str, context: dict[str, Any]) -> RenderedMail:
    """Render ``template`` in ``language`` (falls back to German, the default)."""
    env = _environment()
    lang = language if (TEMPLATES_DIR / language / f"{template}.txt.j2").is_file() else "de"
    tmpl = env.get_template(f"{lang}/{template}.txt.j2")
    ctx = tmpl.new_context(dict(context))
    subject = "".join(tmpl.blocks["subject"](ctx)).strip()
    body = "".join(tmpl.blocks["body"](ctx)).strip() + "\n"
    return RenderedMail(subject=subject, body=body)


def mail_context(
    request: MailRequest, program: Program, mentee: Mentee, mentor: Mentor | None
) -> tuple[Mentee | Mentor | None, dict[str, Any]]:
    """(recipient, template context) of a lifecycle mail; the recipient is ``None`` for the
    programme office. Names and addresses enter here, in the activity, never in history."""
    recipient, other = _parties(request.to, mentee, mentor)
    language = recipient.language.value if recipient else program.language.value
    context: dict[str, Any] = {
        "recipient": recipient,
        "other": other,
        "program": program,
        "mentee_id": mentee.id,
        #: The mail asks a question its reply answers (it has a request): only then does it
        #: invite a reply; any other mail says where questions go instead.
        "asks": request.request_id is not None,
        #: The rhythm the transition names (``cadence_days``), else ``None``.
        "cadence": _cadence(request.facts.get("cadence_days")),
        "phase_label": phase_label(program, request.phase, language),
        "facts": _with_labels(
            {"audience": request.to.value, "phase": request.phase, **request.facts},
            program,
            language,
        ),
    }
    return recipient, context


def _cadence(days: str | None) -> timedelta | None:
    """A fact's number of days as a duration; ``None`` when missing or not a positive number."""
    try:
        return timedelta(days=float(days)) if days and float(days) > 0 else None
    except (ValueError, OverflowError):  # not a number, or no duration a timedelta holds
        return None


def _with_labels(facts: dict[str, str], program: Program, language: str) -> dict[str, str]:
    """Phase names in facts also come as labels in the recipient's language."""
    if facts.get("next_phase"):
        return {**facts, "next_phase_label": phase_label(program, facts["next_phase"], language)}
    return facts


def _parties(
    to: Role, mentee: Mentee, mentor: Mentor | None
) -> tuple[Mentee | Mentor | None, Mentee | Mentor | None]:
    """(recipient, the other side); the coordinator is no person on file."""
    if to is Role.MENTEE:
        return mentee, mentor
    if to is Role.MENTOR:
        return mentor, mentee
    return None, None
