"""What Tandem keeps about one person, gathered from every table (GDPR Art. 15 and 20).

The export is the person's own data: their row on file, the tandems they are or were part of
with what happened and when, the mails sent to them (when, which, the subject, whether it
arrived), their replies as the gateway decided them, and the reply addresses issued to them.
It holds no other person's contact data: a tandem names the other side by id only, and a
mail's body (which carries the other side's contact data) is not part of it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from activities.people import Conn

#: The tables the export reads (a test checks that every other table holds no person's data,
#: or holds it only until a reply is decided: ``TRANSIENT_TABLES``).
EXPORTED_TABLES = (
    "mentees",
    "mentors",
    "seats",
    "tandems",
    "tandem_events",
    "outbox",
    "reply_verdicts",
    "reply_tokens",
)


#: Raw replies wait here until decided, then only their verdict remains.
TRANSIENT_TABLES = ("inbound_mail",)
#: Tables without any person's data: programmes, anonymous ratings, hashed senders (HMAC,
#: rate limits), IMAP bookkeeping, migrations.
IMPERSONAL_TABLES = (
    "programs",
    "program_ratings",
    "rating_receipts",
    "reply_help_sent",
    "reply_notice_counts",
    "imap_folders",
    "imap_messages",
    "schema_migrations",
)


class UnknownPerson(LookupError):
    """No mentee and no mentor with this id, and nothing stored about one."""


def _plain(value: Any) -> Any:
    """JSON-ready: dates as ISO 8601, everything else as it is."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _rows(records: list[Any], *, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in dict(r).items() if k not in drop} for r in records]


async def person_export(conn: Conn, person_id: str) -> dict[str, Any]:
    """Everything stored about ``person_id`` as a mentee and as a mentor."""
    mentee = await conn.fetchrow(
        "SELECT id, salutation, title, first_name, last_name, email, program, phase, region,"
        " specialty, expected_phase_end, language, created_at, updated_at FROM mentees"
        " WHERE id = $1",
        person_id,
    )
    mentor = await conn.fetchrow(
        "SELECT id, salutation, title, first_name, last_name, email, programs, region,"
        " specialty, capacity, language, created_at, updated_at FROM mentors WHERE id = $1",
        person_id,
    )
    # Tandems: the mentee's own, and every one the mentor was paired in (from the event log,
    # so a tandem that was rematched away from them is still shown).
    tandem_ids = [
        r["mentee_id"]
        for r in await conn.fetch(
            "SELECT mentee_id FROM tandems WHERE mentee_id = $1 OR mentor_id = $1"
            " UNION SELECT mentee_id FROM tandem_events WHERE mentee_id = $1 OR mentor_id = $1"
            " ORDER BY 1",
            person_id,
        )
    ]
    tandems = []
    for tandem_id in tandem_ids:
        as_mentee = tandem_id == person_id
        row = await conn.fetchrow("SELECT * FROM tandems WHERE mentee_id = $1", tandem_id)
        events = await conn.fetch(
            "SELECT enrolment, seq, at, kind, status, phase, mentor_id FROM tandem_events"
            " WHERE mentee_id = $1 AND ($2 OR mentor_id = $3) ORDER BY enrolment, seq",
            tandem_id,
            as_mentee,
            person_id,
        )
        tandems.append(
            {
                "tandem": tandem_id,
                "role": "mentee" if as_mentee else "mentor",
                "now": {k: _plain(v) for k, v in dict(row).items()} if row else None,
                "events": _rows(events),
            }
        )
    mails = await conn.fetch(
        "SELECT recipient_role AS role, mentee_id AS tandem, template, subject, created_at,"
        " sent_at, failed_at, failure FROM outbox WHERE recipient_id = $1"
        " ORDER BY created_at",
        person_id,
    )
    replies = await conn.fetch(
        "SELECT role, mentee_id AS tandem, request_id, received_at, decided_at, verdict,"
        " reason, intent FROM reply_verdicts v WHERE (mentee_id = $1 AND role = 'mentee')"
        " OR (role = 'mentor' AND EXISTS (SELECT 1 FROM reply_tokens t WHERE"
        " t.mentee_id = v.mentee_id AND t.role = 'mentor' AND t.person_id = $1"
        " AND t.request_id = v.request_id)) ORDER BY received_at",
        person_id,
    )
    tokens = await conn.fetch(
        "SELECT role, mentee_id AS tandem, request_id, created_at, expires_at, revoked_at"
        " FROM reply_tokens WHERE person_id = $1 ORDER BY created_at",
        person_id,
    )
    seat = await conn.fetch(
        "SELECT mentee_id AS tandem, mentor_id, reserved_at FROM seats"
        " WHERE mentee_id = $1 OR mentor_id = $1 ORDER BY reserved_at",
        person_id,
    )
    if mentee is None and mentor is None and not (tandem_ids or mails or tokens):
        raise UnknownPerson(person_id)
    return {
        "person_id": person_id,
        "exported_from": list(EXPORTED_TABLES),
        "as_mentee": {k: _plain(v) for k, v in dict(mentee).items()} if mentee else None,
        "as_mentor": {k: _plain(v) for k, v in dict(mentor).items()} if mentor else None,
        "seats": _rows(seat),
        "tandems": tandems,
        "mails_sent_to_them": _rows(mails),
        "their_replies": _rows(replies),
        "reply_addresses_issued": _rows(tokens),
        "not_kept": [
            "the text of replies: a reply is held as received only until it is decided"
            " (seconds to minutes), then only the decision and its reason remain",
            "what mentor and mentee talk about",
            "ratings by person (only a programme's count and total)",
        ],
    }
