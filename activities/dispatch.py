"""``tandem mailer``: sends the mails the workers handed over, and nothing else.

Only this process talks to the relay when ``TANDEM_MAIL_DELIVERY=mailer``. A worker can then
die at any instant (``kill -9``, the OOM killer) without cutting a mail between the relay's
receipt of the data and its 250, which is the one window in which SMTP cannot tell whether a
mail arrived: the worker only waits for the row to be done. The mailer is small and stops
gracefully (SIGTERM): it takes nothing new and finishes the sends it began.

Each row is sent by ``Outbox.deliver`` under its per-mail lock, so two mailers, or a mailer and
``tandem doctor``, never send one row twice. A row the relay could not take yet waits with a
growing back-off (``next_attempt_at``); the worker's activity waits on meanwhile and after two
days the tandem needs attention, as when the worker sends itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import structlog
from temporalio.exceptions import ApplicationError

from activities.mail import HANDED_OVER, Listening, Outbox, listening, unlisten

log = structlog.get_logger(__name__)

#: Seconds between two looks at the table for due rows (notifications make most looks early).
LOOK_EVERY = 1.0
#: Back-off of a row the relay could not take: first and longest wait, in seconds.
FIRST_RETRY, LONGEST_RETRY = 1.0, 60.0


class MailDispatcher:
    def __init__(self, pool: asyncpg.Pool, outbox: Outbox, *, concurrency: int = 8) -> None:
        self._pool = pool
        self._outbox = outbox
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._conn: Listening | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[MailDispatcher]:
        """Serve in the background; on leaving, take nothing new and finish what was begun."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop), name="mailer")
        try:
            yield self
        finally:
            stop.set()
            await task

    async def run(self, stop: asyncio.Event) -> None:
        log.info("mailer_started", concurrency=self._concurrency)
        watcher = asyncio.create_task(stop.wait())
        watcher.add_done_callback(lambda _: self._wake.set())
        try:
            while not stop.is_set():
                try:
                    self._conn = await listening(
                        self._pool, self._conn, HANDED_OVER, self._notified
                    )
                    due = await self._due()
                except Exception as err:  # the database away: look again in a moment
                    log.warning("mailer_waits_for_database", error=type(err).__name__)
                    due = []
                for key in due:
                    if key not in self._sending and not stop.is_set():
                        await self._slots.acquire()
                        self._sending[key] = asyncio.create_task(self._send(key))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LOOK_EVERY):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            watcher.cancel()
            if self._sending:
                await asyncio.gather(*self._sending.values(), return_exceptions=True)
            if self._conn is not None:
                await unlisten(self._pool, self._conn, HANDED_OVER, self._notified)
            log.info("mailer_stopped")

    def _notified(self, _conn: object, _pid: int, _channel: str, _key: object) -> None:
        self._wake.set()

    async def _due(self) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT idempotency_key FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= now())"
            " ORDER BY created_at LIMIT $1",
            self._concurrency * 4,
        )
        return [r["idempotency_key"] for r in rows]

    async def _send(self, key: str) -> None:
        try:
            await self._outbox.deliver(key)
        except ApplicationError as err:
            await self._later(key, err.type or "SmtpError")
        except Exception as err:  # the database away: the row is looked at again
            log.warning("mail_not_sent", key=key, error=type(err).__name__)
        finally:
            self._sending.pop(key, None)
            self._slots.release()
            self._wake.set()  # a slot is free

    async def _later(self, key: str, error: str) -> None:
        """The relay could not take it now: try again after a back-off that grows with the
        attempts (``Outbox`` counted this one)."""
        log.warning("mail_deferred", key=key, error=error)
        with contextlib.suppress(Exception):  # the database away: the row is due at once
            await self._pool.execute(
                "UPDATE outbox SET last_error = $2, next_attempt_at = now()"
                " + make_interval(secs => least($4, $3 * power(2, least(attempts, 12) - 1)))"
                " WHERE idempotency_key = $1 AND sent_at IS NULL",
                key,
                error,
                FIRST_RETRY,
                LONGEST_RETRY,
            )
