"""``tandem reply read``: how the gateway would read a reply mail, touching no tandem.

For support ("why did my reply not work?") and for regression corpora: one ``.eml`` file, or
every ``*.eml`` of a directory, through exactly the gateway's reading path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from replies.pipeline import Limits, Malformed, parse_mail
from replies.reading import Action, MailReading, UnreadableMail, read_message
from replies.screening import header
from starter.common import console, fail
from tandem.answers import RequestKind
from tandem.reply_grammar import allowed_intents

app = typer.Typer(help="See how a reply mail is read.", no_args_is_help=True)

#: The requests a reply can answer (``info`` and ``office`` take no reading).
READABLE = ("decision", "nudge", "phase_check", "shadowing", "introduction")


@app.command("read")
def read_command(
    path: Annotated[
        Path, typer.Argument(metavar="FILE", help="An RFC 5322 file (.eml), or a directory.")
    ],
    request: Annotated[
        str,
        typer.Option("--request", metavar="|".join(READABLE[:4]), help="What the mail answered."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per mail.")] = False,
) -> None:
    """Print what the gateway would do with a reply: apply, confirm (ask back) or refuse."""
    if request not in READABLE:
        fail(f"unknown request {request!r}: use one of {', '.join(READABLE)}", code=2)
    kind = RequestKind(request)
    if path.is_dir():
        files = sorted(path.glob("*.eml"))
        if not files:
            fail(f"no *.eml file in {path}", code=2)
    elif path.is_file():
        files = [path]
    else:
        fail(f"no such file or directory: {path}", code=2)
    for file in files:
        result = read_file(file, kind)
        if as_json:
            line = {"file": file.name, **result} if path.is_dir() else result
            print(json.dumps(line, ensure_ascii=False), flush=True)
        else:
            prefix = f"{file.name}: " if path.is_dir() else ""
            console.print(prefix + describe(result, kind), highlight=False, soft_wrap=True)


def read_file(file: Path, kind: RequestKind) -> dict[str, Any]:
    """The reading of one file as the JSON object ``--json`` prints."""
    try:
        raw = file.read_bytes()
    except OSError as err:
        fail(f"cannot read {file}: {err.strerror}", code=2)
    try:
        msg = parse_mail(raw, Limits())
        received_at = _sent_at(header(msg, "Date"))
        reading = read_message(msg, kind, received_at)
    except (Malformed, UnreadableMail) as err:
        return MailReading(Action.REFUSE, None, reason=f"malformed:{err}").as_json()
    return reading.as_json()


def describe(result: dict[str, Any], kind: RequestKind) -> str:
    details = ", ".join(f"{k} {v}" for k, v in result["details"].items())
    intent = f"{result['intent']}{f' ({details})' if details else ''}"
    if result["action"] == "apply":
        return f"apply: {intent}"
    if result["action"] == "confirm":
        return f"confirm: {intent} - not said plainly enough; the sender is asked to confirm"
    words = ", ".join(i.value for i in allowed_intents(kind))
    return f"refuse: {result['reason']} - a help mail lists: {words}"


def _sent_at(date_header: str) -> datetime:
    """The gateway dates a reply by its arrival; a file has only its Date header."""
    try:
        sent = parsedate_to_datetime(date_header) if date_header else None
    except (TypeError, ValueError, IndexError):
        sent = None
    if sent is None:
        return datetime.now(UTC)
    return sent if sent.tzinfo else sent.replace(tzinfo=UTC)
