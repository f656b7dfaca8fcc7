"""``tandem digest``: the coordinator's weekly digest as a Temporal Schedule, or, with
``--show``, what it says now (printed for the office, names included, nothing sent)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import asyncpg
import typer
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleRange,
    ScheduleSpec,
)

from activities.digest import TEMPLATE, digest_context
from starter.common import CommandError, connect_temporal, database_url, run
from starter.schedules import ensure_schedule
from tandem.digest import DigestFrequency, period_key
from tandem.mail import render
from tandem.programs import load_programs
from tandem.settings import Settings, get_settings
from workflows.digest import SCHEDULE_ID, WORKFLOW_ID, DigestWorkflow

#: Mondays, 06:00 UTC: in the office's inbox before the week starts.
DIGEST_WEEKDAY, DIGEST_HOUR = 1, 6


def digest_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DigestWorkflow.run, id=WORKFLOW_ID, task_queue=settings.task_queue
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    day_of_week=[ScheduleRange(DIGEST_WEEKDAY)],
                    hour=[ScheduleRange(DIGEST_HOUR)],
                )
            ]
        ),
    )


async def ensure_digest_schedule(client: Client, settings: Settings) -> bool:
    """Create the schedule, or bring an existing one to today's definition; True if created."""
    return await ensure_schedule(client, SCHEDULE_ID, digest_schedule(settings))


async def show(settings: Settings, program_id: str | None) -> str:
    programs = load_programs(settings.programs_dir)
    if program_id is not None and program_id not in programs:
        raise CommandError(f"unknown programme {program_id}")
    now = datetime.now(UTC)
    texts = []
    conn = await asyncpg.connect(database_url(settings))
    try:
        for program in programs.values():
            if program_id is not None and program.id != program_id:
                continue
            frequency = program.digest
            period = period_key(frequency, now) or period_key(DigestFrequency.WEEKLY, now) or ""
            context = await digest_context(conn, program, period)
            if not context["count"]:
                texts.append(f"{program.id}: nothing needs the office ({frequency.value})")
                continue
            mail = render(TEMPLATE, program.language.value, context)
            texts.append(
                f"{program.id} ({frequency.value}) to {program.coordinator_email}\n"
                f"Subject: {mail.subject}\n\n{mail.body}"
            )
    finally:
        await conn.close()
    return "\n\n".join(texts)


def digest(
    show_: Annotated[
        bool, typer.Option("--show", help="Print what the digest says now; send nothing.")
    ] = False,
    program: Annotated[
        str | None, typer.Option("--program", help="Only this programme (with --show).")
    ] = None,
) -> None:
    """Set up the coordinator's digest (a Temporal Schedule, Mondays 06:00 UTC: who waits
    for a mentor, open decisions, tandems at risk, refused mails, unanswered phase checks,
    each with the command that acts on it), or with --show print it now."""
    settings = get_settings()
    if show_:
        typer.echo(run(show(settings, program)))
        return

    async def schedule() -> bool:
        return await ensure_digest_schedule(await connect_temporal(settings), settings)

    created = run(schedule())
    verb = "created" if created else "up to date"
    typer.echo(f"schedule {SCHEDULE_ID} {verb}: Mondays at {DIGEST_HOUR:02d}:00 UTC")
