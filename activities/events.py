"""The event log and the tandem projection: what happened and when, for reports. No content."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from tandem.messages import StatusEvent


class EventActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def record_event(self, event: StatusEvent) -> None:
        """Append the event (keyed by mentee and sequence) and move the projection forward.

        A retry inserts nothing; an older event never overwrites a newer projection.
        """
        s = event.state
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO tandem_events (mentee_id, seq, at, kind, status, phase, mentor_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (mentee_id, seq) DO NOTHING
                """,
                s.mentee_id,
                event.seq,
                event.at,
                event.kind,
                s.status.value,
                s.phase,
                s.mentor_id,
            )
            await conn.execute(
                """
                INSERT INTO tandems (mentee_id, program, phase, status, mentor_id, cadence_days,
                                     next_nudge_at, last_contact_at, rematches, last_event_seq,
                                     updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                ON CONFLICT (mentee_id) DO UPDATE SET
                    program = excluded.program, phase = excluded.phase,
                    status = excluded.status, mentor_id = excluded.mentor_id,
                    cadence_days = excluded.cadence_days, next_nudge_at = excluded.next_nudge_at,
                    last_contact_at = excluded.last_contact_at, rematches = excluded.rematches,
                    last_event_seq = excluded.last_event_seq, updated_at = excluded.updated_at
                WHERE tandems.last_event_seq < excluded.last_event_seq
                """,
                s.mentee_id,
                s.program,
                s.phase,
                s.status.value,
                s.mentor_id,
                s.cadence_days,
                s.next_nudge_at,
                s.last_contact_at,
                s.rematches,
                event.seq,
                event.at,
            )
