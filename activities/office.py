"""What the programme office may look up about the people it runs tandems for: contact data
and where each tandem stands, by id (``tandem who``, the digest). Read from the tables the
office imported and the tandem projection; never from Temporal, which holds no names."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from activities.people import Conn
from activities.privacy import UnknownPerson

__all__ = ["UnknownPerson", "who"]


def _plain(row: Any) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in dict(row).items()}


async def who(conn: Conn, person_id: str) -> dict[str, Any]:
    """The person as mentee and/or mentor, with the other side of each tandem by name."""
    mentee = await conn.fetchrow(
        "SELECT id, salutation, title, first_name, last_name, email, program, phase, region,"
        " specialty, language FROM mentees WHERE id = $1",
        person_id,
    )
    mentor = await conn.fetchrow(
        "SELECT id, salutation, title, first_name, last_name, email, programs, region,"
        " specialty, capacity, language FROM mentors WHERE id = $1",
        person_id,
    )
    if mentee is None and mentor is None:
        raise UnknownPerson(person_id)
    result: dict[str, Any] = {"person_id": person_id, "as_mentee": None, "as_mentor": None}
    if mentee is not None:
        tandem = await conn.fetchrow(
            "SELECT t.status, t.phase, t.mentor_id, t.updated_at, t.rematches,"
            " m.first_name || ' ' || m.last_name AS mentor_name, m.email AS mentor_email"
            " FROM tandems t LEFT JOIN mentors m ON m.id = t.mentor_id WHERE t.mentee_id = $1",
            person_id,
        )
        result["as_mentee"] = {**_plain(mentee), "tandem": _plain(tandem) if tandem else None}
    if mentor is not None:
        mentees = await conn.fetch(
            "SELECT t.mentee_id, t.status, t.phase, t.updated_at,"
            " e.first_name || ' ' || e.last_name AS mentee_name, e.email AS mentee_email"
            " FROM tandems t LEFT JOIN mentees e ON e.id = t.mentee_id"
            " WHERE t.mentor_id = $1 AND t.status NOT IN ('completed', 'ended')"
            " ORDER BY t.mentee_id",
            person_id,
        )
        seats = await conn.fetchval("SELECT count(*) FROM seats WHERE mentor_id = $1", person_id)
        result["as_mentor"] = {
            **_plain(mentor),
            "seats_taken": seats,
            "tandems": [_plain(r) for r in mentees],
        }
    return result
