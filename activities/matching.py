"""Matching against Postgres: rank in the core, then take a seat atomically."""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.people import Conn, get_mentee
from tandem.matching import Candidate, rank
from tandem.messages import MatchRequest, MatchResult
from tandem.models import Language, Mentor

log = structlog.get_logger(__name__)

_CANDIDATES = """
SELECT m.id, m.first_name, m.last_name, m.email, m.programs, m.region, m.specialty,
       m.capacity, m.language,
       m.capacity - (SELECT count(*) FROM seats s WHERE s.mentor_id = m.id) AS free_seats
FROM mentors m
WHERE $1 = ANY (m.programs)
  AND m.capacity > (SELECT count(*) FROM seats s WHERE s.mentor_id = m.id)
"""


class MatchingActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def find_mentor(self, request: MatchRequest) -> MatchResult:
        """Find and reserve the best free mentor. A retry returns the seat already taken."""
        async with self._pool.acquire() as conn:
            held = await conn.fetchval(
                "SELECT mentor_id FROM seats WHERE mentee_id = $1", request.mentee_id
            )
            if held is not None:
                return MatchResult(mentor_id=held, reasons=["seat already reserved"])
            mentee = await get_mentee(conn, request.mentee_id)
            if mentee is None:
                raise ApplicationError(
                    f"unknown mentee {request.mentee_id}", non_retryable=True, type="UnknownMentee"
                )
            rows = await conn.fetch(_CANDIDATES, request.program)
            candidates = [_candidate(r) for r in rows]
            ranked = rank(mentee, candidates, request.excluded_mentor_ids)
            for choice in ranked:
                if await take_seat(conn, request.mentee_id, choice.mentor_id):
                    log.info(
                        "mentor_reserved",
                        mentee_id=request.mentee_id,
                        mentor_id=choice.mentor_id,
                        score=choice.total,
                    )
                    return MatchResult(
                        mentor_id=choice.mentor_id,
                        score=choice.total,
                        reasons=choice.reasons,
                        candidates=len(ranked),
                    )
        log.info("no_mentor_free", mentee_id=request.mentee_id, candidates=len(ranked))
        return MatchResult(candidates=len(ranked))


async def take_seat(conn: Conn, mentee_id: str, mentor_id: str) -> bool:
    """Reserve one of the mentor's seats, or say no. The row lock makes the last seat safe."""
    async with conn.transaction():
        capacity = await conn.fetchval(
            "SELECT capacity FROM mentors WHERE id = $1 FOR UPDATE", mentor_id
        )
        if capacity is None:
            return False
        taken = await conn.fetchval("SELECT count(*) FROM seats WHERE mentor_id = $1", mentor_id)
        if taken >= capacity:
            return False
        status = await conn.execute(
            "INSERT INTO seats (mentee_id, mentor_id) VALUES ($1, $2)"
            " ON CONFLICT (mentee_id) DO NOTHING",
            mentee_id,
            mentor_id,
        )
        if status.endswith(" 1"):
            return True
        held = await conn.fetchval("SELECT mentor_id FROM seats WHERE mentee_id = $1", mentee_id)
        return bool(held == mentor_id)


def _candidate(row: asyncpg.Record) -> Candidate:
    mentor = Mentor(
        id=row["id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        email=row["email"],
        programs=list(row["programs"]),
        region=row["region"],
        specialty=row["specialty"],
        capacity=row["capacity"],
        language=Language(row["language"]),
    )
    return Candidate(mentor=mentor, free_seats=int(row["free_seats"]))
