"""The SMTP (or LMTP, behind Postfix) transport of the reply gateway.

It refuses at ``RCPT`` whatever is no live reply address (unknown, expired or revoked token),
so a forged reply bounces at the sender's own server and we never send backscatter. It
limits the size (``552`` past ``gateway_max_message_bytes``), and says ``250`` only once the
mail is committed to the durable inbox; ``451`` (try again) when that fails.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import structlog
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from replies.inbox import Inbox
from replies.pipeline import Directory
from tandem.mail import token_from_address, token_hash

log = structlog.get_logger(__name__)

# aiosmtpd logs every command (RCPT TO:<address>) at INFO: addresses stay out of logs.
logging.getLogger("mail.log").setLevel(logging.WARNING)

MAX_RECIPIENTS = 10


class _Handler:
    def __init__(
        self,
        inbox: Inbox,
        directory: Directory,
        *,
        reply_domain: str,
        office_address: str,
        lmtp: bool,
    ) -> None:
        self.inbox = inbox
        self.directory = directory
        self.reply_domain = reply_domain
        self.office_address = office_address
        self.lmtp = lmtp
        self.transport = "lmtp" if lmtp else "smtp"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        token = token_from_address(
            address, reply_domain=self.reply_domain, office_address=self.office_address
        )
        if token is None:
            log.info("rcpt_refused", why="no_token")
            return "550 5.1.1 No such recipient"
        try:
            record = await self.directory.token(token_hash(token))
        except Exception as err:
            log.warning("rcpt_deferred", error=type(err).__name__)
            return "451 4.3.0 Temporary failure, please try again later"
        problem = "unknown_token" if record is None else record.problem_at(datetime.now(UTC))
        if problem is not None:
            log.info("rcpt_refused", why=problem)
            # The same neutral words for every case: nothing about the tandem or the token.
            return "550 5.1.1 This reply address is not (or no longer) valid"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        tokens: list[str] = getattr(envelope, "tandem_tokens", [])
        tokens.append(token)
        envelope.tandem_tokens = tokens  # type: ignore[attr-defined]
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        tokens: list[str] = getattr(envelope, "tandem_tokens", [])
        try:
            inbound_id = await self.inbox.store(
                raw,
                transport=self.transport,
                rcpt_tokens=tokens,
                null_sender=not (envelope.mail_from or "").strip("<> "),
            )
        except Exception as err:
            log.warning("reply_not_stored", error=type(err).__name__)
            return self._status("451 4.3.0 Could not store the mail, please try again", envelope)
        log.info("reply_received", inbound_id=inbound_id, transport=self.transport, size=len(raw))
        return self._status("250 2.0.0 Stored", envelope)

    async def handle_exception(self, error: Exception) -> str:
        log.warning("smtp_session_error", error=type(error).__name__)
        return "451 4.3.0 Temporary failure"

    def _status(self, status: str, envelope: Envelope) -> str:
        """LMTP answers DATA once per accepted recipient (RFC 2033)."""
        if not self.lmtp:
            return status
        return "\r\n".join([status] * max(len(envelope.rcpt_tos), 1))


class SmtpGateway:
    """An SMTP/LMTP server in the running asyncio loop that feeds the durable inbox."""

    def __init__(
        self,
        inbox: Inbox,
        directory: Directory,
        *,
        reply_domain: str,
        office_address: str = "",
        host: str = "127.0.0.1",
        port: int = 8026,
        lmtp: bool = False,
        max_message_bytes: int = 10_000_000,
        hostname: str = "tandem-gateway",
        timeout: float = 60.0,
    ) -> None:
        self.host = host
        self._port = port
        self._lmtp = lmtp
        self._max = max_message_bytes
        self._hostname = hostname
        self._timeout = timeout
        self._handler = _Handler(
            inbox, directory, reply_domain=reply_domain, office_address=office_address, lmtp=lmtp
        )
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port actually listened on (useful after ``port=0``)."""
        return self._port

    async def start(self) -> None:
        """Listen; raises ``OSError`` when the port is taken."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        protocol: type[SMTP] = LMTP if self._lmtp else SMTP
        kwargs: dict[str, Any] = {
            "hostname": self._hostname,
            "data_size_limit": self._max,
            "enable_SMTPUTF8": True,
            "decode_data": False,
            "timeout": self._timeout,
            "loop": loop,
        }
        self._server = await loop.create_server(
            lambda: protocol(self._handler, **kwargs), self.host, self._port
        )
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("gateway_listening", port=self._port, lmtp=self._lmtp)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> SmtpGateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
