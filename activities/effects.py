"""Carry out one transition's effects, in order: seats, reply tokens, mails, the event log.

Each effect is idempotent on its own (seat rows, the outbox's idempotency key, event keys), so
a retried activity changes nothing that was done already.
"""

from __future__ import annotations

import asyncpg
from temporalio import activity

from activities.events import record_event
from activities.mail import Outbox
from activities.people import Conn
from tandem.lifecycle.effects import (
    EffectBatch,
    RecordEvent,
    ReleaseSeat,
    ResendMails,
    RevokeTokens,
    SendMail,
)
from tandem.messages import EffectOutcome, MailRequest


class EffectActivities:
    def __init__(self, pool: asyncpg.Pool, outbox: Outbox) -> None:
        self._pool = pool
        self._outbox = outbox

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    @activity.defn
    async def carry_out(self, batch: EffectBatch) -> EffectOutcome:
        """Returns the mails the relay refused for good (the tandem records them and goes on)
        and the refused mails that a corrected address let through. One connection for the
        whole transition: a pool connection's release costs a round trip of its own."""
        outcome = EffectOutcome()
        async with self._pool.acquire() as conn:
            mails: list[MailRequest] = []
            for effect in batch.effects:
                if isinstance(effect, SendMail):
                    mails.append(batch.mail_request(effect))
                    continue
                await self._send_mails(conn, mails, outcome)
                mails = []
                if isinstance(effect, ResendMails):
                    for key in effect.keys:
                        if await self._outbox.resend(key) or await self._sent(conn, key):
                            outcome.resent.append(key)
                elif isinstance(effect, ReleaseSeat):
                    await conn.execute(
                        "DELETE FROM seats WHERE mentee_id = $1 AND mentor_id = $2",
                        effect.mentee_id,
                        effect.mentor_id,
                    )
                elif isinstance(effect, RevokeTokens):
                    await self._revoke(conn, effect)
                elif isinstance(effect, RecordEvent):
                    for event in batch.status_events(effect):
                        await record_event(conn, event)
            await self._send_mails(conn, mails, outcome)
        return outcome

    async def _send_mails(
        self, conn: Conn, mails: list[MailRequest], outcome: EffectOutcome
    ) -> None:
        """Mails that follow each other in the batch, sent together (people read once)."""
        if not mails:
            return
        for request, receipt in zip(mails, await self._outbox.send_all(conn, mails), strict=True):
            if receipt.failure is not None:
                failed = await self._outbox.failed_mail(request.idempotency_key)
                if failed is not None:
                    outcome.failed.append(failed)

    async def _sent(self, conn: Conn, key: str) -> bool:
        sent = await conn.fetchval(
            "SELECT sent_at IS NOT NULL FROM outbox WHERE idempotency_key = $1", key
        )
        return bool(sent)

    async def _revoke(self, conn: Conn, effect: RevokeTokens) -> None:
        await conn.execute(
            """
            UPDATE reply_tokens SET revoked_at = now()
            WHERE mentee_id = $1 AND revoked_at IS NULL
              AND ($2::text IS NULL OR person_id = $2)
              AND (cardinality($3::text[]) = 0 OR request_id = ANY ($3::text[]))
            """,
            effect.mentee_id,
            effect.person_id,
            effect.request_ids,
        )
