"""Anonymous ratings: only a per-programme aggregate is kept, never who gave which."""

from __future__ import annotations

from activities.people import Conn


async def record_rating(conn: Conn, program: str, answer_id: str, rating: int) -> bool:
    """Add one rating to the programme's aggregate; the same answer twice counts once."""
    if not 1 <= rating <= 5:
        raise ValueError("rating must be 1-5")
    async with conn.transaction():
        status = await conn.execute(
            "INSERT INTO rating_receipts (answer_id) VALUES ($1) ON CONFLICT DO NOTHING",
            answer_id,
        )
        if not status.endswith(" 1"):
            return False
        await conn.execute(
            """
            INSERT INTO program_ratings (program, count, total) VALUES ($1, 1, $2)
            ON CONFLICT (program) DO UPDATE
                SET count = program_ratings.count + 1, total = program_ratings.total + $2
            """,
            program,
            rating,
        )
    return True
