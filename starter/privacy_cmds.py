"""Data-protection duties of the programme office: ``tandem export PERSON_ID`` (Art. 15/20)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import typer

from activities.privacy import UnknownPerson, person_export
from starter.common import CommandError, database_url, run


async def export_of(dsn: str, person_id: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return await person_export(conn, person_id)
    except UnknownPerson:
        raise CommandError(f"nothing is stored about {person_id}") from None
    finally:
        await conn.close()


def export(
    person_id: Annotated[str, typer.Argument(help="The mentee's or mentor's id.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file (readable by you only), not stdout."
        ),
    ] = None,
) -> None:
    """Everything stored about one person, as JSON: their data on file, their tandems with
    what happened when, the mails sent to them, their replies as decided (GDPR Art. 15/20)."""
    data = run(export_of(database_url(), person_id))
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.exists():
        raise typer.BadParameter(f"{output} exists already", param_hint="--output")
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    typer.echo(f"written: {output}", err=True)
