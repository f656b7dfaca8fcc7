"""The people on file and the programmes in Postgres: idempotent upserts and typed look-ups.

An upsert only touches a row whose values changed, so re-importing a file is a no-op and
``updated_at`` tells when a person's data really changed. The optional columns
(``salutation``, ``title``) are written only for rows that set them: a file written before
they existed changes nothing of what a newer file stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from functools import cache
from typing import TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pydantic import BaseModel, ValidationError

from activities.scrub import InvalidRecord, validation_summary
from tandem.csv_import import MENTEE_COLUMNS, MENTOR_COLUMNS, PERSON_OPTIONAL
from tandem.models import Mentee, Mentor
from tandem.programs import Program

#: A plain connection or one borrowed from a pool: every function here takes either.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

#: Called with how many rows have been applied so far (for progress bars).
ProgressHook = Callable[[int], None]

_BATCH = 500
P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class ImportCounts:
    """What an import did: rows inserted, rows changed, rows already as in the file."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@cache
def _upsert_sql(table: str, columns: tuple[str, ...]) -> str:
    """Insert, or update only when some column differs; returns a row only when it wrote one."""
    names = ", ".join(columns)
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    data = [c for c in columns if c != "id"]
    sets = ", ".join(f"{c} = excluded.{c}" for c in data)
    old = ", ".join(f"{table}.{c}" for c in data)
    new = ", ".join(f"excluded.{c}" for c in data)
    return (
        f"INSERT INTO {table} ({names}) VALUES ({values})"
        f" ON CONFLICT (id) DO UPDATE SET {sets}, updated_at = now()"
        f" WHERE ({old}) IS DISTINCT FROM ({new})"
        " RETURNING (xmax = 0) AS created"
    )


async def apply_mentors(
    conn: Conn, rows: Sequence[Mentor], *, on_progress: ProgressHook | None = None
) -> ImportCounts:
    """Upsert every mentor in one transaction: all of the file or nothing."""
    return await _apply(conn, "mentors", MENTOR_COLUMNS, rows, on_progress)


async def apply_mentees(
    conn: Conn, rows: Sequence[Mentee], *, on_progress: ProgressHook | None = None
) -> ImportCounts:
    """Upsert every mentee in one transaction: all of the file or nothing."""
    return await _apply(conn, "mentees", MENTEE_COLUMNS, rows, on_progress)


def _db_value(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


def _written_columns(row: BaseModel, columns: tuple[str, ...]) -> tuple[str, ...]:
    """The columns an upsert of ``row`` writes: an optional one only if the row set it
    (parsed from a file with that column, or given explicitly)."""
    return tuple(c for c in columns if c not in PERSON_OPTIONAL or c in row.model_fields_set)


async def _apply(
    conn: Conn,
    table: str,
    columns: tuple[str, ...],
    rows: Sequence[Mentor] | Sequence[Mentee],
    on_progress: ProgressHook | None,
) -> ImportCounts:
    if len({r.id for r in rows}) != len(rows):
        raise ValueError("the same id appears twice in one import")
    # One file's rows all have the same columns; rows given in code may differ.
    groups: dict[tuple[str, ...], list[tuple[object, ...]]] = {}
    for r in rows:
        written_columns = _written_columns(r, columns)
        groups.setdefault(written_columns, []).append(
            tuple(_db_value(getattr(r, c)) for c in written_columns)
        )
    created = updated = done = 0
    async with conn.transaction():
        for written_columns, args in groups.items():
            sql = _upsert_sql(table, written_columns)
            for start in range(0, len(args), _BATCH):
                batch = args[start : start + _BATCH]
                written = await conn.fetchmany(sql, batch)
                created += sum(1 for r in written if r["created"])
                updated += sum(1 for r in written if not r["created"])
                done += len(batch)
                if on_progress is not None:
                    on_progress(done)
    return ImportCounts(created, updated, len(rows) - created - updated)


async def get_mentor(conn: Conn, mentor_id: str) -> Mentor | None:
    row = await conn.fetchrow(
        f"SELECT {', '.join(MENTOR_COLUMNS)} FROM mentors WHERE id = $1", mentor_id
    )
    return None if row is None else _validated(Mentor, dict(row))


async def get_mentee(conn: Conn, mentee_id: str) -> Mentee | None:
    row = await conn.fetchrow(
        f"SELECT {', '.join(MENTEE_COLUMNS)} FROM mentees WHERE id = $1", mentee_id
    )
    return None if row is None else _validated(Mentee, dict(row))


def _validated(model: type[P], row: dict[str, object]) -> P:
    """The row as a model; a row that does not validate raises ``InvalidRecord`` naming the
    id and the fields only (pydantic's own message repeats the values: addresses, names)."""
    try:
        return model.model_validate(row)
    except ValidationError as err:
        what = f"{model.__name__.lower()} {row.get('id')}"
        raise InvalidRecord(f"{what} on file is invalid: {validation_summary(err)}") from None


async def get_mentees(conn: Conn, mentee_ids: Sequence[str]) -> dict[str, Mentee]:
    """The mentees on file among ``mentee_ids``, by id, in one query."""
    rows = await conn.fetch(
        f"SELECT {', '.join(MENTEE_COLUMNS)} FROM mentees WHERE id = ANY($1::text[])",
        list(mentee_ids),
    )
    return {r["id"]: _validated(Mentee, dict(r)) for r in rows}


async def list_mentee_ids(conn: Conn, program: str | None = None) -> list[str]:
    """Every mentee id on file (of one programme if given), sorted."""
    rows = await conn.fetch(
        "SELECT id FROM mentees WHERE $1::text IS NULL OR program = $1 ORDER BY id", program
    )
    return [str(r["id"]) for r in rows]


async def upsert_programs(conn: Conn, programs: dict[str, Program]) -> int:
    """Store each programme's id, name and rules; returns how many rows were written."""
    written = await conn.fetchmany(
        "INSERT INTO programs (id, name, rules) VALUES ($1, $2, $3::jsonb)"
        " ON CONFLICT (id) DO UPDATE SET name = excluded.name, rules = excluded.rules,"
        " updated_at = now()"
        " WHERE (programs.name, programs.rules) IS DISTINCT FROM (excluded.name, excluded.rules)"
        " RETURNING id",
        [(p.id, p.name, json.dumps(p.model_dump(mode="json"))) for p in programs.values()],
    )
    return len(written)
