"""Hands a finished message to the SMTP relay (the dev sink, Mailpit, or the office's relay)."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from tandem.settings import Settings


class SmtpSender:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self._settings
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=30,
        )
