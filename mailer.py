"""Runs the Tandem mailer: sends the mails the workers hand over (``TANDEM_MAIL_DELIVERY=
mailer``). Run one or more next to the workers; stop it with SIGTERM (it finishes its sends)."""

from __future__ import annotations

import asyncio

import structlog

from activities.db import create_pool
from activities.dispatch import MailDispatcher
from activities.mail import Outbox, Sender
from tandem.programs import ProgramCatalog
from tandem.settings import Settings

log = structlog.get_logger(__name__)


async def run_mailer(
    settings: Settings, dsn: str, *, stop: asyncio.Event, sender: Sender | None = None
) -> None:
    """Send until ``stop`` is set, then finish the sends begun and return."""
    from activities.smtp import SmtpSender

    pool = await create_pool(dsn, max_size=settings.mailer_concurrency + 2)
    relay = sender or SmtpSender(settings)
    try:
        outbox = Outbox(pool, settings, relay, ProgramCatalog(settings.programs_dir))
        dispatcher = MailDispatcher(pool, outbox, concurrency=settings.mailer_concurrency)
        await dispatcher.run(stop)
    finally:
        if isinstance(relay, SmtpSender):
            await relay.close()  # QUIT on the relay sessions kept open
        await pool.close()


async def main() -> None:
    """``python mailer.py`` / ``tandem mailer``: send until SIGINT/SIGTERM."""
    from starter.common import database_url, stop_on_signals
    from tandem.logging import configure_logging
    from tandem.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    stop = stop_on_signals()
    await run_mailer(settings, database_url(settings), stop=stop)


if __name__ == "__main__":
    asyncio.run(main())
