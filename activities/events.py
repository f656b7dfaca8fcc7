"""The event log and the tandem projection: what happened and when, for reports. No content."""

from __future__ import annotations

from activities.people import Conn
from tandem.messages import StatusEvent

#: The event row and the projection in one statement: one round trip, atomic all the same.
_RECORD = """
WITH event AS (
    INSERT INTO tandem_events (mentee_id, enrolment, seq, at, kind, status, phase, mentor_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (mentee_id, enrolment, seq) DO NOTHING
    RETURNING 1
)
INSERT INTO tandems (mentee_id, program, phase, status, mentor_id, cadence_days,
                     next_nudge_at, last_contact_at, rematches, last_event_seq,
                     updated_at, enrolment)
VALUES ($1, $9, $7, $6, $8, $10, $11, $12, $13, $3, $4, $2)
ON CONFLICT (mentee_id) DO UPDATE SET
    program = excluded.program, phase = excluded.phase,
    status = excluded.status, mentor_id = excluded.mentor_id,
    cadence_days = excluded.cadence_days, next_nudge_at = excluded.next_nudge_at,
    last_contact_at = excluded.last_contact_at, rematches = excluded.rematches,
    last_event_seq = excluded.last_event_seq, updated_at = excluded.updated_at,
    enrolment = excluded.enrolment
WHERE (tandems.enrolment, tandems.last_event_seq)
      < (excluded.enrolment, excluded.last_event_seq)
"""


async def record_event(conn: Conn, event: StatusEvent) -> None:
    """Append the event (keyed by mentee, enrolment and sequence) and move the projection
    forward. A retry inserts nothing; an older event never overwrites a newer projection."""
    await conn.execute(
        _RECORD,
        event.mentee_id,
        event.enrolment,
        event.seq,
        event.at,
        event.kind,
        event.status.value,
        event.phase,
        event.mentor_id,
        event.program,
        event.cadence_days,
        event.next_nudge_at,
        event.last_contact_at,
        event.rematches,
    )
