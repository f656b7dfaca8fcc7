"""Erasing one person from Tandem's database (GDPR Art. 17), and the scan that proves it.

``tandem forget`` first takes the person out of their running tandems (through the
workflow), then calls ``erase``: one transaction that deletes what is theirs (their row on
file, seats, reply addresses, mails to them and their unread replies) and replaces their id by
a random pseudonym where a row only counts something (the event log, the tandem projection,
verdicts), so reports keep their numbers and nobody can tell whose they were. Mail texts of
their tandems lose subject and body (they name the person); keys, Message-IDs and dates stay.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from activities.people import Conn
from activities.privacy import UnknownPerson

__all__ = ["ErasurePlan", "UnknownPerson", "erase", "erasure_plan", "new_pseudonym", "scan"]


def new_pseudonym() -> str:
    """Random, never derived from the id: nothing leads back from it to the person."""
    return f"erased-{secrets.token_hex(8)}"


@dataclass
class ErasurePlan:
    """What ``erase`` will touch: counts and tandem ids (the office's own ids), no content."""

    person_id: str
    is_mentee: bool
    is_mentor: bool
    #: The person's own tandem (as mentee), if any: it ends and its executions are deleted.
    own_tandem: str | None
    #: Tandems (mentee ids) the person was mentor in: they continue with another mentor.
    mentored: list[str] = field(default_factory=list)
    #: Rows per table that are deleted or rewritten.
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def tandems(self) -> list[str]:
        own = [self.own_tandem] if self.own_tandem else []
        return own + [t for t in self.mentored if t != self.own_tandem]


#: (table, what happens, the rows) for the plan and the erasure; ``$1`` is the person's id,
#: ``$2`` the tandems concerned (mentee ids).
_ROWS = (
    ("mentees", "deleted", "FROM mentees WHERE id = $1"),
    ("mentors", "deleted", "FROM mentors WHERE id = $1"),
    ("seats", "deleted", "FROM seats WHERE mentee_id = $1 OR mentor_id = $1"),
    ("reply_tokens", "deleted", "FROM reply_tokens WHERE person_id = $1 OR mentee_id = $1"),
    ("outbox", "emptied", "FROM outbox WHERE recipient_id = $1 OR mentee_id = ANY($2::text[])"),
    ("tandems", "pseudonymised", "FROM tandems WHERE mentee_id = $1 OR mentor_id = $1"),
    (
        "tandem_events",
        "pseudonymised",
        "FROM tandem_events WHERE mentee_id = $1 OR mentor_id = $1",
    ),
    ("reply_verdicts", "pseudonymised", "FROM reply_verdicts WHERE mentee_id = $1"),
)


async def erasure_plan(conn: Conn, person_id: str) -> ErasurePlan:
    """What is stored about ``person_id``; ``UnknownPerson`` when nothing is."""
    is_mentee = await conn.fetchval("SELECT 1 FROM mentees WHERE id = $1", person_id) is not None
    is_mentor = await conn.fetchval("SELECT 1 FROM mentors WHERE id = $1", person_id) is not None
    own = await conn.fetchval(
        "SELECT $1::text WHERE EXISTS (SELECT 1 FROM tandems WHERE mentee_id = $1)"
        " OR EXISTS (SELECT 1 FROM tandem_events WHERE mentee_id = $1)"
        " OR EXISTS (SELECT 1 FROM outbox WHERE mentee_id = $1)",
        person_id,
    )
    mentored = [
        r["mentee_id"]
        for r in await conn.fetch(
            "SELECT mentee_id FROM tandems WHERE mentor_id = $1"
            " UNION SELECT mentee_id FROM tandem_events WHERE mentor_id = $1"
            " UNION SELECT mentee_id FROM seats WHERE mentor_id = $1"
            " UNION SELECT mentee_id FROM reply_tokens WHERE person_id = $1 AND role = 'mentor'"
            " ORDER BY 1",
            person_id,
        )
    ]
    if not (is_mentee or is_mentor or own or mentored):
        raise UnknownPerson(person_id)
    plan = ErasurePlan(person_id, is_mentee, is_mentor, own, mentored)
    for table, _, rows in _ROWS:
        args = (person_id, plan.tandems) if "$2" in rows else (person_id,)
        count = await conn.fetchval(f"SELECT count(*) {rows}", *args)
        if count:
            plan.rows[table] = count
    return plan


async def erase(conn: Conn, person_id: str, pseudonym: str) -> dict[str, int]:
    """Delete and pseudonymise as the plan says, in one transaction; rows touched per table.
    Run after the workflows let go of the person: a second run finds nothing more to do."""
    plan = await erasure_plan(conn, person_id)
    tandems = plan.tandems
    touched: dict[str, int] = {}

    def add(table: str, status: str) -> None:
        count = int(status.rsplit(" ", 1)[-1])
        if count:
            touched[table] = touched.get(table, 0) + count

    async with conn.transaction():
        await conn.execute("SET LOCAL tandem.erasure = 'on'")
        addresses = [
            r["email"]
            for r in await conn.fetch(
                "SELECT email FROM mentees WHERE id = $1 UNION SELECT email FROM mentors"
                " WHERE id = $1",
                person_id,
            )
        ]
        # Replies from them not read yet: they are the person's own words.
        for address in addresses:
            add(
                "inbound_mail",
                await conn.execute(
                    "DELETE FROM inbound_mail"
                    " WHERE strpos(lower(encode(raw, 'escape')), lower($1)) > 0",
                    address,
                ),
            )
        add("seats", await conn.execute(f"DELETE {_ROWS[2][2]}", person_id))
        add("reply_tokens", await conn.execute(f"DELETE {_ROWS[3][2]}", person_id))
        # Mails to them: no address, no text; one not sent yet is not sent any more.
        add(
            "outbox",
            await conn.execute(
                "UPDATE outbox SET subject = '', body = '', to_address = '', reply_to = NULL,"
                " recipient_id = $2,"
                " failed_at = CASE WHEN sent_at IS NULL THEN coalesce(failed_at, now()) END,"
                " failure = CASE WHEN sent_at IS NULL THEN 'erased' ELSE failure END"
                " WHERE recipient_id = $1",
                person_id,
                pseudonym,
            ),
        )
        # Mails of their tandems to others name them: the texts of those sent go.
        add(
            "outbox",
            await conn.execute(
                "UPDATE outbox SET subject = '', body = '' WHERE mentee_id = ANY($1::text[])"
                " AND (sent_at IS NOT NULL OR failed_at IS NOT NULL) AND body <> ''",
                tandems,
            ),
        )
        # The office's digests name them beside their id: those texts go too.
        add(
            "outbox",
            await conn.execute(
                "UPDATE outbox SET subject = '', body = '' WHERE template = 'digest_coordinator'"
                " AND body <> '' AND strpos(lower(body), lower($1)) > 0",
                person_id,
            ),
        )
        add(
            "outbox",
            await conn.execute(
                "UPDATE outbox SET mentee_id = $2,"
                " idempotency_key = replace(idempotency_key, $1, $2) WHERE mentee_id = $1",
                person_id,
                pseudonym,
            ),
        )
        for table in ("tandems", "tandem_events"):
            for column in ("mentee_id", "mentor_id"):
                add(
                    table,
                    await conn.execute(
                        f"UPDATE {table} SET {column} = $2 WHERE {column} = $1",
                        person_id,
                        pseudonym,
                    ),
                )
        add(
            "reply_verdicts",
            await conn.execute(
                "UPDATE reply_verdicts SET mentee_id = $2 WHERE mentee_id = $1",
                person_id,
                pseudonym,
            ),
        )
        add("mentees", await conn.execute("DELETE FROM mentees WHERE id = $1", person_id))
        add("mentors", await conn.execute("DELETE FROM mentors WHERE id = $1", person_id))
    return touched


_SCANNED_TYPES = ("text", "character varying", "bytea", "jsonb", "json", "ARRAY")


async def scan(conn: Conn, needles: list[str]) -> dict[str, int]:
    """Rows of every table and column (text, bytes, JSON, arrays) that still hold one of
    ``needles`` (case-insensitive; an id only as a whole word): ``{"table.column": rows}``.
    The values are never returned."""
    columns = await conn.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND data_type = ANY($1::text[])"
        " ORDER BY table_name, column_name",
        list(_SCANNED_TYPES),
    )
    words = [n.lower() for n in needles if n]
    patterns = [re.compile(rf"(?<![\w-]){re.escape(w)}(?![\w-])") for w in words]
    found: dict[str, int] = {}
    for col in columns:
        table, column = col["table_name"], col["column_name"]
        text = (
            f"encode(\"{column}\", 'escape')"
            if col["data_type"] == "bytea"
            else f'"{column}"::text'
        )
        values = await conn.fetch(
            f'SELECT lower({text}) AS v FROM "{table}" WHERE EXISTS'
            f" (SELECT 1 FROM unnest($1::text[]) w WHERE strpos(lower({text}), w) > 0)",
            words,
        )
        hits = sum(1 for r in values if any(p.search(r["v"]) for p in patterns))
        if hits:
            found[f"{table}.{column}"] = hits
    return found
