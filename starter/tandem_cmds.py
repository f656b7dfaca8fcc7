"""Operator commands on tandems: enrol, look at one, list many, wake the waiting ones."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import asyncpg
import typer
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from activities.matching import CohortReservation, release_planned_seat, reserve_cohort
from activities.people import get_mentees, list_mentee_ids
from starter.common import (
    CommandError,
    connect_temporal,
    console,
    database_url,
    print_json,
    run,
)
from starter.views import list_lines, status_lines
from tandem.cohort import Pairing
from tandem.models import Mentee, TandemState, TandemStatus
from tandem.programs import Program, ProgramError, load_program
from tandem.settings import Settings, get_settings
from workflows.client import EnrolOutcome, TandemClient, TandemNotFound, TandemRefused
from workflows.tandem import TandemWorkflow

#: Workflow starts in flight at once when enrolling many mentees.
ENROL_CONCURRENCY = 32

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@dataclass
class Enrolment:
    """What one ``enroll`` did: an outcome per mentee, and with a cohort the seats it
    planned for the tandems it started (by mentee id) and the mentees it left to wait."""

    outcomes: list[EnrolOutcome]
    planned: dict[str, Pairing] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)
    cohort: int = 0


async def enroll_ids(
    client: Client,
    dsn: str,
    ids: list[str],
    settings: Settings | None = None,
    *,
    again: bool = True,
    cohort: bool = False,
) -> list[EnrolOutcome]:
    """Start one workflow per mentee; a mentee already enrolled is reported, not restarted.
    With ``again``, a mentee whose tandem ended or completed gets a new one. With
    ``cohort``, the mentees are matched together first (``enroll_mentees``).

    Every id is checked first: if any is unknown, nothing is started.
    """
    done = await enroll_mentees(client, dsn, ids, settings, again=again, cohort=cohort)
    return done.outcomes


async def enroll_mentees(
    client: Client,
    dsn: str,
    ids: list[str],
    settings: Settings | None = None,
    *,
    again: bool = True,
    cohort: bool = False,
) -> Enrolment:
    """``enroll_ids`` with what cohort matching planned.

    With ``cohort``, the mentees whose tandem this call starts get ONE assignment over the
    mentors' free seats (``tandem.cohort``), reserved before their workflows start; each
    workflow's matching finds its seat held. A mentee with a running tandem or a seat is left
    out of the plan (it is enrolled as always). A planned seat whose workflow then does not
    start is given back, unless the mentee's tandem runs (it is the seat of that mentee, and
    its tandem takes it when it looks). Should this process die between reserving and
    starting, running the same command again starts the workflows and they take their
    planned seats (a mentee holding a seat is left out of the new plan); ``tandem doctor``
    frees a seat that no workflow holds.
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

    reservation: CohortReservation | None = None
    if cohort:
        starting = await _to_be_started(tandems, wanted, again=again, limit=limit)
        conn = await asyncpg.connect(dsn)
        try:
            reservation = await reserve_cohort(conn, starting)
        finally:
            await conn.close()

    async def enrol(mentee: Mentee) -> EnrolOutcome:
        planned = reservation.planned_mentor(mentee.id) if reservation else None
        async with limit:
            try:
                outcome = await tandems.enrol(mentee, programs[mentee.program], again=again)
            except BaseException:
                if planned is not None:
                    await _give_back(tandems, dsn, mentee.id, planned)
                raise
        if planned is not None and not outcome.started:
            await _give_back(tandems, dsn, mentee.id, planned)
        return outcome

    results = await asyncio.gather(*(enrol(mentees[i]) for i in wanted), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result  # every seat planned for a tandem that did not start is back
    outcomes = [r for r in results if isinstance(r, EnrolOutcome)]
    if reservation is None:
        return Enrolment(outcomes)
    started = {o.mentee_id for o in outcomes if o.started}
    return Enrolment(
        outcomes,
        planned={p.mentee_id: p for p in reservation.reserved if p.mentee_id in started},
        waiting=[i for i in reservation.plan.unmatched if i in started],
        cohort=len(reservation.plan.pairs) + len(reservation.plan.unmatched),
    )


async def _to_be_started(
    tandems: TandemClient, ids: list[str], *, again: bool, limit: asyncio.Semaphore
) -> list[str]:
    """The mentees this enrolment starts a tandem for: none runs, and none ever ran or
    (with ``again``) the last one is closed. A running tandem matches on its own."""

    async def starts(mentee_id: str) -> bool:
        async with limit:
            try:
                desc = await tandems.handle(mentee_id).describe()
            except RPCError as err:
                if err.status is RPCStatusCode.NOT_FOUND:
                    return True
                raise
        return again and desc.status is not WorkflowExecutionStatus.RUNNING

    flags = await asyncio.gather(*(starts(i) for i in ids))
    return [i for i, yes in zip(ids, flags, strict=True) if yes]


async def _give_back(tandems: TandemClient, dsn: str, mentee_id: str, mentor_id: str) -> None:
    """Release the seat planned for a mentee whose workflow did not start, unless its
    tandem runs after all (a start that failed late, or one started meanwhile: the seat is
    that tandem's). Not knowing, the seat goes back: a tandem that took it gets it again
    from ``tandem doctor``, while a kept seat would block the mentor for nobody."""
    try:
        desc = await tandems.handle(mentee_id).describe()
        running = desc.status is WorkflowExecutionStatus.RUNNING
    except Exception:  # Temporal unreachable, or no such workflow: release
        running = False
    if running:
        return
    conn = await asyncpg.connect(dsn)
    try:
        await release_planned_seat(conn, mentee_id, mentor_id)
    finally:
        await conn.close()


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
    all_: Annotated[
        bool,
        typer.Option("--all", help="Enrol every mentee on file, matched as one cohort."),
    ] = False,
    cohort: Annotated[
        bool,
        typer.Option(
            "--cohort",
            help="Match the mentees named as one cohort: the best total over the free seats,"
            " instead of one after another.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Enrol mentees: one tandem workflow each. Enrolling twice changes nothing; a mentee
    named by id whose tandem ended or completed gets a new one (--all leaves those alone).
    --all and --cohort match the new tandems together, so an early mentee cannot take the
    one mentor a later one needed; the rest match one by one as they start."""

    async def go() -> Enrolment:
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
        return await enroll_mentees(
            await connect_temporal(), dsn, chosen, again=not all_, cohort=all_ or cohort
        )

    done = run(go())
    if as_json:
        rows: list[dict[str, Any]] = [asdict(o) for o in done.outcomes]
        if all_ or cohort:
            for row in rows:
                pair = done.planned.get(row["mentee_id"])
                row["planned_mentor_id"] = pair.mentor_id if pair else None
                row["planned_score"] = pair.score if pair else None
        print_json(rows)
        return
    for o in done.outcomes:
        plan = ""
        if o.mentee_id in done.planned:
            pair = done.planned[o.mentee_id]
            plan = f", mentor {pair.mentor_id} planned (score {pair.score:g})"
        elif o.mentee_id in done.waiting:
            plan = ", no free seat left in the cohort: waits"
        if o.started and o.enrolment > 1:
            console.print(
                f"{o.mentee_id}: enrolled again, tandem no. {o.enrolment} (matching{plan})",
                soft_wrap=True,
            )
        elif o.started:
            console.print(f"{o.mentee_id}: enrolled (matching{plan})", soft_wrap=True)
        elif o.status in ("ended", "completed"):
            console.print(f"{o.mentee_id}: tandem {o.status}; enrol by id to start a new one")
        else:
            console.print(f"{o.mentee_id}: already enrolled (status {o.status})")
    if all_ or cohort:
        console.print(
            f"cohort: {done.cohort} mentee(s) matched together, {len(done.planned)} seat(s)"
            f" planned, {len(done.waiting)} waiting for a free seat",
            highlight=False,
            soft_wrap=True,
        )


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
    typer.echo("\n".join(status_lines(state)))


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
    typer.echo("\n".join(list_lines(rows)))
    typer.echo(f"{len(rows)} tandem(s)")


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
