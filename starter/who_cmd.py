"""``tandem who PERSON_ID``: who an id in a coordinator's mail is, for the office."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
import typer

from activities.office import UnknownPerson, who
from starter.common import CommandError, database_url, print_json, run


async def lookup(dsn: str, person_id: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return await who(conn, person_id)
    except UnknownPerson:
        raise CommandError(f"no mentee and no mentor with id {person_id}") from None
    finally:
        await conn.close()


def _name(person: dict[str, Any]) -> str:
    """As the office would write it: "Frau Dr. Katrin Weber"."""
    parts = (person["salutation"], person["title"], person["first_name"], person["last_name"])
    return " ".join(p for p in parts if p)


def _block(data: dict[str, Any]) -> str:
    lines: list[str] = []
    if (m := data["as_mentee"]) is not None:
        lines += [
            f"{m['id']}: {_name(m)} <{m['email']}> — mentee",
            f"  programme {m['program']}, phase {m['phase']}"
            + (f", {m['region']}" if m["region"] else "")
            + (f", {m['specialty']}" if m["specialty"] else ""),
        ]
        t = m["tandem"]
        if t is None:
            lines.append("  not enrolled (no tandem yet): `tandem enroll " + m["id"] + "`")
        else:
            mentor = (
                f"{t['mentor_id']} ({t['mentor_name']} <{t['mentor_email']}>)"
                if t["mentor_id"] and t["mentor_name"]
                else (t["mentor_id"] or "none yet")
            )
            lines += [
                f"  tandem: {t['status']} since {t['updated_at'][:10]}, mentor {mentor}",
                f"  more: `tandem status {m['id']}`",
            ]
    if (r := data["as_mentor"]) is not None:
        lines += [
            f"{r['id']}: {_name(r)} <{r['email']}> — mentor",
            f"  programmes {', '.join(r['programs'])}; seats {r['seats_taken']} of"
            f" {r['capacity']} taken",
        ]
        for t in r["tandems"]:
            name = f" ({t['mentee_name']} <{t['mentee_email']}>)" if t["mentee_name"] else ""
            lines.append(f"  mentee {t['mentee_id']}{name}: {t['status']}, phase {t['phase']}")
    return "\n".join(lines)


def who_cmd(
    person_id: Annotated[str, typer.Argument(help="A mentee's or mentor's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Who this is: contact data on file and where their tandems stand (for the office)."""
    data = run(lookup(database_url(), person_id))
    if as_json:
        print_json(data)
    else:
        typer.echo(_block(data))
