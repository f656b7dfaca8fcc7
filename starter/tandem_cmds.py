"""Operator commands on tandems: enrol, look at one, list many, wake the waiting ones."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Annotated

import asyncpg
import typer
from rich.table import Table
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.people import get_mentees, list_mentee_ids
from starter.common import (
    CommandError,
    connect_temporal,
    console,
    database_url,
    print_json,
    run,
)
from tandem.messages import TandemInput
from tandem.models import Mentee, TandemState, TandemStatus
from tandem.programs import ProgramError, load_program
from tandem.settings import Settings, get_settings
from workflows import search_attributes as sa
from workflows.tandem import TandemWorkflow, workflow_id

#: Workflow starts in flight at once when enrolling many mentees.
ENROL_CONCURRENCY = 32

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@dataclass
class EnrollOutcome:
    mentee_id: str
    started: bool
    status: str


async def enroll_ids(
    client: Client, dsn: str, ids: list[str], settings: Settings | None = None
) -> list[EnrollOutcome]:
    """Start one workflow per mentee; a mentee already enrolled is reported, not restarted.

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
    limit = asyncio.Semaphore(ENROL_CONCURRENCY)

    async def enrol(mentee: Mentee) -> EnrollOutcome:
        async with limit:
            try:
                await start_tandem(client, mentee, settings)
                return EnrollOutcome(mentee.id, True, TandemStatus.MATCHING.value)
            except WorkflowAlreadyStartedError:
                return EnrollOutcome(mentee.id, False, await _status_of(client, mentee.id))

    return list(await asyncio.gather(*(enrol(mentees[i]) for i in wanted)))


async def start_tandem(
    client: Client, mentee: Mentee, settings: Settings
) -> WorkflowHandle[TandemWorkflow, TandemState]:
    """Start the mentee's tandem workflow; WorkflowAlreadyStartedError if there is one."""
    try:
        rules = load_program(settings.programs_dir, mentee.program)
    except ProgramError as err:
        raise CommandError(str(err)) from err
    state = TandemState(
        mentee_id=mentee.id,
        program=mentee.program,
        phase=mentee.phase,
        cadence_days=rules.cadence(mentee.phase) / timedelta(days=1),
        expected_phase_end=mentee.expected_phase_end,
    )
    return await client.start_workflow(
        TandemWorkflow.run,
        TandemInput(rules=rules, state=state),
        id=workflow_id(mentee.id),
        task_queue=settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=sa.initial(state),
        static_summary=f"Tandem of mentee {mentee.id} ({mentee.program})",
    )


async def _status_of(client: Client, mentee_id: str) -> str:
    """The tandem's status from its search attributes (works without a worker)."""
    desc = await client.get_workflow_handle(workflow_id(mentee_id)).describe()
    status = desc.typed_search_attributes.get(sa.TANDEM_STATUS)
    if desc.status not in (None, WorkflowExecutionStatus.RUNNING) and status is None:
        return desc.status.name.lower()
    return status or "unknown"


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
    client = client or await connect_temporal()
    woken = 0
    for row in rows:
        handle = client.get_workflow_handle(workflow_id(row["mentee_id"]))
        try:
            await handle.signal(TandemWorkflow.mentors_changed)
            woken += 1
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
    return woken


# -- commands ------------------------------------------------------------------------------


def enroll(
    ids: Annotated[list[str] | None, typer.Argument(help="Mentee ids to enrol.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Enrol every mentee on file.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Enrol mentees: one tandem workflow each. Enrolling twice changes nothing."""

    async def go() -> list[EnrollOutcome]:
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
        return await enroll_ids(await connect_temporal(), dsn, chosen)

    outcomes = run(go())
    if as_json:
        print_json([asdict(o) for o in outcomes])
        return
    for o in outcomes:
        if o.started:
            console.print(f"{o.mentee_id}: enrolled (matching)")
        else:
            console.print(f"{o.mentee_id}: already enrolled (status {o.status})")


def status(
    mentee_id: Annotated[str, typer.Argument(help="The mentee's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Show one tandem's state (asks the running workflow)."""

    async def go() -> TandemState:
        client = await connect_temporal()
        handle = client.get_workflow_handle(workflow_id(mentee_id))
        try:
            return await handle.query(TandemWorkflow.state, rpc_timeout=timedelta(seconds=10))
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise CommandError(f"no tandem for mentee {mentee_id}") from err
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
        client = await connect_temporal()
        query = visibility_query(status_, phase, program)
        rows = []
        async for wf in client.list_workflows(query, limit=limit):
            attrs = wf.typed_search_attributes
            rows.append(
                {
                    "mentee_id": wf.id.removeprefix("tandem-"),
                    "status": attrs.get(sa.TANDEM_STATUS),
                    "phase": attrs.get(sa.TANDEM_PHASE),
                    "program": attrs.get(sa.TANDEM_PROGRAM),
                    "mentor_id": attrs.get(sa.MENTOR_ID),
                    "next_nudge_at": _iso(attrs.get(sa.NEXT_NUDGE_AT)),
                }
            )
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
