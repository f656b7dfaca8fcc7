"""The coordinator's digest, built and sent in an activity: names come from the people
tables here and go into the mail only, never into the workflow (it gets counts back)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel
from temporalio import activity

from activities.mail import Outbox
from activities.people import Conn
from tandem.digest import (
    SECTION_ORDER,
    DigestLine,
    EventRow,
    FailedMailRow,
    TandemRow,
    failed_mail_lines,
    lines_for,
    period_key,
)
from tandem.mail import render
from tandem.programs import Program, load_programs
from tandem.settings import Settings

TEMPLATE = "digest_coordinator"


class DigestSent(BaseModel):
    """What one programme's digest did: counts and the period, no names."""

    program: str
    period: str
    lines: int
    sent: bool


async def digest_lines(conn: Conn, program: str) -> list[DigestLine]:
    """Every line of a programme's digest now, in section order, oldest first."""
    tandems = [
        TandemRow(r["mentee_id"], r["status"], r["phase"], r["mentor_id"])
        for r in await conn.fetch(
            "SELECT mentee_id, status, phase, mentor_id FROM tandems WHERE program = $1"
            " AND status NOT IN ('completed', 'ended') ORDER BY mentee_id",
            program,
        )
    ]
    events: dict[str, list[EventRow]] = defaultdict(list)
    for r in await conn.fetch(
        "SELECT e.mentee_id, e.kind, e.status, e.at FROM tandem_events e"
        " JOIN tandems t ON t.mentee_id = e.mentee_id AND t.enrolment = e.enrolment"
        " WHERE t.program = $1 AND t.status NOT IN ('completed', 'ended')"
        " ORDER BY e.mentee_id, e.seq",
        program,
    ):
        events[r["mentee_id"]].append(EventRow(r["kind"], r["status"], r["at"]))
    lines = [line for t in tandems for line in lines_for(t, events[t.mentee_id])]
    failed = [
        FailedMailRow(
            r["mentee_id"],
            r["recipient_role"],
            r["recipient_id"],
            r["template"],
            r["failure"],
            r["failed_at"],
        )
        for r in await conn.fetch(
            "SELECT o.mentee_id, o.recipient_role, o.recipient_id, o.template, o.failure,"
            " o.failed_at FROM outbox o JOIN tandems t ON t.mentee_id = o.mentee_id"
            " WHERE t.program = $1 AND t.status NOT IN ('completed', 'ended')"
            " AND o.failed_at IS NOT NULL AND o.sent_at IS NULL ORDER BY o.failed_at",
            program,
        )
    ]
    lines += failed_mail_lines(failed)
    order = {s: i for i, s in enumerate(SECTION_ORDER)}
    return sorted(
        lines,
        key=lambda x: (order[x.section], x.since is None, x.since.timestamp() if x.since else 0),
    )


async def _names(conn: Conn, lines: list[DigestLine]) -> dict[str, str]:
    """``id -> "First Last"`` for every mentee and mentor the lines are about."""
    ids = sorted({line.mentee_id for line in lines})
    names: dict[str, str] = {}
    for r in await conn.fetch(
        "SELECT id, first_name || ' ' || last_name AS name FROM mentees WHERE id = ANY($1)"
        " UNION ALL SELECT m.id, m.first_name || ' ' || m.last_name FROM mentors m"
        " JOIN tandems t ON t.mentor_id = m.id WHERE t.mentee_id = ANY($1)",
        ids,
    ):
        names[r["id"]] = r["name"]
    return names


async def digest_context(conn: Conn, program: Program, period: str) -> dict[str, Any]:
    """What the digest template needs: the programme, the period and the lines by section,
    each with the people's names (the office knows them; the mail goes to the office)."""
    lines = await digest_lines(conn, program.id)
    names = await _names(conn, lines)
    mentors = {
        r["mentee_id"]: r["mentor_id"]
        for r in await conn.fetch(
            "SELECT mentee_id, mentor_id FROM tandems WHERE mentee_id = ANY($1)",
            [line.mentee_id for line in lines],
        )
    }
    sections: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        mentor_id = mentors.get(line.mentee_id)
        sections[line.section.value].append(
            {
                "mentee_id": line.mentee_id,
                "mentee_name": names.get(line.mentee_id, ""),
                "mentor_id": mentor_id,
                "mentor_name": names.get(mentor_id or "", ""),
                "since": line.since.date().isoformat() if line.since else "",
                "command": line.command,
                "detail": line.detail,
            }
        )
    return {
        "program": program,
        "period": period,
        "count": len(lines),
        "sections": [(s.value, sections[s.value]) for s in SECTION_ORDER if sections[s.value]],
    }


class DigestActivities:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, outbox: Outbox) -> None:
        self._pool = pool
        self._settings = settings
        self._outbox = outbox

    @activity.defn
    async def send_digests(self, at: datetime) -> list[DigestSent]:
        """Each programme's digest that is due at ``at`` (the schedule's time), once per
        period: a retried activity finds the mails of this period sent."""
        done: list[DigestSent] = []
        programs = load_programs(self._settings.programs_dir)
        for program in programs.values():
            period = period_key(program.digest, at)
            if period is None:
                continue
            async with self._pool.acquire() as conn:
                context = await digest_context(conn, program, period)
            if not context["count"]:
                done.append(DigestSent(program=program.id, period=period, lines=0, sent=False))
                continue  # nothing needs the office: no mail
            mail = render(TEMPLATE, program.language.value, context)
            await self._outbox.send_to_office(
                f"digest/{program.id}/{period}",
                label=f"office:{program.id}",
                template=TEMPLATE,
                to_address=str(program.coordinator_email),
                mail=mail,
            )
            done.append(
                DigestSent(program=program.id, period=period, lines=context["count"], sent=True)
            )
        activity.logger.info("digests: %s", [d.model_dump() for d in done])
        return done
