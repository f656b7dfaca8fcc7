"""The reply corpus (``tests/corpus/replies.yaml``) and its cases wrapped as real reply mails.

A case is only the words someone typed. Here they are wrapped the way the major mail clients
send a reply: Outlook (plain part with its ``Von:/Gesendet:`` block, HTML alternative with
``divRplyFwdMsg`` or the classic top border), Gmail in German and in English, Apple Mail on
the iPhone, Thunderbird, an HTML-only webmail, bottom-posting and old-style top-posting
("-----Ursprüngliche Nachricht-----"). The quoted original is our real request mail rendered
from its template, so the quote holds our own answer words and the "reply above this line"
marker: a reader that looks at the quote finds every answer there is.

The client is chosen from the case id (CRC-32), so a case always gets the same mail.
"""

from __future__ import annotations

import base64
import hashlib
import html
import quopri
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from email.header import Header
from email.utils import formataddr
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from tandem.answers import ALLOWED, Intent, RequestKind, request_id
from tandem.mail import RenderedMail, mail_context, render
from tandem.messages import MailRequest
from tandem.models import Language, Mentee, Mentor, Role
from tandem.programs import load_programs

ROOT = Path(__file__).parent.parent
CORPUS = Path(__file__).parent / "corpus" / "replies.yaml"

#: The requests the corpus answers, and the template of each request mail.
TEMPLATES: dict[RequestKind, str] = {
    RequestKind.DECISION: "decision_request",
    RequestKind.NUDGE: "nudge",
    RequestKind.PHASE_CHECK: "phase_check",
    RequestKind.SHADOWING: "shadowing_request",
}
#: Who gets the request when the case does not say.
DEFAULT_ROLE: dict[RequestKind, Role] = {
    RequestKind.DECISION: Role.MENTEE,
    RequestKind.NUDGE: Role.MENTEE,
    RequestKind.PHASE_CHECK: Role.MENTEE,
    RequestKind.SHADOWING: Role.MENTOR,
}
DESTRUCTIVE = frozenset({Intent.STOP, Intent.DECLINE, Intent.PHASE_DONE})
LANGS = ("de", "en")
#: Native languages of writers who answer in German or English.
WRITERS = ("tr", "pl", "fr", "it", "es", "ru", "ar")
CASE_KEYS = frozenset(
    {
        "id",
        "request",
        "lang",
        "body",
        "subject",
        "expect",
        "met_on",
        "snooze_weeks",
        "note",
        "role",
        "writer",
        "trap",
        "html",
    }
)


@dataclass(frozen=True)
class Case:
    id: str
    request: RequestKind
    lang: str  # the language of the request mail and of the reply: "de" or "en"
    body: str
    expect: Intent | None  # None: nothing may be applied
    subject: str | None = None  # the whole Subject header, when the case sets it
    met_on: date | None = None
    no_date: bool = False  # met_on: none - the reading must not carry a date
    snooze_weeks: int | None = None
    note: str = ""
    role: Role = Role.MENTEE
    writer: str | None = None  # native language of a non-native writer
    trap: bool = False  # looks destructive but is not meant so
    html: str | None = None  # the reply part as raw HTML (an HTML-only mail)

    @property
    def destructive(self) -> bool:
        return self.expect in DESTRUCTIVE


def load_raw(path: Path = CORPUS) -> list[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as f:
        data = yaml.load(f, Loader=loader)  # a safe loader (C if built)
    if not isinstance(data, list):
        raise ValueError("the corpus is a list of cases")
    return data


def parse_case(raw: dict[str, Any]) -> Case:
    """One case, checked: unknown keys, values and intents a request does not allow fail."""
    unknown = set(raw) - CASE_KEYS
    if unknown:
        raise ValueError(f"{raw.get('id')}: unknown keys {sorted(unknown)}")
    kind = RequestKind(raw["request"])
    if kind not in TEMPLATES:
        raise ValueError(f"{raw['id']}: no corpus request {kind}")
    expect = None if raw["expect"] == "none" else Intent(raw["expect"])
    if expect is not None and expect not in ALLOWED[kind]:
        raise ValueError(f"{raw['id']}: {kind} does not allow {expect}")
    if raw["lang"] not in LANGS:
        raise ValueError(f"{raw['id']}: lang {raw['lang']!r}")
    body = raw["body"]
    if not isinstance(body, str):
        raise ValueError(f"{raw['id']}: body must be a string (quote yes/no/on/off)")
    met_on = raw.get("met_on")
    no_date = met_on == "none"
    if no_date:
        met_on = None
    elif met_on is not None:
        met_on = met_on if isinstance(met_on, date) else date.fromisoformat(str(met_on))
    if (met_on is not None or no_date) and expect is not Intent.MET:
        raise ValueError(f"{raw['id']}: met_on without expect met")
    weeks = raw.get("snooze_weeks")
    if weeks is not None and (expect is not Intent.SNOOZE or not isinstance(weeks, int)):
        raise ValueError(f"{raw['id']}: snooze_weeks needs expect snooze and a number")
    writer = raw.get("writer")
    if writer is not None and writer not in WRITERS:
        raise ValueError(f"{raw['id']}: writer {writer!r}")
    subject = raw.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise ValueError(f"{raw['id']}: subject must be a string")
    return Case(
        id=str(raw["id"]),
        request=kind,
        lang=raw["lang"],
        body=body.strip("\n"),
        expect=expect,
        subject=subject,
        met_on=met_on,
        no_date=no_date,
        snooze_weeks=weeks,
        note=str(raw.get("note") or ""),
        role=Role(raw["role"]) if raw.get("role") else DEFAULT_ROLE[kind],
        writer=writer,
        trap=bool(raw.get("trap", False)),
        html=raw.get("html"),
    )


@lru_cache
def load_cases(path: Path = CORPUS) -> tuple[Case, ...]:
    return tuple(parse_case(raw) for raw in load_raw(path))


# --- the request mail we sent ------------------------------------------------------------

OFFICE_ADDRESS = "office@example.org"
OFFICE_NAME = {"de": "Programmbüro", "en": "Programme Office"}
MAIL_DOMAIN = "mail.example.org"


@dataclass(frozen=True)
class Party:
    name: str
    address: str


def _people(lang: str) -> tuple[Mentee, Mentor]:
    language = Language(lang)
    mentee = Mentee.model_validate(
        {
            "id": "S-41",
            "first_name": "Jonas",
            "last_name": "Beispiel",
            "email": "jonas.beispiel@studium.example.org",
            "program": "stipendium-hausarzt",
            "phase": "study",
            "region": "Nordstadt",
            "specialty": "Allgemeinmedizin",
            "language": language,
        }
    )
    mentor = Mentor.model_validate(
        {
            "id": "M-17",
            "first_name": "Henrike",
            "last_name": "Musterfrau",
            "email": "praxis.musterfrau@praxis.example.com",
            "programs": ["stipendium-hausarzt"],
            "region": "Nordstadt",
            "specialty": "Allgemeinmedizin",
            "capacity": 1,
            "language": language,
        }
    )
    return mentee, mentor


def token_of(case_id: str) -> str:
    """A reply token as the service makes them (26 base32 characters), fixed per case."""
    digest = hashlib.sha256(f"corpus/{case_id}".encode()).digest()[:16]
    return base64.b32encode(digest).decode().rstrip("=").lower()


@lru_cache
def request_mail(kind: RequestKind, lang: str, role: Role) -> RenderedMail:
    """Our request mail for ``kind`` to ``role`` in ``lang``, as the service renders it."""
    program = load_programs(ROOT / "programs")["stipendium-hausarzt"]
    mentee, mentor = _people(lang)
    facts = {"next_phase": "residency"} if kind is RequestKind.PHASE_CHECK else {}
    request = MailRequest(
        idempotency_key=f"S-41/{request_id(kind, 1)}/{role.value}",
        template=TEMPLATES[kind],
        to=role,
        mentee_id=mentee.id,
        mentor_id=mentor.id,
        program=program.id,
        phase="study",
        request_id=request_id(kind, 1),
        facts=facts,
    )
    _, context = mail_context(request, program, mentee, mentor)
    return render(TEMPLATES[kind], lang, context)


def recipient(case: Case) -> Party:
    mentee, mentor = _people(case.lang)
    person: Mentee | Mentor = mentee if case.role is Role.MENTEE else mentor
    return Party(f"{person.first_name} {person.last_name}", str(person.email))


# --- clients -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What a client puts in a reply: the parts, the subject prefix and its own headers."""

    plain: str | None
    html: str | None
    prefix: str
    message_id: str
    headers: tuple[tuple[str, str], ...] = ()
    cte: str = "quoted-printable"


SENT_DE = "Dienstag, 17. November 2026 09:12"
SENT_EN = "Tuesday, November 17, 2026 9:12 AM"


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _html_lines(text: str) -> str:
    return "<br>\n".join(html.escape(line) for line in text.splitlines())


def _hex(case: Case, n: int) -> str:
    return hashlib.sha256(f"mid/{case.id}".encode()).hexdigest()[:n]


def _answer_html(case: Case) -> str:
    if case.html is not None:
        return case.html
    return "\n".join(f"<div>{html.escape(line) or '<br>'}</div>" for line in case.body.splitlines())


def _header_block(case: Case, original: RenderedMail, to: Party) -> list[tuple[str, str]]:
    office = f"{OFFICE_NAME[case.lang]} <{OFFICE_ADDRESS}>"
    if case.lang == "de":
        return [
            ("Von", office),
            ("Gesendet", SENT_DE),
            ("An", f"{to.name} <{to.address}>"),
            ("Betreff", original.subject),
        ]
    return [
        ("From", office),
        ("Sent", SENT_EN),
        ("To", f"{to.name} <{to.address}>"),
        ("Subject", original.subject),
    ]


def outlook(case: Case, original: RenderedMail, to: Party) -> Reply:
    block = _header_block(case, original, to)
    plain_head = "\n".join(f"{k}: {v}" for k, v in block)
    plain = f"{case.body}\n\n________________________________\n{plain_head}\n\n{original.body}"
    answer = "\n".join(
        f'<p class="MsoNormal">{html.escape(line)}<o:p></o:p></p>'
        if line
        else '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
        for line in case.body.splitlines()
    )
    head_html = "<br>\n".join(f"<b>{k}:</b> {html.escape(v)}" for k, v in block)
    quoted = "\n".join(
        f'<p class="MsoNormal">{html.escape(line) or "&nbsp;"}</p>'
        for line in original.body.splitlines()
    )
    if zlib.crc32(case.id.encode()) & 0x100:  # new Outlook
        reply_html = (
            '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
            '</head><body><div class="elementToProof" style="font-family: Aptos, sans-serif;">'
            f"{answer}</div>"
            '<hr style="display:inline-block;width:98%" tabindex="-1">'
            '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" '
            f'style="font-size:11pt" color="#000000">{head_html}</font>'
            f"<div>&nbsp;</div></div><div>{quoted}</div></body></html>"
        )
    else:  # classic desktop Outlook
        reply_html = (
            '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>'
            '<meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>'
            f'<body lang="DE" link="#0563C1"><div class="WordSection1">{answer}'
            '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
            '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
            f'<p class="MsoNormal">{head_html}<o:p></o:p></p></div>'
            f"{quoted}</div></body></html>"
        )
    box = f"AM9PR07MB{_hex(case, 4).upper()}"
    return Reply(
        plain=plain,
        html=reply_html,
        prefix="AW: " if case.lang == "de" else "RE: ",
        message_id=f"<{box}{_hex(case, 24).upper()}@{box}.eurprd07.prod.outlook.example.com>",
        headers=(
            ("Thread-Topic", original.subject),
            ("Thread-Index", "AQHbOe" + _hex(case, 18)),
            ("Content-Language", "de-DE" if case.lang == "de" else "en-GB"),
            ("X-MS-Has-Attach", ""),
        ),
    )


def _gmail(case: Case, original: RenderedMail, attribution_plain: str, attribution: str) -> Reply:
    plain = f"{case.body}\n\n{attribution_plain}\n\n{_quote(original.body)}\n"
    reply_html = (
        f'<div dir="ltr">{_html_lines(case.body)}</div><br>'
        '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        f"{attribution}<br></div>"
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
        'border-left:1px solid rgb(204,204,204);padding-left:1ex">'
        f"{_html_lines(original.body)}</blockquote></div>"
    )
    return Reply(
        plain=plain,
        html=reply_html,
        prefix="Re: ",
        message_id=f"<CAF{_hex(case, 30)}+g@mail.gmail.example.com>",
    )


def _mailto(case: Case) -> str:
    return (
        f'{OFFICE_NAME[case.lang]} &lt;<a href="mailto:{OFFICE_ADDRESS}">{OFFICE_ADDRESS}</a>&gt;'
    )


def gmail_de(case: Case, original: RenderedMail, to: Party) -> Reply:
    name = OFFICE_NAME[case.lang]
    return _gmail(
        case,
        original,
        f"Am Di., 17. Nov. 2026 um 09:12 Uhr schrieb {name} <\n{OFFICE_ADDRESS}>:",
        f"Am Di., 17. Nov. 2026 um 09:12&nbsp;Uhr schrieb {_mailto(case)}:",
    )


def gmail_en(case: Case, original: RenderedMail, to: Party) -> Reply:
    name = OFFICE_NAME[case.lang]
    return _gmail(
        case,
        original,
        f"On Tue, 17 Nov 2026 at 09:12, {name} <{OFFICE_ADDRESS}> wrote:",
        f"On Tue, 17 Nov 2026 at 09:12, {_mailto(case)} wrote:",
    )


def apple(case: Case, original: RenderedMail, to: Party) -> Reply:
    name = OFFICE_NAME[case.lang]
    if case.lang == "de":
        sent = "Von meinem iPhone gesendet"
        attribution = f"Am 17.11.2026 um 09:12 schrieb {name} <{OFFICE_ADDRESS}>:"
    else:
        sent = "Sent from my iPhone"
        attribution = f"On 17 Nov 2026, at 09:12, {name} <{OFFICE_ADDRESS}> wrote:"
    body = f"{case.body}\n\n" if case.body else ""
    plain = f"{body}{sent}\n\n> {attribution}\n>\n{_quote(original.body)}\n"
    reply_html = (
        '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8">'
        f'</head><body dir="auto"><div dir="ltr">{_html_lines(case.body)}</div>'
        f'<div dir="ltr"><br><div>{sent}</div><div dir="ltr"><br>'
        f'<blockquote type="cite">{html.escape(attribution)}<br><br></blockquote></div>'
        f'<blockquote type="cite"><div dir="ltr">{_html_lines(original.body)}</div>'
        "</blockquote></div></body></html>"
    )
    uuid = _hex(case, 32).upper()
    return Reply(
        plain=plain,
        html=reply_html,
        prefix="Re: ",
        message_id=(
            f"<{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}@example.com>"
        ),
        headers=(("X-Mailer", "iPhone Mail (22B91)"),),
    )


def _thunderbird_attribution(case: Case) -> str:
    name = OFFICE_NAME[case.lang]
    if case.lang == "de":
        return f"Am 17.11.26 um 09:12 schrieb {name}:"
    return f"On 17/11/2026 09:12, {name} wrote:"


def thunderbird(case: Case, original: RenderedMail, to: Party) -> Reply:
    plain = f"{case.body}\n\n{_thunderbird_attribution(case)}\n{_quote(original.body)}\n"
    return Reply(
        plain=plain,
        html=None,
        prefix="Re: ",
        message_id=f"<{_hex(case, 8)}-{_hex(case, 12)[8:]}@studium.example.org>",
        headers=(
            ("User-Agent", "Mozilla Thunderbird"),
            ("Content-Language", "de-DE" if case.lang == "de" else "en-US"),
        ),
        cte="8bit",
    )


def html_only(case: Case, original: RenderedMail, to: Party) -> Reply:
    """A webmail (GMX/WEB.DE style) sending HTML only."""
    block = _header_block(case, original, to)
    head = "<br/>".join(f"<b>{k}:</b>&nbsp;{html.escape(v)}" for k, v in block)
    reply_html = (
        '<html><head></head><body><div style="font-family: Verdana;font-size: 12.0px;">'
        f"{_answer_html(case)}<div>&nbsp;</div><div>&nbsp;</div>"
        '<div style="margin: 10.0px 5.0px 5.0px 10.0px;padding: 10.0px 0 10.0px 10.0px;'
        'border-left: 2.0px solid #C3D9E5;">'
        f'<div style="margin: 0 0 10.0px 0;">{head}</div>'
        f'<div name="quoted-content">{_html_lines(original.body)}</div></div>'
        "</div></body></html>"
    )
    return Reply(
        plain=None,
        html=reply_html,
        prefix="Aw: ",
        message_id=f"<trinity-{_hex(case, 8)}-{_hex(case, 20)[8:]}@3c-app-gmx-bs01>",
    )


def bottom_post(case: Case, original: RenderedMail, to: Party) -> Reply:
    plain = f"{_thunderbird_attribution(case)}\n{_quote(original.body)}\n\n{case.body}\n"
    return Reply(
        plain=plain,
        html=None,
        prefix="Re: ",
        message_id=f"<{_hex(case, 16)}@studium.example.org>",
        headers=(("User-Agent", "Mutt/2.2.12"),),
        cte="8bit",
    )


def top_post(case: Case, original: RenderedMail, to: Party) -> Reply:
    """Old Outlook and many webmails: the original unquoted under a separator line."""
    block = _header_block(case, original, to)
    sep = "-----Ursprüngliche Nachricht-----" if case.lang == "de" else "-----Original Message-----"
    head = "\n".join(f"{k}: {v}" for k, v in block)
    plain = f"{case.body}\n\n{sep}\n{head}\n\n{original.body}"
    return Reply(
        plain=plain,
        html=None,
        prefix="AW: " if case.lang == "de" else "RE: ",
        message_id=f"<00{_hex(case, 10)}$@example.com>",
        headers=(("X-Mailer", "Microsoft Outlook 16.0"),),
    )


Client = Callable[[Case, RenderedMail, Party], Reply]
CLIENTS: dict[str, Client] = {
    "outlook": outlook,
    "gmail_de": gmail_de,
    "gmail_en": gmail_en,
    "apple": apple,
    "thunderbird": thunderbird,
    "html_only": html_only,
    "bottom_post": bottom_post,
    "top_post": top_post,
}


def client_of(case: Case) -> str:
    if case.html is not None:
        return "html_only"
    names = list(CLIENTS)
    return names[zlib.crc32(case.id.encode()) % len(names)]


def _header(value: str) -> str:
    """A header value as a client writes it: RFC 2047 words when it is not ASCII."""
    if value.isascii():
        return value
    return Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")


def _address(name: str, address: str) -> str:
    return formataddr((name, address), charset="utf-8")


def _part(text: str, subtype: str, cte: str) -> bytes:
    data = text.replace("\r\n", "\n").encode("utf-8")
    if cte == "quoted-printable":
        payload = quopri.encodestring(data)
    elif cte == "base64":
        payload = base64.encodebytes(data)
    else:
        payload = data if data.endswith(b"\n") else data + b"\n"
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
    ).encode()
    return head + payload.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def reply_mail(case: Case) -> bytes:
    """The case as the raw bytes of a reply mail its client would send."""
    original = request_mail(case.request, case.lang, case.role)
    to = recipient(case)
    reply = CLIENTS[client_of(case)](case, original, to)
    token = token_of(case.id)
    subject = case.subject if case.subject is not None else reply.prefix + original.subject
    minute = zlib.crc32(case.id.encode()) % 50
    ours = f"<{hashlib.sha256(case.id.encode()).hexdigest()[:20]}.{token}@{MAIL_DOMAIN}>"
    headers = [
        ("From", _address(to.name, to.address)),
        ("To", _address(OFFICE_NAME[case.lang], f"reply+{token}@reply.example.org")),
        ("Subject", _header(subject)),
        ("Date", f"Wed, 18 Nov 2026 09:{minute + 5:02d}:{minute:02d} +0100"),
        ("Message-ID", reply.message_id),
        ("In-Reply-To", ours),
        ("References", ours),
        *((name, _header(value)) for name, value in reply.headers),
        ("MIME-Version", "1.0"),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode()
    if reply.plain is not None and reply.html is not None:
        boundary = f"_000_{_hex(case, 28)}_"
        body = (
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode()
            + f"--{boundary}\r\n".encode()
            + _part(reply.plain, "plain", reply.cte)
            + f"\r\n--{boundary}\r\n".encode()
            + _part(reply.html, "html", "quoted-printable")
            + f"\r\n--{boundary}--\r\n".encode()
        )
    elif reply.plain is not None:
        body = _part(reply.plain, "plain", reply.cte)
    else:
        assert reply.html is not None
        body = _part(reply.html, "html", "quoted-printable")
    return head + body
