"""A real SMTP relay on loopback that refuses, defers or drops what a test tells it to.

It answers the way Postfix and Exchange do, with the recipient's address in the text
("550 5.1.1 <anna@example.org>: Recipient address rejected"), so a test can prove that
nothing of that text leaves Tandem. What it accepts it stores like the dev sink.
"""

from __future__ import annotations

import asyncio
import mailbox
import uuid
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from starter.mailsink import read_all, store_mail
from tandem.messages import MailRequest
from tandem.models import Role
from tandem.settings import Settings


@dataclass
class RelayRules:
    #: address -> the full reply to its RCPT TO (for good, e.g. ``550 5.1.1 <a@b>: ...``)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    #: address -> (how many times, reply): the first N RCPT TOs get the reply, then 250
    defer_rcpt: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: address -> the reply to DATA of a mail to it (content refused)
    refuse_data: dict[str, str] = field(default_factory=dict)
    #: the reply to every MAIL FROM (the relay refuses us), if set
    refuse_sender: str | None = None
    #: address -> seconds the relay waits, after it stored the first mail to it, before its
    #: 250 (a slow queue): a sender that dies meanwhile leaves a mail the relay delivers
    hold_first_250: dict[str, float] = field(default_factory=dict)


class FaultyRelay:
    def __init__(self, maildir: Path, rules: RelayRules | None = None) -> None:
        self.maildir = maildir
        self.rules = rules or RelayRules()
        self.rcpt_attempts: Counter[str] = Counter()
        #: set whenever a mail was stored (a test waits for it)
        self.stored = asyncio.Event()
        #: SMTP sessions (connections) opened by clients so far, and the ones open now
        self.sessions = 0
        self._open: list[SMTP] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.maildir.parent.mkdir(parents=True, exist_ok=True)
        mailbox.Maildir(self.maildir, create=True)
        loop = asyncio.get_running_loop()
        handler = _Handler(self)

        def session() -> SMTP:
            self.sessions += 1
            smtp = SMTP(handler, hostname="faulty-relay", decode_data=False, loop=loop)
            self._open.append(smtp)
            return smtp

        self._server = await loop.create_server(session, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def hang_up(self) -> None:
        """Close every open session, as a relay does to idle clients or when it restarts."""
        for smtp in self._open:
            if smtp.transport is not None:
                smtp.transport.close()
        self._open.clear()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FaultyRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def messages(self) -> list[EmailMessage]:
        return [msg for _, msg in read_all(self.maildir)]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages() if str(m["To"]) == address]


class _Handler:
    def __init__(self, relay: FaultyRelay) -> None:
        self.relay = relay

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.relay.rules.refuse_sender:
            return self.relay.rules.refuse_sender
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        rules, relay = self.relay.rules, self.relay
        relay.rcpt_attempts[address] += 1
        if address in rules.refuse_rcpt:
            return rules.refuse_rcpt[address]
        if address in rules.defer_rcpt:
            times, reply = rules.defer_rcpt[address]
            if relay.rcpt_attempts[address] <= times:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            if address in self.relay.rules.refuse_data:
                return self.relay.rules.refuse_data[address]
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        await asyncio.to_thread(store_mail, self.relay.maildir, raw)
        self.relay.stored.set()
        for address in envelope.rcpt_tos:
            hold = self.relay.rules.hold_first_250.pop(address, 0.0)
            await asyncio.sleep(hold)  # a simulated slow queue, not a wait for a condition
        return "250 Message accepted for delivery"


def relay_settings(tmp_path: Path, relay: FaultyRelay, **kw: object) -> Settings:
    """Settings of a test that sends through ``relay`` (``kw``: more settings)."""
    return Settings.model_validate(
        {
            "home": tmp_path / "home",
            "smtp_port": relay.port,
            "task_queue": f"tq-{uuid.uuid4().hex[:8]}",
            "reply_token_secret": "test-secret",
            **kw,
        }
    )


def introduction_to_mentee(mentee_id: str, mentor_id: str) -> MailRequest:
    """The first mail of a tandem, as the workflow asks for it."""
    return MailRequest(
        idempotency_key=f"{mentee_id}/e1/1/introduction_mentee/mentee",
        template="introduction_mentee",
        to=Role.MENTEE,
        mentee_id=mentee_id,
        mentor_id=mentor_id,
        program="stipendium-hausarzt",
        phase="study",
    )
