"""``tandem mail list/show``: read what the local mail sink of ``tandem dev`` received."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import typer
from rich.table import Table

from starter.common import console, fail, print_json
from starter.mailsink import ENVELOPE_TO_HEADER, get_mail, get_summary, list_mail
from tandem.settings import get_settings

app = typer.Typer(
    help="Read the mail `tandem dev` caught in its local sink (nothing is really sent).",
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
