"""The retention sweep's writes: purge what ``tandem.retention.RetentionPolicy`` says is past
its period. Each statement is idempotent (a purged row no longer matches), so a retried
activity changes nothing that was done already."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from temporalio import activity

from activities.erasure import erase, new_pseudonym
from activities.people import Conn
from tandem.retention import RetentionPolicy, SweepResult

#: Mail rows purged: no subject, no body, no address; key, Message-ID and dates stay.
#: Only sent mails: a refused one is sent again, with its text, once its address is corrected.
_MAILS_PAST = "FROM outbox WHERE sent_at < $1 AND body <> ''"
_VERDICTS_PAST = "FROM reply_verdicts WHERE decided_at < $1"
#: Mentees whose tandem closed longer ago than its programme keeps it (the projection's last
#: change is the close); an id erased already is a pseudonym and no longer on file.
_CLOSED_PAST = (
    "SELECT t.mentee_id FROM tandems t JOIN programs p ON p.id = t.program"
    " WHERE t.status IN ('completed', 'ended')"
    " AND t.updated_at < $1::timestamptz"
    " - coalesce((p.rules->>'closed_tandem_retention')::interval, interval '730 days')"
    " AND EXISTS (SELECT 1 FROM mentees m WHERE m.id = t.mentee_id)"
    " ORDER BY t.mentee_id"
)


async def sweep(
    conn: Conn, policy: RetentionPolicy, now: datetime, *, dry_run: bool
) -> SweepResult:
    mail_cutoff, verdict_cutoff = policy.mail_cutoff(now), policy.verdict_cutoff(now)
    closed = [r["mentee_id"] for r in await conn.fetch(_CLOSED_PAST, now)]
    if dry_run:
        return SweepResult(
            dry_run=True,
            mail_bodies=await conn.fetchval(f"SELECT count(*) {_MAILS_PAST}", mail_cutoff),
            reply_verdicts=await conn.fetchval(f"SELECT count(*) {_VERDICTS_PAST}", verdict_cutoff),
            closed_tandems=len(closed),
        )
    # Each mentee in a transaction of its own: a retried activity finds those done gone.
    for mentee_id in closed:
        await erase(conn, mentee_id, new_pseudonym())
    async with conn.transaction():
        mails = await conn.execute(
            "UPDATE outbox SET subject = '', body = '', to_address = '', reply_to = NULL"
            f" WHERE idempotency_key IN (SELECT idempotency_key {_MAILS_PAST})",
            mail_cutoff,
        )
        verdicts = await conn.execute(f"DELETE {_VERDICTS_PAST}", verdict_cutoff)
    return SweepResult(
        dry_run=False,
        mail_bodies=_count(mails),
        reply_verdicts=_count(verdicts),
        closed_tandems=len(closed),
    )


def _count(status: str) -> int:
    """The row count of a command tag such as ``UPDATE 3`` or ``DELETE 0``."""
    return int(status.rsplit(" ", 1)[-1])


class RetentionActivities:
    def __init__(self, pool: asyncpg.Pool, policy: RetentionPolicy) -> None:
        self._pool = pool
        self._policy = policy

    @activity.defn
    async def sweep_retention(self) -> SweepResult:
        """Counts only come back (ids and numbers, no content)."""
        async with self._pool.acquire() as conn:
            result = await sweep(conn, self._policy, datetime.now(UTC), dry_run=False)
        activity.logger.info("retention swept: %s", result.model_dump())
        return result
