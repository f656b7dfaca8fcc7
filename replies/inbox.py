"""The durable inbox: a reply is stored before the transport says "accepted", and tried until
the workflow took it or refused it.

Updates need a running worker, so an answer can wait: the raw mail stays in ``inbound_mail``
(and only there) with a growing back-off. Once decided, the row is deleted and a verdict row
without content is written, in one transaction. Rows are leased (``FOR UPDATE SKIP
LOCKED``), so several gateways can share one inbox and a crashed one loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from activities import metrics
from replies.pipeline import Inbound, Pipeline, RetryLater, Verdict, VerdictKind

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    first_delay: float = 2.0
    factor: float = 2.0
    max_delay: float = 900.0
    #: After this, an answer nobody took is given up (verdict ``refused``/``gave_up``).
    give_up_after: timedelta = timedelta(days=7)
    #: How long one attempt holds a mail before another process may take it; renewed every
    #: third of it while the attempt runs, so a gateway killed mid-decision delays a reply
    #: by about this much, not more.
    lease: float = 45.0
    #: How often the loop looks for due mail when nobody wakes it.
    poll: float = 30.0

    def delay(self, attempts: int) -> float:
        return min(self.first_delay * self.factor ** max(attempts - 1, 0), self.max_delay)


class Inbox:
    def __init__(
        self,
        pool: asyncpg.Pool,
        pipeline: Pipeline,
        *,
        policy: RetryPolicy | None = None,
        concurrency: int = 8,
    ) -> None:
        self._pool = pool
        self._pipeline = pipeline
        self.policy = policy or RetryPolicy()
        self._concurrency = concurrency
        self._wakeup = asyncio.Event()

    async def store(
        self,
        raw: bytes,
        *,
        transport: str,
        rcpt_tokens: Sequence[str] = (),
        null_sender: bool = False,
    ) -> int:
        """Keep the mail durably (committed when this returns); its inbox id."""
        inbound_id = await self._pool.fetchval(
            "INSERT INTO inbound_mail (transport, raw, rcpt_tokens, null_sender)"
            " VALUES ($1, $2, $3, $4) RETURNING id",
            transport,
            raw,
            list(rcpt_tokens),
            null_sender,
        )
        assert isinstance(inbound_id, int)
        self.wake()
        return inbound_id

    def wake(self) -> None:
        """New mail: look now instead of at the next poll."""
        self._wakeup.set()

    async def pending(self) -> int:
        count = await self._pool.fetchval("SELECT count(*) FROM inbound_mail")
        return int(count or 0)

    async def process_due(self) -> int:
        """One pass: decide every mail due now (up to ``concurrency`` at once); how many."""
        rows = await self._claim(self._concurrency)
        await asyncio.gather(*(self._attempt(row) for row in rows))
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: keep up to ``concurrency`` mails in work, claim more as slots free
        up, sleep until woken (new mail, a slot freed) or the next mail is due."""
        in_flight: set[asyncio.Task[None]] = set()
        failures = 0
        try:
            while not stop.is_set():
                self._wakeup.clear()
                free = self._concurrency - len(in_flight)
                wait = self.policy.poll
                try:
                    rows = await self._claim(free) if free > 0 else []
                    for row in rows:
                        task = asyncio.create_task(self._attempt(row))
                        in_flight.add(task)
                        task.add_done_callback(self._finished(in_flight))
                    if free > 0 and len(rows) == free:
                        continue  # maybe more is due: claim again when a slot frees
                    if free > 0:
                        wait = await self._next_due_in()
                    failures = 0
                except Exception as err:  # the database away, most likely: keep running
                    failures += 1
                    wait = self.policy.delay(failures)
                    log.warning("inbox_unavailable", error=type(err).__name__, retry_in=wait)
                await _wait_any(stop, self._wakeup, wait)
        finally:
            if in_flight:  # let what is being decided finish (the caller bounds the wait)
                await asyncio.gather(*in_flight, return_exceptions=True)

    def _finished(self, in_flight: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.warning("reply_attempt_failed", error=type(task.exception()).__name__)
            self._wakeup.set()

        return done

    async def _claim(self, limit: int) -> list[asyncpg.Record]:
        return await self._pool.fetch(
            """
            UPDATE inbound_mail
               SET leased_until = now() + make_interval(secs => $2), attempts = attempts + 1
             WHERE id IN (SELECT id FROM inbound_mail
                           WHERE next_attempt_at <= now()
                             AND (leased_until IS NULL OR leased_until < now())
                           ORDER BY id
                           LIMIT $1
                           FOR UPDATE SKIP LOCKED)
            RETURNING id, received_at, raw, rcpt_tokens, null_sender, attempts
            """,
            limit,
            self.policy.lease,
        )

    async def _next_due_in(self) -> float:
        seconds = await self._pool.fetchval(
            "SELECT extract(epoch FROM min(greatest(next_attempt_at, coalesce(leased_until,"
            " next_attempt_at))) - now()) FROM inbound_mail"
        )
        if seconds is None:
            return self.policy.poll
        return float(min(max(float(seconds), 0.05), self.policy.poll))

    async def _attempt(self, row: asyncpg.Record) -> None:
        mail = Inbound(
            id=row["id"],
            raw=bytes(row["raw"]),
            received_at=row["received_at"],
            rcpt_tokens=tuple(row["rcpt_tokens"] or ()),
            null_sender=row["null_sender"],
        )
        attempts: int = row["attempts"]
        renewing = asyncio.create_task(self._keep_leased(mail.id))
        try:
            verdict = await self._pipeline.process(mail)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # RetryLater, or anything the pipeline did not expect
            reason = str(err) if isinstance(err, RetryLater) else type(err).__name__
            if datetime.now(UTC) - mail.received_at < self.policy.give_up_after:
                await self._retry_later(mail.id, attempts, reason)
                return
            verdict = Verdict(VerdictKind.REFUSED, "gave_up", _raw_hash(mail.raw))
            log.warning("reply_given_up", inbound_id=mail.id, attempts=attempts, last=reason)
        finally:
            renewing.cancel()
        await self._decided(mail, verdict, attempts)

    async def _keep_leased(self, inbound_id: int) -> None:
        """While an attempt runs (the workflow may take a while), its lease is extended."""
        while True:
            await asyncio.sleep(self.policy.lease / 3)
            with contextlib.suppress(Exception):  # the database away: the lease just runs out
                await self._pool.execute(
                    "UPDATE inbound_mail SET leased_until = now() + make_interval(secs => $2)"
                    " WHERE id = $1 AND leased_until IS NOT NULL",
                    inbound_id,
                    self.policy.lease,
                )

    async def _retry_later(self, inbound_id: int, attempts: int, reason: str) -> None:
        delay = self.policy.delay(attempts)
        await self._pool.execute(
            "UPDATE inbound_mail SET leased_until = NULL, last_error = $2,"
            " next_attempt_at = now() + make_interval(secs => $3) WHERE id = $1",
            inbound_id,
            reason[:100],
            delay,
        )
        log.info(
            "reply_retry",
            inbound_id=inbound_id,
            attempts=attempts,
            why=reason[:100],
            retry_in=round(delay, 1),
        )

    async def _decided(self, mail: Inbound, verdict: Verdict, attempts: int) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if verdict.kind is VerdictKind.ACCEPTED and verdict.reason == "answered":
                verdict = await self._once(conn, verdict)
            await conn.execute(
                """
                INSERT INTO reply_verdicts (inbound_id, received_at, message_id_hash, verdict,
                                            reason, mentee_id, role, request_id, intent, attempts)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                ON CONFLICT (inbound_id) DO NOTHING
                """,
                mail.id,
                mail.received_at,
                verdict.message_id_hash,
                verdict.kind.value,
                verdict.reason[:100],
                verdict.mentee_id,
                verdict.role,
                verdict.request_id,
                verdict.intent,
                attempts,
            )
            await conn.execute("DELETE FROM inbound_mail WHERE id = $1", mail.id)
        metrics.reply_decided(verdict.kind.value, verdict.reason.split(":")[0][:40])
        log.info(
            "reply_decided",
            inbound_id=mail.id,
            verdict=verdict.kind.value,
            reason=verdict.reason,
            mentee_id=verdict.mentee_id,
            role=verdict.role,
            request_id=verdict.request_id,
            intent=verdict.intent,
            attempts=attempts,
        )

    @staticmethod
    async def _once(conn: PoolConnectionProxy[asyncpg.Record], verdict: Verdict) -> Verdict:
        """Copies of one reply decided at once (a primary and a backup MX handed it to two
        gateways) were both taken by the workflow as one answer (the update id is the
        answer's), and both found no verdict before them: the first to be recorded is the
        answer, any other a duplicate. Serialised per Message-ID hash for this transaction."""
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            "tandem-reply/" + verdict.message_id_hash,
        )
        answered = await conn.fetchval(
            "SELECT 1 FROM reply_verdicts WHERE message_id_hash = $1 AND verdict = 'accepted'"
            " AND reason = 'answered' LIMIT 1",
            verdict.message_id_hash,
        )
        return verdict if answered is None else replace(verdict, reason="duplicate")


def _raw_hash(raw: bytes) -> str:
    return hashlib.sha256(b"raw:" + raw).hexdigest()


async def _wait_any(stop: asyncio.Event, wakeup: asyncio.Event, seconds: float) -> None:
    waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wakeup.wait())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waiters, return_exceptions=True)
