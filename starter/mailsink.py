"""The local SMTP sink of ``tandem dev``: accepts every mail and keeps it in a Maildir.

Nothing leaves the machine; ``tandem mail list/show`` and the end-to-end tests read the
Maildir back. Files are written the Maildir way (``tmp/`` then rename into ``new/``) and
fsynced, so a mail the sink acknowledged survives a crash or restart.
"""

from __future__ import annotations

import asyncio
import email
import itertools
import logging
import mailbox
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTPUTF8
from email.policy import default as default_policy
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

#: Added to every stored mail: who the mail was actually delivered to (incl. Bcc).
ENVELOPE_TO_HEADER = "X-Tandem-Envelope-To"

# aiosmtpd logs every SMTP command (RCPT TO:<address>) at INFO: addresses stay out of logs.
logging.getLogger("mail.log").setLevel(logging.WARNING)

_counter = itertools.count(1)


class MailSink:
    """An SMTP server in the current asyncio loop that stores each mail in ``maildir``."""

    def __init__(self, maildir: Path, host: str = "127.0.0.1", port: int = 8025) -> None:
        self.maildir = Path(maildir)
        self.host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port actually listened on (useful after ``port=0``)."""
        return self._port

    async def start(self) -> None:
        """Listen; raises ``OSError`` when the port is taken."""
        if self._server is not None:
            return
        self.maildir.parent.mkdir(parents=True, exist_ok=True)
        mailbox.Maildir(self.maildir, create=True)  # creates tmp/ new/ cur/
        loop = asyncio.get_running_loop()
        handler = _StoreHandler(self.maildir)
        self._server = await loop.create_server(
            lambda: SMTP(
                handler,
                hostname="tandem-mailsink",
                enable_SMTPUTF8=True,
                decode_data=False,
                loop=loop,
            ),
            self.host,
            self._port,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> MailSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def messages(self) -> list[EmailMessage]:
        """Every mail in the Maildir (this run and earlier ones), in arrival order."""
        return [msg for _, msg in read_all(self.maildir)]


class _StoreHandler:
    """aiosmtpd handler: store the raw mail, with the envelope recipients, then say 250."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        header = SMTPUTF8.fold(ENVELOPE_TO_HEADER, ", ".join(envelope.rcpt_tos)).encode("utf-8")
        try:
            await asyncio.to_thread(store_mail, self.maildir, header + raw)
        except OSError:
            return "451 Requested action aborted: could not store the mail"
        return "250 Message accepted for delivery"


def store_mail(maildir: Path, data: bytes) -> str:
    """Write one mail into ``maildir`` durably and return its key (sortable by arrival)."""
    data = data.replace(b"\r\n", b"\n")
    key = f"{time.time_ns() // 1000}.{os.getpid()}.{next(_counter)}"
    tmp = maildir / "tmp" / key
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, maildir / "new" / key)
    dir_fd = os.open(maildir / "new", os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return key


@dataclass(frozen=True)
class MailSummary:
    """One line of ``tandem mail list``."""

    id: str
    received_at: datetime
    from_: str
    to: tuple[str, ...]
    envelope_to: tuple[str, ...]
    subject: str
    message_id: str | None
    in_reply_to: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "from": self.from_,
            "to": list(self.to),
            "envelope_to": list(self.envelope_to),
            "subject": self.subject,
            "message_id": self.message_id,
            "in_reply_to": self.in_reply_to,
        }

    def addressed_to(self, address: str) -> bool:
        wanted = address.strip().lower()
        return any(a.lower() == wanted for a in (*self.to, *self.envelope_to))


def list_mail(maildir: Path) -> list[MailSummary]:
    """Summaries of every stored mail, oldest first; an absent Maildir holds no mail."""
    return [summarize(key, msg, received) for key, msg, received in _read(maildir)]


def get_mail(maildir: Path, id: str) -> EmailMessage:
    """The stored mail with key ``id``; ``KeyError`` when there is none."""
    box = _open(maildir)
    if box is None:
        raise KeyError(id)
    return _parse(box.get_bytes(id))


def get_summary(maildir: Path, id: str) -> MailSummary:
    """The ``mail list`` line of one stored mail; ``KeyError`` when there is none."""
    box = _open(maildir)
    if box is None:
        raise KeyError(id)
    return summarize(id, _parse(box.get_bytes(id)), _received_at(box, id))


def read_all(maildir: Path) -> list[tuple[str, EmailMessage]]:
    """``(id, mail)`` for every stored mail, oldest first."""
    return [(key, msg) for key, msg, _ in _read(maildir)]


def summarize(key: str, msg: EmailMessage, received: datetime) -> MailSummary:
    return MailSummary(
        id=key,
        received_at=received,
        from_=_first_address(msg.get("From")),
        to=_addresses(msg.get_all("To")),
        envelope_to=_addresses(msg.get_all(ENVELOPE_TO_HEADER)),
        subject=str(msg.get("Subject", "")),
        message_id=_optional(msg.get("Message-ID")),
        in_reply_to=_optional(msg.get("In-Reply-To")),
    )


def _read(maildir: Path) -> list[tuple[str, EmailMessage, datetime]]:
    box = _open(maildir)
    if box is None:
        return []
    found = [(key, _parse(box.get_bytes(key)), _received_at(box, key)) for key in box.iterkeys()]
    return sorted(found, key=lambda item: (item[2], item[0]))


def _received_at(box: mailbox.Maildir, key: str) -> datetime:
    """When the sink stored the mail: from our key, else the file's time (foreign files)."""
    head = key.split(".", 1)[0]
    if head.isdigit():
        return datetime.fromtimestamp(int(head) / 1_000_000, UTC)
    return datetime.fromtimestamp(box.get_message(key).get_date(), UTC)


def _parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=default_policy)
    assert isinstance(msg, EmailMessage)
    return msg


def _open(maildir: Path) -> mailbox.Maildir | None:
    if not (Path(maildir) / "new").is_dir():
        return None
    return mailbox.Maildir(maildir, create=False)


def _addresses(values: list[Any] | None) -> tuple[str, ...]:
    if not values:
        return ()
    return tuple(addr for _, addr in getaddresses([str(v) for v in values]) if addr)


def _first_address(value: Any) -> str:
    if value is None:
        return ""
    addresses = getattr(value, "addresses", None)
    if addresses:
        first: Address = addresses[0]
        return first.addr_spec
    found = _addresses([value])
    return found[0] if found else str(value)


def _optional(value: Any) -> str | None:
    return None if value is None else str(value).strip()
