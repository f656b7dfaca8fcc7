"""The rows of ``tandem report``, read from the projection (``tandems``), the event log
(``tandem_events``), ``program_ratings`` and ``outbox``.

Ids never leave the database: each tandem comes back as one row of status, phase, enrolment
date and its events' (time, kind) arrays; mails and ratings as counts.
"""

from __future__ import annotations

from datetime import datetime

from activities.people import Conn
from tandem.report import MailRow, RatingRow, TandemRow

#: One row per tandem (mentee and enrolment). The projection holds the latest tandem of each
#: mentee (``tandem doctor`` keeps it in line with Temporal); an earlier one's status and phase
#: are those of its last event. The programme is the mentee's, from the projection.
_TANDEMS = """
WITH ev AS (
    SELECT mentee_id, enrolment,
           array_agg(kind ORDER BY seq) AS kinds,
           array_agg(at ORDER BY seq) AS ats,
           (array_agg(status ORDER BY seq DESC))[1] AS status,
           (array_agg(phase ORDER BY seq DESC))[1] AS phase,
           min(at) FILTER (WHERE kind = 'enrolled') AS enrolled_at
    FROM tandem_events
    GROUP BY mentee_id, enrolment
), ids AS (
    SELECT mentee_id, enrolment FROM ev
    UNION
    SELECT mentee_id, enrolment FROM tandems
)
SELECT CASE WHEN p.enrolment = i.enrolment THEN p.status ELSE e.status END AS status,
       CASE WHEN p.enrolment = i.enrolment THEN p.phase ELSE e.phase END AS phase,
       e.enrolled_at,
       coalesce(e.kinds, '{}') AS kinds,
       coalesce(e.ats, '{}') AS ats
FROM ids i
LEFT JOIN ev e ON e.mentee_id = i.mentee_id AND e.enrolment = i.enrolment
LEFT JOIN tandems p ON p.mentee_id = i.mentee_id
WHERE ($1::text IS NULL OR p.program = $1)
  AND ($2::timestamptz IS NULL OR e.enrolled_at >= $2)
"""

_RATINGS = "SELECT count, total FROM program_ratings WHERE $1::text IS NULL OR program = $1"

_MAILS = """
SELECT count(*) FILTER (WHERE o.sent_at IS NOT NULL) AS sent,
       count(*) FILTER (WHERE o.sent_at IS NULL AND o.failed_at IS NOT NULL) AS refused,
       count(*) FILTER (WHERE o.sent_at IS NULL AND o.failed_at IS NULL) AS waiting
FROM outbox o
WHERE o.mentee_id IN (SELECT mentee_id FROM tandems WHERE $1::text IS NULL OR program = $1)
  AND ($2::timestamptz IS NULL OR o.created_at >= $2)
"""

_PROGRAMS = """
SELECT id FROM programs
UNION SELECT program FROM tandems
UNION SELECT program FROM program_ratings
"""


async def known_programs(conn: Conn) -> set[str]:
    """Every programme the database knows of (defined, with tandems, or with ratings)."""
    return {r["id"] for r in await conn.fetch(_PROGRAMS)}


async def report_rows(
    conn: Conn, program: str | None, since: datetime | None
) -> tuple[list[TandemRow], list[RatingRow], MailRow]:
    """The tandems of ``program`` (None: all) enrolled at or after ``since`` (None: all),
    the programme's ratings and its mails, read in one snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        tandems = [
            TandemRow(
                status=r["status"],
                phase=r["phase"],
                enrolled_at=r["enrolled_at"],
                events=list(zip(r["ats"], r["kinds"], strict=True)),
            )
            for r in await conn.fetch(_TANDEMS, program, since)
        ]
        ratings = [
            RatingRow(count=r["count"], total=r["total"])
            for r in await conn.fetch(_RATINGS, program)
        ]
        mail = await conn.fetchrow(_MAILS, program, since)
    assert mail is not None
    return (
        tandems,
        ratings,
        MailRow(sent=mail["sent"], refused=mail["refused"], waiting=mail["waiting"]),
    )
