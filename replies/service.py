"""The gateway put together: SMTP/LMTP server (+ IMAP poller when ``imap_host`` is set) +
durable inbox loop + pipeline, from settings. Both transports feed the same inbox.

``tandem gateway`` runs it alone; ``tandem dev`` runs it beside the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from email.utils import parseaddr

import asyncpg
import structlog

from activities import metrics
from replies.directory import PgDirectory
from replies.imap_poller import Backoff, ImapConfig, ImapPoller
from replies.inbox import Inbox, RetryPolicy
from replies.notify import MailNotifier, Sender
from replies.pipeline import Answerer, Limits, Pipeline, PipelineConfig, own_addresses
from replies.smtp_gateway import SmtpGateway
from tandem.settings import Settings

log = structlog.get_logger(__name__)


def pipeline_config(settings: Settings) -> PipelineConfig:
    return PipelineConfig(
        mail_domain=settings.mail_domain,
        reply_domain=settings.reply_domain,
        office_address=settings.office_address,
        own_addresses=own_addresses([parseaddr(settings.mail_from)[1], settings.office_address]),
        own_domains=frozenset({settings.reply_domain.lower()}),
        trusted_authserv_id=settings.gateway_trusted_authserv_id,
        limits=Limits(max_bytes=settings.gateway_max_message_bytes),
    )


class ReplyGateway:
    """Everything inbound, started and stopped as one part."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        answerer: Answerer,
        sender: Sender,
        *,
        policy: RetryPolicy | None = None,
        port: int | None = None,
        imap_backoff: Backoff | None = None,
    ) -> None:
        directory = PgDirectory(pool)
        self.pipeline = Pipeline(
            pipeline_config(settings), directory, answerer, MailNotifier(pool, settings, sender)
        )
        self.inbox = Inbox(
            pool,
            self.pipeline,
            policy=policy or RetryPolicy(give_up_after=timedelta(days=settings.gateway_retry_days)),
        )
        self.smtp = SmtpGateway(
            self.inbox,
            directory,
            reply_domain=settings.reply_domain,
            office_address=settings.office_address,
            host=settings.gateway_host,
            port=settings.gateway_port if port is None else port,
            lmtp=settings.gateway_lmtp,
            max_message_bytes=settings.gateway_max_message_bytes,
            hostname=settings.gateway_hostname,
        )
        #: Reads the office mailbox when ``imap_host`` is set (``ValueError`` when its
        #: settings are incomplete).
        self.imap: ImapPoller | None = None
        if settings.imap_host:
            self.imap = ImapPoller(
                ImapConfig.from_settings(settings),
                pool,
                self.inbox,
                self.pipeline.config,
                backoff=imap_backoff,
            )
        self._pool = pool
        self._stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.imap_task: asyncio.Task[None] | None = None
        self._sampler: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return self.smtp.port

    async def start(self) -> None:
        """Listen, and start deciding (mail left from an earlier run included)."""
        await self.smtp.start()
        self._stop.clear()
        self.task = asyncio.create_task(self.inbox.run(self._stop), name="reply-inbox")
        if self.imap is not None:
            self.imap_task = asyncio.create_task(self.imap.run(self._stop), name="reply-imap")
        self._sampler = asyncio.create_task(metrics.sample_inbox(self._pool, self._stop))

    async def stop(self, grace: float = 10.0) -> None:
        """Stop listening (and reading the mailbox) first, then let the inbox finish what it
        is deciding."""
        await self.smtp.stop()
        self._stop.set()
        tasks = {t for t in (self.imap_task, self.task, self._sampler) if t is not None}
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.task = None
        self.imap_task = None
        self._sampler = None

    async def __aenter__(self) -> ReplyGateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
