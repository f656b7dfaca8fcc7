"""``tandem retention``: the daily sweep's schedule, and what its next run would remove."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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

from activities.retention import sweep
from starter.common import connect_temporal, console, database_url, print_json, run
from starter.schedules import ensure_schedule
from tandem.retention import retention_policy
from tandem.settings import Settings, get_settings
from workflows.retention import SCHEDULE_ID, WORKFLOW_ID, RetentionSweepWorkflow

#: The sweep runs daily at this hour (UTC), when offices are closed.
SWEEP_HOUR = 3


def retention_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RetentionSweepWorkflow.run,
            id=WORKFLOW_ID,
            task_queue=settings.task_queue,
            execution_timeout=timedelta(hours=6),
        ),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(SWEEP_HOUR)])],
        ),
    )


async def ensure_retention_schedule(client: Client, settings: Settings) -> bool:
    """Create the schedule, or bring an existing one to today's definition; True if created."""
    return await ensure_schedule(client, SCHEDULE_ID, retention_schedule(settings))


def retention(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what the next sweep removes.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Set up the daily retention sweep (a Temporal Schedule), or with --dry-run show what it
    would remove now: mail texts and addresses past TANDEM_RETENTION_MAIL_BODY_DAYS, reply
    verdicts past TANDEM_RETENTION_REPLY_VERDICT_DAYS, and the mentees of tandems closed
    longer ago than their programme's closed_tandem_retention."""
    settings = get_settings()
    policy = retention_policy(settings)

    async def counts() -> dict[str, object]:
        conn = await asyncpg.connect(database_url(settings))
        try:
            result = await sweep(conn, policy, datetime.now(UTC), dry_run=True)
        finally:
            await conn.close()
        return {**result.model_dump(), **policy.model_dump()}

    async def schedule() -> dict[str, object]:
        client = await connect_temporal(settings)
        created = await ensure_retention_schedule(client, settings)
        described = await client.get_schedule_handle(SCHEDULE_ID).describe()
        upcoming = described.info.next_action_times[:1]
        return {
            "schedule": SCHEDULE_ID,
            "created": created,
            "next_run": upcoming[0].isoformat() if upcoming else None,
            **policy.model_dump(),
        }

    data = run(counts() if dry_run else schedule())
    if as_json:
        print_json(data)
    elif dry_run:
        console.print(
            f"the next sweep removes the text and address of {data['mail_bodies']} sent mails"
            f" (older than {policy.mail_body_days} days) and {data['reply_verdicts']} reply"
            f" verdicts (older than {policy.reply_verdict_days} days), and erases the"
            f" mentees of {data['closed_tandems']} tandems closed longer than their"
            " programme keeps them",
            highlight=False,
        )
    else:
        verb = "created" if data["created"] else "up to date"
        console.print(
            f"schedule {SCHEDULE_ID} {verb}: daily at {SWEEP_HOUR:02d}:00 UTC,"
            f" next {data['next_run']}",
            highlight=False,
        )
