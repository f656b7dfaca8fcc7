"""The data on file the pipeline reads: reply tokens and the people they were made for."""

from __future__ import annotations

import asyncpg

from replies.pipeline import Person, TokenRecord
from tandem.mail import TOKEN_REF_BYTES
from tandem.models import Language, Role

_TABLES = {Role.MENTOR: "mentors", Role.MENTEE: "mentees"}
_ROLES = (Role.MENTOR.value, Role.MENTEE.value, Role.COORDINATOR.value)


class PgDirectory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def token(self, token_hash: bytes) -> TokenRecord | None:
        """The token with this hash, or with a hash starting with these ``TOKEN_REF_BYTES``
        (the reference a request's Message-ID carries)."""
        if len(token_hash) == TOKEN_REF_BYTES:
            row = await self._pool.fetchrow(
                "SELECT mentee_id, role, person_id, request_id, expires_at, revoked_at"
                " FROM reply_tokens WHERE substring(token_hash from 1 for 15) = $1",
                token_hash,
            )
        else:
            row = await self._pool.fetchrow(
                "SELECT mentee_id, role, person_id, request_id, expires_at, revoked_at"
                " FROM reply_tokens WHERE token_hash = $1",
                token_hash,
            )
        if row is None or row["role"] not in _ROLES:
            return None
        return TokenRecord(
            mentee_id=row["mentee_id"],
            role=Role(row["role"]),
            person_id=row["person_id"],
            request_id=row["request_id"],
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
        )

    async def answered_before(self, message_id_hash: str) -> bool:
        found = await self._pool.fetchval(
            "SELECT 1 FROM reply_verdicts WHERE message_id_hash = $1 AND verdict = 'accepted'"
            " LIMIT 1",
            message_id_hash,
        )
        return found is not None

    async def person(self, role: Role, person_id: str) -> Person | None:
        if role is Role.COORDINATOR:
            return await self._office(person_id)
        table = _TABLES.get(role)
        if table is None:
            return None
        row = await self._pool.fetchrow(
            f"SELECT email, first_name, last_name, language, salutation, title FROM {table}"
            " WHERE id = $1",
            person_id,
        )
        if row is None:
            return None
        language = row["language"] if row["language"] in ("de", "en") else "de"
        return Person(
            email=row["email"],
            first_name=row["first_name"],
            last_name=row["last_name"],
            language=Language(language),
            salutation=row["salutation"] or "",
            title=row["title"] or "",
        )

    async def _office(self, person_id: str) -> Person | None:
        """The programme office a proposal went to (``office:<programme>``): it answers from
        the programme's coordinator address, as the programme file has it now."""
        kind, _, program = person_id.partition(":")
        if kind != "office" or not program:
            return None
        row = await self._pool.fetchrow(
            "SELECT rules->>'coordinator_email' AS email, rules->>'language' AS language"
            " FROM programs WHERE id = $1",
            program,
        )
        if row is None or not row["email"]:
            return None
        language = row["language"] if row["language"] in ("de", "en") else "de"
        office = "Programmbüro" if language == "de" else "programme office"
        return Person(
            email=row["email"], first_name=office, last_name="", language=Language(language)
        )
