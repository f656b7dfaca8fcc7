"""Operator commands on tandems: enrol, look at one, list many, wake the waiting ones."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated

import asyncpg
import typer
from rich.table import Table
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from activities.people import get_mentees, list_mentee_ids
from starter.common import (
    CommandError,
    connect_temporal,
    console,
    database_url,
    print_json,
    run,
)
from tandem.models import Mentee, TandemState, TandemStatus
from tandem.programs import Program, ProgramError, load_program
from tandem.settings import Settings, get_settings
from workflows.client import EnrolOutcome, TandemClient, TandemNotFound, TandemRefused
from workflows.tandem import TandemWorkflow

#: Workflow starts in flight at once when enrolling many mentees.
ENROL_CONCURRENCY = 32

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


async def enroll_ids(
    client: Client,
    dsn: str,
    ids: list[str],
    settings: Settings | None = None,
    *,
    again: bool = True,
) -> list[EnrolOutcome]:
    """Start one workflow per mentee; a mentee already enrolled is reported, not restarted.
    With ``again``, a mentee whose tandem ended or completed gets a new one.

    Every id is checked first: if any is unknown, nothing is started.
    """
    settings = settings or get_settings()
    wanted = list(dict.fromkeys(ids))
    conn = await asyncpg.connect(dsn)
    try:
        mentees = await get_mentees(conn, wanted)
    finally:
        await conn.close()
    unknown = [i for i in wanted if i not in mentees]
    if unknown:
        raise CommandError(f"unknown mentee id(s): {', '.join(unknown)} (nothing enrolled)")
    programs = {m.program: _program(settings, m.program) for m in mentees.values()}
    tandems = TandemClient(client, settings.task_queue)
    limit = asyncio.Semaphore(ENROL_CONCURRENCY)

    async def enrol(mentee: Mentee) -> EnrolOutcome:
        async with limit:
            return await tandems.enrol(mentee, programs[mentee.program], again=again)

    return list(await asyncio.gather(*(enrol(mentees[i]) for i in wanted)))


def _program(settings: Settings, program_id: str) -> Program:
    try:
        return load_program(settings.programs_dir, program_id)
    except ProgramError as err:
        raise CommandError(str(err)) from err


async def start_tandem(
    client: Client, mentee: Mentee, settings: Settings, *, enrolment: int = 1
) -> WorkflowHandle[TandemWorkflow, TandemState]:
    """Start the mentee's tandem workflow; WorkflowAlreadyStartedError if there is one."""
    program = _program(settings, mentee.program)
    return await TandemClient(client, settings.task_queue).start(
        mentee, program, enrolment=enrolment
    )


async def wake_waiting_tandems(dsn: str, client: Client | None = None) -> int:
    """Signal every tandem waiting for a mentor to look again (after a mentor import)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT mentee_id FROM tandems WHERE status = $1",
            TandemStatus.WAITING_FOR_MENTOR.value,
        )
    finally:
        await conn.close()
    if not rows:
        return 0
    tandems = TandemClient(client or await connect_temporal(), get_settings().task_queue)
    woken = 0
    for row in rows:
        woken += await tandems.wake(row["mentee_id"])
    return woken


async def resend_corrected_mail(dsn: str, client: Client | None = None) -> int:
    """After an import: tandems with a refused mail whose recipient's address changed on file
    send it again (their ``retry``); how many tandems were asked."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT DISTINCT o.mentee_id FROM outbox o
            LEFT JOIN mentees e ON o.recipient_role = 'mentee' AND e.id = o.recipient_id
            LEFT JOIN mentors r ON o.recipient_role = 'mentor' AND r.id = o.recipient_id
            WHERE o.sent_at IS NULL AND o.failed_at IS NOT NULL
              AND coalesce(e.email, r.email) IS DISTINCT FROM o.to_address
              AND coalesce(e.email, r.email) IS NOT NULL
            """
        )
    finally:
        await conn.close()
    if not rows:
        return 0
    tandems = TandemClient(client or await connect_temporal(), get_settings().task_queue)
    asked = 0
    for row in rows:
        try:
            await tandems.retry(row["mentee_id"])
            asked += 1
        except (TandemRefused, TandemNotFound):
            continue  # closed meanwhile, or retried by someone else: nothing to send here
    return asked


# -- commands ------------------------------------------------------------------------------


def enroll(
    ids: Annotated[list[str] | None, typer.Argument(help="Mentee ids to enrol.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Enrol every mentee on file.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Enrol mentees: one tandem workflow each. Enrolling twice changes nothing; a mentee
    named by id whose tandem ended or completed gets a new one (--all leaves those alone)."""

    async def go() -> list[EnrolOutcome]:
        dsn = database_url()
        if all_:
            conn = await asyncpg.connect(dsn)
            try:
                chosen = await list_mentee_ids(conn)
            finally:
                await conn.close()
        elif ids:
            chosen = ids
        else:
            raise CommandError("give mentee ids or --all")
        return await enroll_ids(await connect_temporal(), dsn, chosen, again=not all_)

    outcomes = run(go())
    if as_json:
        print_json([asdict(o) for o in outcomes])
        return
    for o in outcomes:
        if o.started and o.enrolment > 1:
            console.print(f"{o.mentee_id}: enrolled again, tandem no. {o.enrolment} (matching)")
        elif o.started:
            console.print(f"{o.mentee_id}: enrolled (matching)")
        elif o.status in ("ended", "completed"):
            console.print(f"{o.mentee_id}: tandem {o.status}; enrol by id to start a new one")
        else:
            console.print(f"{o.mentee_id}: already enrolled (status {o.status})")


def status(
    mentee_id: Annotated[str, typer.Argument(help="The mentee's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Show one tandem's state (asks the running workflow)."""

    async def go() -> TandemState:
        tandems = TandemClient(await connect_temporal(), get_settings().task_queue)
        try:
            return await tandems.state(mentee_id)
        except TandemNotFound:
            raise CommandError(f"no tandem for mentee {mentee_id}") from None
        except RPCError as err:
            raise CommandError(f"tandem {mentee_id} did not answer: {err.message}") from err

    state = run(go())
    if as_json:
        print_json(state.model_dump(mode="json"))
        return
    table = Table(show_header=False, box=None)
    for key, value in state.model_dump(mode="json").items():
        table.add_row(key, "-" if value in (None, []) else str(value))
    console.print(table)


def list_tandems(
    status_: Annotated[
        TandemStatus | None, typer.Option("--status", help="Only tandems in this status.")
    ] = None,
    phase: Annotated[str | None, typer.Option(help="Only tandems in this phase.")] = None,
    program: Annotated[str | None, typer.Option(help="Only tandems of this programme.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 1000,
    as_json: JsonFlag = False,
) -> None:
    """List tandems from Temporal's visibility (search attributes)."""

    async def go() -> list[dict[str, str | None]]:
        tandems = TandemClient(await connect_temporal(), get_settings().task_queue)
        query = visibility_query(status_, phase, program)
        rows = []
        async for row in tandems.list(query, limit=limit):
            rows.append({**row, "next_nudge_at": _iso(row["next_nudge_at"])})
        return sorted(rows, key=lambda r: r["mentee_id"] or "")

    rows = run(go())
    if as_json:
        print_json(rows)
        return
    table = Table("mentee", "status", "phase", "programme", "mentor", "next nudge")
    for column in table.columns[:2] + table.columns[4:5]:
        column.no_wrap = True  # ids and status are what people search for: never cut them
    for r in rows:
        nudge = r["next_nudge_at"]
        shown = {**r, "next_nudge_at": nudge[:16].replace("T", " ") if nudge else None}
        table.add_row(*[shown[k] or "-" for k in shown])
    console.print(table)
    console.print(f"{len(rows)} tandem(s)")


def visibility_query(status: TandemStatus | None, phase: str | None, program: str | None) -> str:
    """A visibility query; values are quoted so an odd phase name cannot change its meaning."""
    # A tandem continues as new at each phase change: list only its latest run.
    parts = [f"WorkflowType = '{TandemWorkflow.__name__}'", "ExecutionStatus != 'ContinuedAsNew'"]
    for key, value in (
        ("TandemStatus", status),
        ("TandemPhase", phase),
        ("TandemProgram", program),
    ):
        if value is not None:
            parts.append(f"{key} = '{_quote(str(value))}'")
    return " AND ".join(parts)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _iso(value: object) -> str | None:
    return value.isoformat(timespec="minutes") if hasattr(value, "isoformat") else None
