"""Matching against Postgres: rank in the core, then take a seat atomically.

Cohort matching (``tandem enroll --all`` / ``--cohort``) plans one assignment for the mentees
enrolled together and reserves their seats here before their workflows start; each
workflow's ``find_mentor`` then finds its seat held and returns the plan's score and reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.people import Conn, get_mentee, get_mentees
from tandem.cohort import CohortPlan, Pairing, assign
from tandem.matching import Candidate, MentorRow, rank
from tandem.messages import MatchRequest, MatchResult
from tandem.models import Language

log = structlog.get_logger(__name__)

_CANDIDATES = """
SELECT m.id, m.programs, m.region, m.specialty, m.language,
       m.capacity - (SELECT count(*) FROM seats s WHERE s.mentor_id = m.id) AS free_seats
FROM mentors m
WHERE $1 = ANY (m.programs)
  AND m.capacity > (SELECT count(*) FROM seats s WHERE s.mentor_id = m.id)
"""

_COHORT_CANDIDATES = _CANDIDATES.replace("$1 = ANY (m.programs)", "m.programs && $1::text[]")

#: Reasons shown for a seat taken before and kept (a retry, or the doctor's repair).
HELD_REASONS = ["seat already reserved"]

#: One cohort plans and reserves at a time: another waits instead of planning on the same
#: free seats (the seats themselves are safe either way: ``take_seat`` locks the mentor).
_COHORT_LOCK = "tandem-cohort-matching"


class MatchingActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def find_mentor(self, request: MatchRequest) -> MatchResult:
        """Find and reserve the best free mentor. A retry returns the seat already taken."""
        async with self._pool.acquire() as conn:
            held = await conn.fetchrow(
                "SELECT mentor_id, score, reasons FROM seats WHERE mentee_id = $1",
                request.mentee_id,
            )
            if held is not None:
                return _held(held)
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


def _held(seat: asyncpg.Record) -> MatchResult:
    """A seat the mentee holds: planned by its cohort (with the plan's score and reasons),
    or taken by an earlier attempt of this activity."""
    if seat["score"] is None:
        return MatchResult(mentor_id=seat["mentor_id"], reasons=list(HELD_REASONS))
    return MatchResult(
        mentor_id=seat["mentor_id"],
        score=seat["score"],
        reasons=list(seat["reasons"] or []),
        candidates=1,
    )


async def take_seat(
    conn: Conn,
    mentee_id: str,
    mentor_id: str,
    *,
    score: float | None = None,
    reasons: Sequence[str] | None = None,
) -> bool:
    """Reserve one of the mentor's seats, or say no. The row lock makes the last seat safe.
    ``score`` and ``reasons`` are kept with a planned seat (cohort matching)."""
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
            "INSERT INTO seats (mentee_id, mentor_id, score, reasons) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (mentee_id) DO NOTHING",
            mentee_id,
            mentor_id,
            score,
            None if reasons is None else list(reasons),
        )
        if status.endswith(" 1"):
            return True
        held = await conn.fetchval("SELECT mentor_id FROM seats WHERE mentee_id = $1", mentee_id)
        return bool(held == mentor_id)


@dataclass(frozen=True)
class CohortReservation:
    """What cohort matching did before the workflows start: the seats reserved, and the
    mentees left out of the plan because they hold a seat already (their workflow takes it)."""

    plan: CohortPlan
    reserved: list[Pairing]
    holding_a_seat: list[str]

    def planned_mentor(self, mentee_id: str) -> str | None:
        return next((p.mentor_id for p in self.reserved if p.mentee_id == mentee_id), None)


async def reserve_cohort(conn: Conn, mentee_ids: Sequence[str]) -> CohortReservation:
    """Plan one assignment for these mentees over every free seat and reserve it, in one
    transaction (all seats or none). A mentee that holds a seat is left out; a seat another
    tandem took since the plan was made is not reserved, and its mentee matches alone."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _COHORT_LOCK)
        rows = await conn.fetch(
            "SELECT e.id, s.mentor_id IS NOT NULL AS holds_seat FROM mentees e"
            " LEFT JOIN seats s ON s.mentee_id = e.id"
            " WHERE e.id = ANY($1::text[]) ORDER BY e.created_at, e.id",
            list(dict.fromkeys(mentee_ids)),
        )
        holding = [r["id"] for r in rows if r["holds_seat"]]
        waiting_order = [r["id"] for r in rows if not r["holds_seat"]]
        on_file = await get_mentees(conn, waiting_order)
        mentees = [on_file[i] for i in waiting_order]
        programs = sorted({m.program for m in mentees})
        candidates = [_candidate(r) for r in await conn.fetch(_COHORT_CANDIDATES, programs)]
        plan = assign(mentees, candidates)
        reserved = []
        for pair in plan.pairs:
            if await take_seat(
                conn, pair.mentee_id, pair.mentor_id, score=pair.score, reasons=pair.reasons
            ):
                reserved.append(pair)
    return CohortReservation(plan=plan, reserved=reserved, holding_a_seat=holding)


async def release_planned_seat(conn: Conn, mentee_id: str, mentor_id: str) -> bool:
    """Give back a seat cohort matching planned (one with a planned score), say if it was.
    Called by the CLI, which reports itself: no log line to mix into its output."""
    status = await conn.execute(
        "DELETE FROM seats WHERE mentee_id = $1 AND mentor_id = $2 AND score IS NOT NULL",
        mentee_id,
        mentor_id,
    )
    return status.endswith(" 1")


def _candidate(row: asyncpg.Record) -> Candidate:
    """Ranking reads ids and traits only: names and addresses stay in the database."""
    mentor = MentorRow(
        id=row["id"],
        programs=tuple(row["programs"]),
        region=row["region"] or "",
        specialty=row["specialty"] or "",
        language=Language(row["language"]),
    )
    return Candidate(mentor=mentor, free_seats=int(row["free_seats"]))
