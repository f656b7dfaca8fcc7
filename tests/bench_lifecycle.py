"""Benchmark on the time-skipping server: what a tandem costs Temporal per year, and how long
its whole life takes, each beside a bare workflow of the same shape.

    make bench-lifecycle     (or: .venv/bin/python -m tests.bench_lifecycle --tandems 3)

* History per tandem-year: a tandem is introduced, both say yes by phone, and it runs in the
  study phase with no answers (so the office gets one at-risk alert). Year 1 (with matching
  and the decision) and years 2 and 3 (steady: four check-ins a year) are measured apart:
  events, bytes, activities, timers and billable actions (``tests.bench_support``'s rule).
  Beside it the minimal year: four times a timer and two mail activities.
* The 13-year lifecycle: a medical tandem from matching to completion (study, residency,
  employment), the people answering every mail at once (decision yes, every check-in "met",
  the phase checks "done"), timed from start to result. Beside it a bare workflow replaying
  its shape: the same fired timers (same durations), activities, updates (one per answer,
  sent from inside the activity that mailed the question) and continue-as-new points.

Both run with the real worker in this process. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from starter.tandem_cmds import start_tandem
from tandem.answers import Answer, Intent
from tandem.messages import MailRequest
from tandem.models import Role, TandemState
from tandem.settings import Settings
from tests.bench_profile import Sampler
from tests.bench_shapes import BARE_WORKFLOWS, CADENCE, BareInput, BarePeriods
from tests.bench_support import (
    Base,
    CpuMeter,
    Event,
    Figure,
    bench_stack,
    bytes_by_type,
    cpu_delta,
    history_of,
    postmaster_pid,
    server_pid,
    summarise,
)
from tests.bench_worker import IO_SCHEMA, BareSteps
from tests.support import Tandem, eventually, mentee, mentor, put_people, running_worker
from worker import GRACEFUL_SHUTDOWN, workflow_runner

YEAR = timedelta(days=365)
A = EventType


@dataclass
class LifecycleFigures:
    """What the time-skipping paths measured, by shape, over the repetitions."""

    year1: dict[str, Figure] = field(default_factory=dict)
    steady: dict[str, Figure] = field(default_factory=dict)
    minimal: dict[str, Figure] = field(default_factory=dict)
    steady_bytes: dict[str, Figure] = field(default_factory=dict)
    life: dict[str, Figure] = field(
        default_factory=lambda: {"tandem": Figure(), "bare": Figure(), "bare-io": Figure()}
    )
    life_shape: dict[str, dict[str, float]] = field(default_factory=dict)
    cpu: dict[str, dict[str, Figure]] = field(default_factory=dict)
    profile: dict[str, object] = field(default_factory=dict)

    def add(self, into: dict[str, Figure], figures: dict[str, float]) -> None:
        for k, v in figures.items():
            into.setdefault(k, Figure()).add(v)

    def add_cpu(self, key: str, cpu: dict[str, float], per: float = 1.0) -> None:
        row = self.cpu.setdefault(key, {})
        for k, v in cpu.items():
            row.setdefault(k, Figure()).add(1000 * v / per)


class BareActivities:
    """The bare shape's one activity on the time-skipping server: nothing, or the answers a
    person gives to the mail it stands for (updates to its own workflow, as Tandem's script
    sends from inside the mail activity). With ``io``, each activity first does the least
    real I/O of a mail and its event row: one SMTP send (a new session) and one INSERT."""

    def __init__(self, env: WorkflowEnvironment, io: BareSteps | None = None) -> None:
        self.env = env
        self.io = io

    @activity.defn(name="bare_step")
    async def step(self, key: str, kind: str) -> None:
        if self.io is not None:
            await self.io.do_io(key, "mail+event")
        if kind.startswith("answer:"):
            handle = self.env.client.get_workflow_handle(activity.info().workflow_id)
            for n in range(int(kind.removeprefix("answer:"))):
                await handle.start_update(
                    BarePeriods.answer,
                    f"{key}/{activity.info().activity_id}/{n}",
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                    id=f"{activity.info().activity_id}-{n}",
                )


@dataclass
class Shape:
    """A history reduced to what a bare workflow can replay."""

    periods: list[tuple[float, list[str]]]
    continue_after: list[int]


def shape_of(rows: list[Event]) -> Shape:
    """Per fired timer its duration and the activities until the next one; an activity
    carries the updates accepted before the next command (the answers to its mail). Each
    new run (continue-as-new) starts a period of its own. Tandem waits on at most one timer
    at a time, so a fired or cancelled timer is the last one started."""
    fired: set[int] = set()
    started: int | None = None
    for i, e in enumerate(rows):
        if e.type == A.EVENT_TYPE_TIMER_STARTED:
            started = i
        elif e.type == A.EVENT_TYPE_TIMER_FIRED and started is not None:
            fired.add(started)
    periods: list[tuple[float, list[str]]] = [(0.0, [])]
    cuts: list[int] = []
    run = 0
    for i, e in enumerate(rows):
        if e.run != run:
            run = e.run
            cuts.append(len(periods))
            periods.append((0.0, []))
        if i in fired:
            periods.append((float(e.detail or 0), []))
        elif e.type == A.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            periods[-1][1].append("answer:0")
        elif e.type == A.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED and periods[-1][1]:
            steps = periods[-1][1]
            steps[-1] = f"answer:{int(steps[-1].removeprefix('answer:')) + 1}"
    return Shape(periods, cuts)


def counts_of(rows: list[Event]) -> dict[str, float]:
    """What a history is made of, to show that the bare shape has Tandem's."""
    return {
        "runs": len({e.run for e in rows}),
        "timers": sum(e.type == A.EVENT_TYPE_TIMER_STARTED for e in rows),
        "fired timers": sum(e.type == A.EVENT_TYPE_TIMER_FIRED for e in rows),
        "activities": sum(e.type == A.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in rows),
        "updates": sum(e.type == A.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED for e in rows),
    }


async def tandem_year(env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool) -> tuple:
    """Year 1 and the steady years 2-3 of one tandem in the study phase."""
    s, m = f"S-{uuid.uuid4().hex[:6]}", f"M-{uuid.uuid4().hex[:6]}"
    await put_people(pool, [mentor(m)], [mentee(s)])
    client = env.client
    handle = await start_tandem(client, mentee(s), settings)

    async def status() -> str:
        state = await handle.query("state", result_type=TandemState)
        return state.status.value

    await eventually(status, lambda v: v == "introduced", timeout=60)
    for role in (Role.MENTEE, Role.MENTOR):
        answer = Answer(
            role=role, request_id="office:phone", intent=Intent.CONTINUE, answer_id=f"b-{role}"
        )
        await handle.execute_update("answer", answer)
    await eventually(status, lambda v: v == "active", timeout=60)
    await env.sleep(YEAR)
    year1 = await history_of(client, handle.id)
    await env.sleep(2 * YEAR)
    year3 = await history_of(client, handle.id)
    await handle.terminate("bench over")
    return year1, year3[len(year1) :]


async def minimal_year(env: WorkflowEnvironment, task_queue: str) -> list[Event]:
    """A bare workflow's check-ins, a timer and two mail activities each, for three years and
    a bit; the steady years 2 and 3 are measured, as Tandem's are (start and end left out)."""
    periods = [(CADENCE.total_seconds(), ["mail", "mail"]) for _ in range(13)]
    key = f"year-{uuid.uuid4().hex[:6]}"
    handle = await env.client.start_workflow(
        BarePeriods.run, BareInput(key=key, periods=periods), id=key, task_queue=task_queue
    )
    await handle.result()
    rows = await history_of(env.client, handle.id)
    start = rows[0].at
    year = YEAR.total_seconds()
    return [e for e in rows if start + year <= e.at < start + 3 * year]


async def tandem_lifecycle(
    env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, task_queue: str
) -> tuple[float, list[Event]]:
    """A medical tandem from enrolment to completion; the people answer every mail at once."""
    s, m = f"S-{uuid.uuid4().hex[:6]}", f"M-{uuid.uuid4().hex[:6]}"
    await put_people(pool, [mentor(m)], [mentee(s)])
    t = Tandem(env, s)
    handled: set[str] = set()

    async def people(mail: MailRequest) -> None:
        if mail.idempotency_key in handled or mail.mentee_id != s:
            return
        handled.add(mail.idempotency_key)
        answer = {
            "decision_request": Intent.CONTINUE,
            "phase_check": Intent.PHASE_DONE,
        }.get(mail.template)
        if mail.template == "nudge" and mail.to is Role.MENTEE:
            answer = Intent.MET
        if answer is not None and mail.request_id is not None:
            await t.answer(mail.to, answer, mail.request_id, answer_id=f"{mail.idempotency_key}/a")

    own = settings.model_copy(update={"task_queue": task_queue})
    async with running_worker(env.client, own, pool, after_accept=people, runner=workflow_runner()):
        started = time.perf_counter()
        handle = await start_tandem(env.client, mentee(s), own)
        await handle.result()
        await t.settle()
        seconds = time.perf_counter() - started
    return seconds, await history_of(env.client, handle.id)


async def bare_lifecycle(
    env: WorkflowEnvironment, shape: Shape, task_queue: str
) -> tuple[float, list[Event]]:
    key = f"life-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    handle = await env.client.start_workflow(
        BarePeriods.run,
        BareInput(key=key, periods=shape.periods, continue_after=shape.continue_after),
        id=key,
        task_queue=task_queue,
    )
    await handle.result()
    seconds = time.perf_counter() - started
    return seconds, await history_of(env.client, key)


async def run_lifecycle_paths(
    reps: int,
    *,
    years: bool = True,
    life: bool = True,
    profile: bool = False,
    io: bool = True,
    base: Base | None = None,
) -> LifecycleFigures:
    """The time-skipping paths, ``reps`` times each (``io``: the lifecycle's bare shape with
    real I/O too)."""
    out = LifecycleFigures()
    async with bench_stack(time_skipping=True, base=base) as stack:
        env, pool, settings = stack.env, stack.pool, stack.settings
        meter = CpuMeter(server_pid("temporal-test-server"), postmaster_pid(stack.pg_data))
        bare_queue = f"bare-{uuid.uuid4().hex[:6]}"
        bare = Worker(
            env.client,
            task_queue=bare_queue,
            workflows=BARE_WORKFLOWS,
            activities=[BareActivities(env).step],
            workflow_runner=workflow_runner(),
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        )
        io_queue = f"bare-io-{uuid.uuid4().hex[:6]}"
        await pool.execute(IO_SCHEMA)
        bare_io = Worker(
            env.client,
            task_queue=io_queue,
            workflows=BARE_WORKFLOWS,
            activities=[BareActivities(env, BareSteps(True, settings, pool)).step],
            workflow_runner=workflow_runner(),
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        )
        async with bare, bare_io:
            if years:
                async with running_worker(env.client, settings, pool, runner=workflow_runner()):
                    steady_rows: list[Event] = []
                    for _ in range(reps):
                        year1, steady = await tandem_year(env, settings, pool)
                        out.add(out.year1, summarise(year1))
                        out.add(out.steady, summarise(steady, per=2))
                        steady_rows = steady
                        out.add(out.minimal, summarise(await minimal_year(env, bare_queue), per=2))
                    for name, size in bytes_by_type(steady_rows, per=2)[:8]:
                        out.steady_bytes.setdefault(name, Figure()).add(size)
            if life:
                sampler = None
                for rep in range(reps + (1 if profile else 0)):
                    profiling = profile and rep == reps
                    if profiling:
                        sampler = Sampler(stack.home / "lifecycle-profile.json")
                        sampler.start()
                    before = meter.read()
                    seconds, rows = await tandem_lifecycle(
                        env, settings, pool, f"life-{uuid.uuid4().hex[:6]}"
                    )
                    tandem_cpu = cpu_delta(before, meter.read())
                    shape = shape_of(rows)
                    before = meter.read()
                    bare_seconds, bare_rows = await bare_lifecycle(env, shape, bare_queue)
                    bare_cpu = cpu_delta(before, meter.read())
                    if io:
                        before = meter.read()
                        io_seconds, _ = await bare_lifecycle(env, shape, io_queue)
                        io_cpu = cpu_delta(before, meter.read())
                    if profiling and sampler is not None:
                        sampler.stop()
                        out.profile = sampler.figures()
                        continue
                    out.life["tandem"].add(seconds)
                    out.life["bare"].add(bare_seconds)
                    out.add_cpu("13-year lifecycle · Tandem", tandem_cpu)
                    out.add_cpu("13-year lifecycle · bare", bare_cpu)
                    if io:
                        out.life["bare-io"].add(io_seconds)
                        out.add_cpu("13-year lifecycle · bare-io", io_cpu)
                    out.life_shape = {"tandem": counts_of(rows), "bare": counts_of(bare_rows)}
    return out


def print_lifecycle(figures: LifecycleFigures) -> None:
    for label, part in (
        ("year 1 (match, decision)", figures.year1),
        ("per steady year (study)", figures.steady),
        ("minimal steady year (bare)", figures.minimal),
    ):
        if not part:
            continue
        print(
            f"{label:26} events {part['events'].show('{:.0f}')}  history"
            f" {part['kib'].show('{:.1f}', ' KiB')}  activities {part['activities'].show('{:.0f}')}"
            f"  timers {part['timers'].show('{:.0f}')}  billable actions"
            f" {part['billable'].show('{:.0f}')}"
        )
    if figures.life["tandem"].values:
        print(
            f"13-year lifecycle: Tandem {figures.life['tandem'].show('{:.2f}', ' s')},"
            f" bare {figures.life['bare'].show('{:.2f}', ' s')}; shape {figures.life_shape}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tandems", type=int, default=3, help="repetitions of each path")
    parser.add_argument("--by-type", action="store_true", help="history bytes by event type")
    args = parser.parse_args()
    figures = asyncio.run(run_lifecycle_paths(args.tandems))
    print_lifecycle(figures)
    if args.by_type:
        for name, size in figures.steady_bytes.items():
            print(f"  {name:45} {size.show('{:.0f}', ' B/year')}")


if __name__ == "__main__":
    main()
