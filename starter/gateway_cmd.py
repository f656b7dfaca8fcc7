"""``tandem gateway``: take reply mail over SMTP (or LMTP behind Postfix) and hand each answer
to its tandem workflow, against an existing Temporal, PostgreSQL and SMTP relay."""

from __future__ import annotations

import asyncio
import errno
from contextlib import AsyncExitStack

import structlog
import typer
from temporalio.client import Client

from activities.db import create_pool
from activities.smtp import SmtpSender
from replies.answerer import TemporalAnswerer
from replies.service import ReplyGateway
from starter.common import (
    CommandError,
    connect_temporal,
    console,
    database_url,
    run,
    stop_on_signals,
)
from tandem.logging import configure_logging
from tandem.settings import Settings, get_settings

log = structlog.get_logger(__name__)


def gateway(
    host: str | None = typer.Option(
        None, "--host", help="Address to listen on (default: TANDEM_GATEWAY_HOST, 127.0.0.1)."
    ),
    port: int | None = typer.Option(
        None, "--port", help="Port to listen on (default: TANDEM_GATEWAY_PORT, 8026)."
    ),
    lmtp: bool | None = typer.Option(
        None,
        "--lmtp/--smtp",
        help="Speak LMTP (behind Postfix) instead of SMTP (default: TANDEM_GATEWAY_LMTP).",
    ),
) -> None:
    """Run the reply gateway until Ctrl-C: refuse unknown reply addresses, store each reply
    durably, read its answer and pass it to the tandem; confirmations go out by SMTP."""
    settings = get_settings()
    updates = {
        k: v
        for k, v in {"gateway_host": host, "gateway_port": port, "gateway_lmtp": lmtp}.items()
        if v is not None
    }
    if updates:
        settings = settings.model_copy(update=updates)
    configure_logging(settings.log_format, settings.log_level)
    run(serve(settings))


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Start, announce, and run until ``stop`` (or SIGINT/SIGTERM) or the inbox loop dies."""
    stop = stop or stop_on_signals()
    async with AsyncExitStack() as stack:
        gw = await start_gateway(stack, settings, database_url(settings), serve_metrics=True)
        proto = "LMTP" if settings.gateway_lmtp else "SMTP"
        where = f"{settings.gateway_host}:{gw.port}"
        console.print(
            f"reply gateway listening on {where} ({proto}); Ctrl-C to stop", highlight=False
        )
        if gw.imap is not None:
            cfg = gw.imap.config
            console.print(
                f"reading replies over IMAP from {cfg.host}:{cfg.port} folder {cfg.folder!r}"
                f" (processed mail to {cfg.processed_folder!r})",
                highlight=False,
            )
        assert gw.task is not None
        asked = asyncio.create_task(stop.wait())
        await asyncio.wait({asked, gw.task}, return_when=asyncio.FIRST_COMPLETED)
        asked.cancel()
        if gw.task.done() and not stop.is_set():
            crash = None if gw.task.cancelled() else gw.task.exception()
            raise CommandError(
                f"the reply inbox stopped: {type(crash).__name__ if crash else 'returned'}"
            )


async def start_gateway(
    stack: AsyncExitStack,
    settings: Settings,
    dsn: str,
    *,
    client: Client | None = None,
    serve_metrics: bool = False,
) -> ReplyGateway:
    """Pool, Temporal answerer, gateway; each stopped by ``stack`` in reverse order."""
    pool = await create_pool(dsn, max_size=10)
    stack.push_async_callback(pool.close)
    if not await pool.fetchval("SELECT to_regclass('inbound_mail') IS NOT NULL"):
        raise CommandError(
            "the database lacks the reply tables: start `tandem dev` once to migrate"
        )
    if settings.imap_host and not await pool.fetchval(
        "SELECT to_regclass('imap_folders') IS NOT NULL"
    ):
        raise CommandError("the database lacks the IMAP tables: start `tandem dev` once to migrate")
    temporal = client or await connect_temporal(settings, serve_metrics=serve_metrics)
    answerer = TemporalAnswerer(temporal, timeout=settings.gateway_answer_timeout)
    try:
        gw = ReplyGateway(settings, pool, answerer, SmtpSender(settings))
    except ValueError as err:  # incomplete IMAP settings
        raise CommandError(str(err)) from None
    try:
        await gw.start()
    except OSError as err:
        if err.errno != errno.EADDRINUSE:
            raise
        raise CommandError(
            f"port {settings.gateway_port} (reply gateway) is in use:"
            " stop what uses it or set TANDEM_GATEWAY_PORT"
        ) from None
    stack.push_async_callback(gw.stop)
    return gw
