"""``tandem mail list/show/reply``: read what the local mail sink of ``tandem dev`` received,
and answer it the way a mentor or mentee would: by replying."""

from __future__ import annotations

import asyncio
import html as html_lib
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Any

import aiosmtplib
import asyncpg
import typer
from rich.table import Table

from replies.pipeline import answer_id_for
from starter.common import CommandError, console, database_url, fail, print_json, run
from starter.mailsink import ENVELOPE_TO_HEADER, get_mail, get_summary, list_mail
from tandem.settings import Settings, get_settings

app = typer.Typer(
    help="Read the mail `tandem dev` caught in its local sink (nothing is really sent),"
    " and reply to it.",
    no_args_is_help=True,
)

#: Shown by ``mail show``, in this order, when present.
SHOWN_HEADERS = (
    "Date",
    "From",
    "To",
    "Cc",
    ENVELOPE_TO_HEADER,
    "Reply-To",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Auto-Submitted",
)


@app.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
    to: str | None = typer.Option(None, "--to", metavar="ADDRESS", help="Only mail to ADDRESS."),
) -> None:
    """List every mail the sink received, oldest first."""
    mails = list_mail(get_settings().mail_dir)
    if to:
        mails = [m for m in mails if m.addressed_to(to)]
    if as_json:
        print_json([m.as_json() for m in mails])
        return
    if not mails:
        console.print("no mail yet", highlight=False)
        return
    senders = {m.from_ for m in mails}
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("received (UTC)", no_wrap=True)
    if len(senders) > 1:  # usually every mail comes from the programme office
        table.add_column("from", overflow="fold")
    table.add_column("to", overflow="fold")
    table.add_column("subject", overflow="fold")
    for m in mails:
        cells = [m.id, m.received_at.strftime("%m-%d %H:%M:%S")]
        if len(senders) > 1:
            cells.append(m.from_)
        table.add_row(*cells, ", ".join(m.to or m.envelope_to), m.subject)
    console.print(table, highlight=False)


@app.command("show")
def show_command(
    mail_id: str = typer.Argument(..., metavar="ID", help="An id from `tandem mail list`."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Show one mail: its headers and its text body."""
    try:
        msg = get_mail(get_settings().mail_dir, mail_id)
    except KeyError:
        fail(f"no mail with id {mail_id!r}: see `tandem mail list`")
    if as_json:
        print_json(_as_json(mail_id, msg))
        return
    for name in SHOWN_HEADERS:
        for value in msg.get_all(name) or []:
            console.print(f"{name}: {value}", markup=False, highlight=False, soft_wrap=True)
    console.print()
    console.print(text_body(msg), markup=False, highlight=False, soft_wrap=True)


def text_body(msg: EmailMessage) -> str:
    """The plain-text part (what people read); a note when there is none."""
    part = msg.get_body(preferencelist=("plain",))
    if part is None:
        return "(no text part)"
    content = part.get_content()
    return content if isinstance(content, str) else "(no text part)"


def _as_json(mail_id: str, msg: EmailMessage) -> dict[str, Any]:
    data = get_summary(get_settings().mail_dir, mail_id).as_json()
    data["reply_to"] = _optional(msg.get("Reply-To"))
    data["headers"] = {name: str(value) for name, value in msg.items()}
    data["text"] = text_body(msg)
    return data


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


@app.command("reply")
def reply_command(
    mail_id: str = typer.Argument(..., metavar="ID", help="An id from `tandem mail list`."),
    text: str = typer.Argument(
        ..., metavar="TEXT", help="The answer, e.g. 'ja', 'später in 3 Wochen', 'we met'."
    ),
    sender: str | None = typer.Option(
        None,
        "--from",
        metavar="ADDRESS",
        help="Reply as ADDRESS instead of the mail's recipient (e.g. to try a forwarded mail).",
    ),
    lang: str = typer.Option("de", "--lang", help="Quote header like a German or English client."),
    html: bool = typer.Option(False, "--html", help="Send an HTML-only reply (like Outlook)."),
    wait: float = typer.Option(
        15.0, "--wait", metavar="SECONDS", help="How long to wait for the verdict (0: not at all)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Reply to a mail in the sink as its recipient would, quoting it, over SMTP to the reply
    gateway of `tandem dev`; then show what the gateway decided."""
    if lang not in ("de", "en"):
        fail("--lang must be de or en")
    settings = get_settings()
    try:
        original = get_mail(settings.mail_dir, mail_id)
    except KeyError:
        fail(f"no mail with id {mail_id!r}: see `tandem mail list`")
    try:
        reply = compose_reply(original, text, sender=sender, language=lang, html=html)
    except ValueError as err:
        fail(str(err))
    result = run(_send_and_wait(settings, reply, wait))
    if as_json:
        print_json(result)
        return
    line = f"reply {result['message_id']} sent to the gateway"
    verdict = result.get("verdict")
    if verdict is None:
        line += "; no verdict yet" if wait > 0 else ""
    else:
        line += f": {verdict['verdict']} ({verdict['reason']})"
        if verdict.get("intent"):
            line += f", answer '{verdict['intent']}'"
    console.print(line, highlight=False, soft_wrap=True)


def compose_reply(
    original: EmailMessage,
    text: str,
    *,
    sender: str | None = None,
    language: str = "de",
    html: bool = False,
    now: datetime | None = None,
) -> EmailMessage:
    """A reply as a mail client writes it: the answer on top, then "Am … schrieb …:" and the
    original quoted with "> "; threaded by In-Reply-To/References, sent to the Reply-To."""
    reply_to = _first(original.get("Reply-To"))
    if not reply_to:
        raise ValueError("this mail has no Reply-To: it asks for no answer")
    author = sender or _first(original.get("To")) or _first(original.get(ENVELOPE_TO_HEADER))
    if not author:
        raise ValueError("this mail has no recipient to reply as")
    now = now or datetime.now(UTC)
    sent = original.get("Date")
    when = sent.datetime if sent is not None and getattr(sent, "datetime", None) else now
    who = str(original.get("From", ""))
    if language == "de":
        attribution = f"Am {when:%d.%m.%Y} um {when:%H:%M} schrieb {who}:"
        prefix = "AW: "
    else:
        attribution = f"On {when:%a, %d %b %Y at %H:%M}, {who} wrote:"
        prefix = "Re: "
    quoted = "\n".join(f"> {ln}" if ln else ">" for ln in text_body(original).splitlines())
    msg = EmailMessage()
    msg["From"] = author
    msg["To"] = reply_to
    subject = str(original.get("Subject", ""))
    msg["Subject"] = subject if subject.lower().startswith(("aw:", "re:")) else prefix + subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain="client.tandem-dev.invalid")
    parent = str(original.get("Message-ID", "")).strip()
    if parent:
        references = str(original.get("References", "")).split()
        msg["In-Reply-To"] = parent
        msg["References"] = " ".join([*[r for r in references if r != parent], parent])
    if html:
        answer = "".join(f"<div>{html_lib.escape(ln)}</div>" for ln in text.splitlines())
        original_html = html_lib.escape(text_body(original)).replace("\n", "<br>")
        msg.set_content(
            f'<html><body>{answer}<br><div class="gmail_quote"><div>'
            f'{html_lib.escape(attribution)}</div><blockquote class="gmail_quote">'
            f"{original_html}</blockquote></div></body></html>",
            subtype="html",
        )
    else:
        msg.set_content(f"{text}\n\n{attribution}\n{quoted}\n")
    return msg


async def _send_and_wait(settings: Settings, reply: EmailMessage, wait: float) -> dict[str, Any]:
    try:
        await aiosmtplib.send(
            reply, hostname=settings.gateway_host, port=settings.gateway_port, timeout=30
        )
    except aiosmtplib.SMTPRecipientsRefused as err:
        refusal = err.recipients[0] if err.recipients else None
        detail = f"{refusal.code} {refusal.message}" if refusal else "refused"
        raise CommandError(f"the gateway refused the reply address: {detail}") from None
    except aiosmtplib.SMTPConnectError:
        raise CommandError(
            f"no reply gateway at {settings.gateway_host}:{settings.gateway_port}:"
            " start `tandem dev` first"
        ) from None
    except aiosmtplib.SMTPResponseException as err:
        raise CommandError(f"the gateway refused the reply: {err.code} {err.message}") from None
    message_id = str(reply["Message-ID"])
    result: dict[str, Any] = {"message_id": message_id, "verdict": None}
    if wait > 0:
        result["verdict"] = await _verdict(settings, answer_id_for(message_id), wait)
    return result


async def _verdict(settings: Settings, mid_hash: str, wait: float) -> dict[str, Any] | None:
    """The gateway's verdict on the reply, once there is one (``None`` after ``wait`` s)."""
    conn = await asyncpg.connect(database_url(settings))
    try:
        deadline = time.monotonic() + wait
        while True:
            row = await conn.fetchrow(
                "SELECT verdict, reason, intent, mentee_id, request_id FROM reply_verdicts"
                " WHERE message_id_hash = $1 ORDER BY inbound_id DESC LIMIT 1",
                mid_hash,
            )
            if row is not None:
                return dict(row)
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def _first(value: object) -> str:
    if value is None:
        return ""
    found = [addr for _, addr in getaddresses([str(value)]) if addr]
    return found[0] if found else ""
