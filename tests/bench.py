"""Benchmark: Tandem beside bare Temporal workflows of the same shape, on the real parts.

    make bench                                   (python -m tests.bench)
    python -m tests.bench --quick                a smoke run with tiny numbers
    python -m tests.bench --reps 5 --json out.json --profile

One run, one Temporal dev server, one worker configuration: Tandem's worker process (what
``tandem worker`` runs) beside a bare worker process on the same sandbox runner and shutdown
settings, whose workflows have Tandem's timers and activities and nothing else (activities
that do nothing, or the least real I/O: one INSERT per event, a seat's SELECT+UPDATE, one SMTP
send per mail). Each repetition gets a fresh database and fresh worker processes, warmed up
with a few tandems first. Paths:

* enrol → introduced: N tandems enrolled as ``tandem enroll`` does; tandems/s until the last
  one is introduced (its mails in the sink, its projection row written).
* nudge burst: N active tandems parked by one worker, due at the same instant; that worker
  stops, the instant passes, a fresh worker process starts and replays every one it picks up;
  seconds from the moment it polls until the last of the 2·N mails is in the sink.
* worker memory per cached workflow: the worker's RSS growth over the N workflows the enrol
  path parked (after the warm-up), divided by N; on the bare worker also over N more that only
  sleep. The SDK caches 1,000 workflows by default (the product's worker keeps that), so the
  cached ones stay below it.
* history per tandem-year and the 13-year lifecycle on the time-skipping server
  (``tests/bench_lifecycle.py``).
* scale-out: enrol → introduced with 1, 2 and 4 ``tandem worker`` processes on one queue; and
  replies → tandem active through 1 and 2 ``tandem gateway`` processes side by side (one
  database, one worker): every person answers their introduction at once, replies/s until
  every reply is decided and confirmed and every tandem active (the gateways' CPU is counted
  in the worker column there).

CPU milliseconds per tandem by process (the worker processes; this process: client, SMTP sink
and, on the time-skipping server, the worker; the Temporal server; PostgreSQL) are read from
/proc before and after each path. Figures, not assertions: no target is enforced, the table
says where each ratio stands. ``--profile`` adds one profiled pass per path (sampled stacks of
the worker, tracemalloc of its cached workflows) and prints the top costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import multiprocessing
import os
import platform
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.worker import Worker

from replies.pipeline import answer_id_for
from starter.tandem_cmds import enroll_ids
from tandem.lifecycle.events import TandemInput
from tandem.lifecycle.rules import Rules
from tandem.models import DecisionState, Mentee, Mentor, TandemStatus
from tandem.programs import load_program
from tests.bench_gateway import Envelope, send_all
from tests.bench_lifecycle import LifecycleFigures, run_lifecycle_paths
from tests.bench_profile import top_costs
from tests.bench_shapes import (
    BARE_WORKFLOWS,
    ENROL_STEPS,
    NUDGE_STEPS,
    BareEnrol,
    BareInput,
    BareNudge,
    BareSleeping,
)
from tests.bench_support import (
    Base,
    CpuMeter,
    Figure,
    Stack,
    WorkerProcess,
    bench_base,
    bench_stack,
    cpu_delta,
    fresh_database,
    gather_limited,
    history_of,
    postmaster_pid,
    server_pid,
    spawn_gateway,
    spawn_worker,
    summarise,
    until,
    wait_started,
    worker_env,
)
from tests.bench_worker import BareSteps
from tests.reply_support import client_reply
from tests.support import free_port, mentee, mentor, put_people, running_worker
from worker import GRACEFUL_SHUTDOWN, workflow_runner
from workflows import search_attributes as sa
from workflows.client import initial_state
from workflows.tandem import TandemWorkflow, workflow_id

PROGRAM = "stipendium-hausarzt"
#: The rows of the table, in order (the smoke test checks that each is printed).
ROWS = {
    "enrol": "enrol → introduced",
    "burst": "nudge burst, cold worker",
    "memory": "worker memory per cached workflow",
    "year": "history per tandem-year (study, steady)",
    "year1": "history of year 1 (match, decision)",
    "life": "13-year lifecycle (time-skipping)",
    "scale": "scale-out: enrol → introduced",
    "gateway": "scale-out: replies → tandem active",
}
PROCESSES = ("worker", "driver", "server", "postgres")
#: How mentee and mentor say "yes, go on" to their introduction, each in their own words.
YES_TEXTS = (
    "Hallo,\n\nwir haben uns letzte Woche getroffen. Ja, ich möchte das Tandem gern fortsetzen.",
    "Guten Tag,\n\nja, weitermachen! Das erste Treffen war sehr hilfreich.",
    "Sehr geehrte Damen und Herren,\n\nich möchte das Tandem gern fortsetzen.",
)
#: Workflows a worker keeps cached (the SDK's default, which the product's worker keeps).
CACHE = 1000


@dataclass
class Config:
    tandems: int = 300
    burst: int = 500
    scale_tandems: int = 300
    scale: tuple[int, ...] = (1, 2, 4)
    gateway_tandems: int = 150
    gateways: tuple[int, ...] = (1, 2)
    reps: int = 3
    warm: int = 5
    #: Seconds a worker is left alone before its memory is read (its last tasks are done).
    settle: float = 1.0
    #: Seconds to park a nudge burst in, besides one per 25 tandems.
    park: float = 2.0
    #: Run the time-skipping paths beside the dev-server ones (a smoke run only).
    overlap: bool = False
    io: bool = True
    profile: bool = False
    paths: frozenset[str] = frozenset({"enrol", "burst", "scale", "gateway", "years", "life"})


@dataclass
class Results:
    """Every figure by row key and shape, over the repetitions."""

    figures: dict[str, dict[str, Figure]] = field(default_factory=dict)
    cpu: dict[str, dict[str, Figure]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, Any] = field(default_factory=dict)
    lifecycle: LifecycleFigures | None = None
    #: The machine's load average (1 minute) at the start and at the end: other work on it
    #: moves every figure.
    load: list[float] = field(default_factory=list)

    def add(self, row: str, shape: str, value: float) -> None:
        self.figures.setdefault(row, {}).setdefault(shape, Figure()).add(value)

    def get(self, row: str, shape: str) -> Figure:
        return self.figures.get(row, {}).get(shape, Figure())

    def add_cpu(self, key: str, cpu: dict[str, float], per: int) -> None:
        row = self.cpu.setdefault(key, {})
        for k, v in cpu.items():
            row.setdefault(k, Figure()).add(1000 * v / per)


# -- the dev-server paths ----------------------------------------------------------------------


class DevBench:
    def __init__(self, stack: Stack, config: Config, results: Results) -> None:
        self.stack = stack
        self.config = config
        self.results = results
        self.client: Client = stack.env.client
        self.address = self.client.service_client.config.target_host
        self.meter = CpuMeter(server_pid("temporal"), postmaster_pid(stack.pg_data))
        self.rules = Rules.of(load_program(stack.settings.programs_dir, PROGRAM))

    # -- helpers

    def _tag(self) -> str:
        return uuid.uuid4().hex[:6]

    async def _workers(
        self, kind: str, dsn: str, queue: str, count: int = 1, **extra: Path | None
    ) -> tuple[list[WorkerProcess], Path]:
        env = worker_env(self.stack.settings, dsn, self.address, queue)
        marks = self.stack.home / f"marks-{queue}"
        env["TANDEM_BENCH_MARKS"] = str(marks)
        procs = await asyncio.gather(
            *(
                spawn_worker(kind, env, self.stack.home / f"{queue}-{n}.log", **extra)
                for n in range(count)
            )
        )
        await wait_started(list(procs))
        return list(procs), marks

    @staticmethod
    def _marks(path: Path) -> int:
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return 0

    async def _people(self, pool: asyncpg.Pool, tag: str, n: int) -> list[str]:
        """``n`` mentees on file and enough mentors: the mentees' ids."""
        return [m.id for m in (await self._people_on_file(pool, tag, n))[1]]

    async def _people_on_file(
        self, pool: asyncpg.Pool, tag: str, n: int
    ) -> tuple[list[Mentor], list[Mentee]]:
        """``n`` mentees and enough mentors (five seats each, a quarter spare)."""
        mentors = [mentor(f"{tag}M{i:04d}", capacity=5) for i in range(math.ceil(n / 4) + 1)]
        mentees = [mentee(f"{tag}S{i:05d}") for i in range(n)]
        await put_people(pool, mentors, mentees)
        await pool.executemany(
            "INSERT INTO bench_seats (mentor_id, free) VALUES ($1, 5)", [(m.id,) for m in mentors]
        )
        return mentors, mentees

    async def _introduced(self, pool: asyncpg.Pool, mails: int, count: int) -> bool:
        """Tandem: the introductions' mails are in the sink and the projection says so."""
        if self.stack.mails() < mails:
            return False
        done = await pool.fetchval("SELECT count(*) FROM tandems WHERE status = 'introduced'")
        return int(done) >= count

    async def _parked(self, ids: list[str], timeout: float = 300.0) -> None:
        """Every workflow has finished its last task and waits on a timer."""
        left = list(ids)
        deadline = time.monotonic() + timeout
        while left:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(left)} workflow(s) not parked, e.g. {left[0]}")

            async def busy(wid: str) -> bool:
                desc = await self.client.workflow_service.describe_workflow_execution(
                    DescribeWorkflowExecutionRequest(
                        namespace=self.client.namespace,
                        execution=WorkflowExecution(workflow_id=wid),
                    )
                )
                return (
                    desc.HasField("pending_workflow_task")
                    or len(desc.pending_activities) > 0
                    or desc.workflow_execution_info.history_length < 4
                )

            flags = await gather_limited(busy(w) for w in left)
            left = [w for w, b in zip(left, flags, strict=True) if b]
            if left:
                await asyncio.sleep(0.2)

    async def _measure(
        self,
        key: str,
        workers: list[WorkerProcess],
        count: int,
        go: Callable[[], Awaitable[object]],
        done: Callable[[], bool | Awaitable[bool]],
        timeout: float,
        *,
        record: bool = True,
        profile: Path | None = None,
    ) -> float:
        """Seconds from ``go`` until ``done``; CPU of every process meanwhile (kept unless
        this is a profiled pass, whose sampling costs CPU of its own). ``profile``: the
        worker samples its stacks in this window and writes them there."""
        pids = [w.pid for w in workers]
        for w in workers if profile else []:
            w.proc.send_signal(signal.SIGUSR2)
        before = self.meter.read(pids)
        t0 = time.perf_counter()
        await go()
        await until(done, timeout, what=key, interval=0.05)
        seconds = time.perf_counter() - t0
        if record:
            self.results.add_cpu(key, cpu_delta(before, self.meter.read(pids)), count)
        if profile is not None:
            workers[0].proc.send_signal(signal.SIGUSR2)
            await self._written(profile, "done")
            self.results.profiles[key] = json.loads(profile.read_text(encoding="utf-8"))
        return seconds

    async def _start_bare(self, wf: Any, queue: str, inputs: list[BareInput]) -> None:
        await gather_limited(
            self.client.start_workflow(wf, i, id=i.key, task_queue=queue) for i in inputs
        )

    # -- enrol → introduced, and worker memory per cached workflow

    async def enrol(
        self,
        kind: str,
        n: int,
        *,
        row: str = "enrol",
        profile: bool = False,
        memory: bool = False,
    ) -> float:
        """Tandems per second from enrolment to introduction (``kind``: tandem, bare,
        bare-io). The worker's RSS growth over the n parked workflows is the memory per cached
        workflow (on the bare worker, then also over as many that only sleep).
        ``profile``: sampled stacks; ``memory``: tracemalloc snapshots (a pass of its own)."""
        warm = self.config.warm
        tag = self._tag()
        async with fresh_database(self.stack) as (dsn, pool):
            ids = await self._people(pool, tag, warm + n)
            queue = f"{row}-{tag}"
            prof = self.stack.home / f"profile-{queue}.json" if profile else None
            snap = self.stack.home / f"memory-{queue}.json" if memory else None
            procs, marks = await self._workers(kind, dsn, queue, profile=prof, memory=snap)
            try:
                if kind.startswith("tandem"):
                    wids = [workflow_id(i) for i in ids]
                    settings = self.stack.settings.model_copy(update={"task_queue": queue})
                    m0 = self.stack.mails()
                    await enroll_ids(self.client, dsn, ids[:warm], settings)
                    await until(
                        lambda: self._introduced(pool, m0 + 2 * warm, warm), 60, what="warm-up"
                    )
                    m1 = self.stack.mails()

                    async def go() -> None:
                        await enroll_ids(self.client, dsn, ids[warm:], settings)

                    def done() -> Awaitable[bool]:
                        return self._introduced(pool, m1 + 2 * n, warm + n)

                else:
                    inputs = [BareInput(key=f"bare-{i}", steps=ENROL_STEPS) for i in ids]
                    wids = [i.key for i in inputs]
                    per = len(ENROL_STEPS)
                    await self._start_bare(BareEnrol.run, queue, inputs[:warm])
                    await until(lambda: self._marks(marks) >= warm * per, 60, what="warm-up")

                    async def go() -> None:
                        await self._start_bare(BareEnrol.run, queue, inputs[warm:])

                    def done() -> bool:
                        return self._marks(marks) >= (warm + n) * per

                await self._parked(wids[:warm])
                rss0 = await self._rss(procs, snap, "baseline")
                key = f"{row} · {kind}"
                seconds = await self._measure(
                    key,
                    procs,
                    n,
                    go,
                    done,
                    timeout=60 + n,
                    record=not (profile or memory),
                    profile=prof,
                )
                await self._parked(wids)
                rss1 = await self._rss(procs, snap, "done")
                measured = row == "enrol" and not profile and snap is None
                if snap is not None:
                    self._memory_profile(f"memory · {kind}", snap, rss1 - rss0, n)
                elif measured and kind != "bare-io":
                    self.results.add("memory", kind, (rss1 - rss0) / n / 1024)
                sleepers = min(n, CACHE - warm - n)
                if measured and kind == "bare" and sleepers > 0:
                    await self._sleeping(queue, sleepers)
                    rss2 = await self._rss(procs, None, "")
                    self.results.add("memory", "sleeping", (rss2 - rss1) / sleepers / 1024)
            finally:
                await asyncio.gather(*(p.stop() for p in procs))
            if kind == "tandem" and "enrol_shape" not in self.results.notes:
                rows = await history_of(self.client, workflow_id(ids[-1]))
                self.results.notes["enrol_shape"] = summarise(rows)
        return n / seconds

    async def _sleeping(self, queue: str, n: int) -> None:
        inputs = [BareInput(key=f"sleep-{queue}-{i}") for i in range(n)]
        await self._start_bare(BareSleeping.run, queue, inputs)
        await self._parked([i.key for i in inputs])

    async def _rss(self, procs: list[WorkerProcess], snap: Path | None, state: str) -> int:
        """The worker's resident memory once its last tasks are done (and, with ``snap``,
        its tracemalloc snapshot: the baseline, then the difference)."""
        await asyncio.sleep(self.config.settle)
        if snap is not None:
            await self._snapshot(procs[0], snap, state)
        return procs[0].rss()

    def _memory_profile(self, key: str, snap: Path, rss: int, n: int) -> None:
        data = json.loads(snap.read_text(encoding="utf-8"))
        data["rss_delta"], data["count"] = rss, n
        self.results.profiles[key] = data

    async def _snapshot(self, proc: WorkerProcess, path: Path, state: str) -> None:
        proc.proc.send_signal(signal.SIGUSR1)
        await self._written(path, state)

    async def _written(self, path: Path, state: str) -> None:
        """Until a worker has written its figures to ``path``."""

        def ready() -> bool:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return False
            return bool(data.get("state") == state)

        await until(ready, 300, what="tracemalloc snapshot", interval=0.2)

    # -- scale-out

    async def scale(self, levels: tuple[int, ...], n: int) -> dict[int, float]:
        """Enrol → introduced with more and more ``tandem worker`` processes on one queue, as
        an operator adds them: at each level the new ones warm up, then n tandems."""
        warm = self.config.warm
        tag = self._tag()
        rates: dict[int, float] = {}
        async with fresh_database(self.stack) as (dsn, pool):
            ids = await self._people(pool, tag, warm * max(levels) + n * len(levels))
            queue = f"scale-{tag}"
            settings = self.stack.settings.model_copy(update={"task_queue": queue})
            procs: list[WorkerProcess] = []
            taken = 0

            async def enrol(batch: list[str]) -> None:
                nonlocal taken
                m0 = self.stack.mails()
                taken += len(batch)
                await enroll_ids(self.client, dsn, batch, settings)
                await until(
                    lambda: self._introduced(pool, m0 + 2 * len(batch), taken),
                    60 + n,
                    what="scale-out",
                )

            try:
                for k in levels:
                    more, _ = await self._workers("tandem-cli", dsn, queue, k - len(procs))
                    warmed = ids[taken : taken + warm * len(more)]
                    procs += more
                    await enrol(warmed)
                    batch = ids[taken : taken + n]

                    async def go(batch: list[str] = batch) -> None:
                        await enrol(batch)

                    seconds = await self._measure(
                        f"scale · tandem worker x {k}", procs, n, go, lambda: True, 60 + n
                    )
                    rates[k] = n / seconds
            finally:
                await asyncio.gather(*(p.stop() for p in procs))
        return rates

    # -- gateways side by side

    async def gateways(self, levels: tuple[int, ...], n: int) -> dict[int, float]:
        """Replies per second through 1, 2 … ``tandem gateway`` processes on one database and
        one ``tandem worker``: at each level n tandems are introduced, then mentee and mentor
        each answer their introduction as their mail client writes it, all 2·n at once over
        16 SMTP connections spread over the gateways (from a separate process, as the world's
        mail servers are), until every reply has its verdict, every tandem is active and
        every confirmation is in the sink."""
        tag = self._tag()
        rates: dict[int, float] = {}
        async with fresh_database(self.stack) as (dsn, pool):
            mentors, mentees = await self._people_on_file(pool, tag, n * len(levels))
            person: dict[str, Mentee | Mentor] = {str(m.email): m for m in mentors}
            person |= {str(m.email): m for m in mentees}
            queue = f"gateways-{tag}"
            env = worker_env(self.stack.settings, dsn, self.address, queue)
            procs, _ = await self._workers("tandem-cli", dsn, queue)
            gateways: list[WorkerProcess] = []
            ports: list[int] = []
            try:
                with ProcessPoolExecutor(
                    1, mp_context=multiprocessing.get_context("spawn")
                ) as world:
                    for level, k in enumerate(levels):
                        while len(gateways) < k:
                            ports.append(free_port())
                            log = self.stack.home / f"{queue}-gateway-{len(ports)}.log"
                            gateways.append(await spawn_gateway(env, log, ports[-1]))
                        await wait_started(gateways)
                        batch = [m.id for m in mentees[level * n : (level + 1) * n]]
                        replies = await self._introduce(dsn, pool, queue, batch, person)
                        seconds = await self._measure(
                            f"gateway · tandem gateway x {k}",
                            [*procs, *gateways],
                            2 * n,
                            functools.partial(self._send, world, tuple(ports), replies),
                            self._answered(pool, batch, replies, self.stack.mails()),
                            60 + n,
                        )
                        rates[k] = 2 * n / seconds
            finally:
                await asyncio.gather(*(p.stop() for p in [*gateways, *procs]))
        return rates

    async def _introduce(
        self,
        dsn: str,
        pool: asyncpg.Pool,
        queue: str,
        batch: list[str],
        person: dict[str, Mentee | Mentor],
    ) -> list[tuple[str, Envelope]]:
        """Enrol ``batch`` until each tandem is introduced; each person's reply to it."""
        settings = self.stack.settings.model_copy(update={"task_queue": queue})
        before = set(os.listdir(self.stack.sink.maildir / "new"))
        m0 = self.stack.mails()
        await enroll_ids(self.client, dsn, batch, settings)
        n = len(batch)
        await until(lambda: self._status(pool, batch, "introduced"), 60 + n, what="introduced")
        await until(lambda: self.stack.mails() >= m0 + 2 * n, 60, what="introductions")
        return self._replies(before, person)

    @staticmethod
    async def _send(
        world: ProcessPoolExecutor, ports: tuple[int, ...], replies: list[tuple[str, Envelope]]
    ) -> None:
        envelopes = [e for _, e in replies]
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(world, send_all, ports, envelopes, 16, 0.0)

    def _answered(
        self, pool: asyncpg.Pool, batch: list[str], replies: list[tuple[str, Envelope]], m0: int
    ) -> Callable[[], Awaitable[bool]]:
        """Every reply decided, its confirmation and the tandem's in the sink (4 per tandem
        after ``m0``), every tandem of ``batch`` active."""
        answers = [answer_id_for(mid) for mid, _ in replies]

        async def done() -> bool:
            if self.stack.mails() < m0 + 4 * len(batch):
                return False
            decided = await pool.fetchval(
                "SELECT count(*) FROM reply_verdicts WHERE message_id_hash = ANY($1::text[])",
                answers,
            )
            return int(decided) >= len(answers) and await self._status(pool, batch, "active")

        return done

    async def _status(self, pool: asyncpg.Pool, ids: list[str], status: str) -> bool:
        """Every tandem of ``ids`` has ``status`` in the projection."""
        found = await pool.fetchval(
            "SELECT count(*) FROM tandems WHERE mentee_id = ANY($1::text[]) AND status = $2",
            ids,
            status,
        )
        return int(found) >= len(ids)

    def _replies(
        self, before: set[str], person: dict[str, Mentee | Mentor]
    ) -> list[tuple[str, Envelope]]:
        """Each person's reply "yes, go on" to the introduction they got (the sink's mails
        that were not in ``before``): (its Message-ID, its envelope)."""
        new = self.stack.sink.maildir / "new"
        replies: list[tuple[str, Envelope]] = []
        for name in sorted(set(os.listdir(new)) - before):
            original = message_from_bytes((new / name).read_bytes(), policy=default_policy)
            to = parseaddr(str(original["To"]))[1]
            if not original["Reply-To"] or to not in person:
                continue
            text = YES_TEXTS[len(replies) % len(YES_TEXTS)]
            reply = client_reply(original, person[to], text, len(replies))
            rcpt = parseaddr(str(original["Reply-To"]))[1]
            replies.append((str(reply["Message-ID"]).strip(), (to, rcpt, bytes(reply))))
        return replies

    # -- nudge burst

    def _active_input(self, mentee_id: str, mentor_id: str, due: datetime) -> TandemInput:
        """A tandem active since a month, its next check-in due at ``due``."""
        state = initial_state(mentee(mentee_id), self.rules)
        now = datetime.now(UTC)
        state = state.model_copy(
            update={
                "status": TandemStatus.ACTIVE,
                "mentor_id": mentor_id,
                "enrolled_at": now - timedelta(days=60),
                "introduced_at": now - timedelta(days=60),
                "active_since": now - timedelta(days=30),
                "phase_started_at": now - timedelta(days=30),
                "next_nudge_at": due,
                "match_score": 10.0,
                "event_seq": 5,
                "decision": DecisionState(
                    answers={"mentee": "continue", "mentor": "continue"}, outcome="continue"
                ),
            }
        )
        return TandemInput(rules=self.rules, state=state)

    @contextlib.asynccontextmanager
    async def _parking_worker(
        self, kind: str, pool: asyncpg.Pool, queue: str
    ) -> AsyncIterator[None]:
        """A worker in this process that runs each workflow's first task (it sets the timer
        of the check-in) and is gone before the check-ins are due."""
        if kind == "tandem":
            settings = self.stack.settings.model_copy(update={"task_queue": queue})
            async with running_worker(self.client, settings, pool, runner=workflow_runner()):
                yield
            return
        parking = Worker(
            self.client,
            task_queue=queue,
            workflows=BARE_WORKFLOWS,
            activities=[BareSteps(False, self.stack.settings, None).step],
            workflow_runner=workflow_runner(),
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        )
        async with parking:
            yield

    async def _park_burst(
        self, kind: str, pool: asyncpg.Pool, queue: str, ids: list[str], tag: str, due: datetime
    ) -> list[str]:
        async with self._parking_worker(kind, pool, queue):
            if kind == "tandem":
                actives = [
                    self._active_input(i, f"{tag}M{k // 4:04d}", due) for k, i in enumerate(ids)
                ]
                await gather_limited(
                    self.client.start_workflow(
                        TandemWorkflow.run,
                        a,
                        id=workflow_id(a.state.mentee_id),
                        task_queue=queue,
                        search_attributes=sa.initial(a.state),
                        static_summary=f"Tandem of mentee {a.state.mentee_id} ({PROGRAM})",
                    )
                    for a in actives
                )
                wids = [workflow_id(i) for i in ids]
            else:
                inputs = [
                    BareInput(key=f"{queue}-{i}", steps=NUDGE_STEPS, due_at=due.timestamp())
                    for i in ids
                ]
                await self._start_bare(BareNudge.run, queue, inputs)
                wids = [i.key for i in inputs]
            await self._parked(wids)
        return wids

    async def burst(self, kind: str, n: int, *, profile: bool = False) -> float:
        """Seconds for a fresh worker process to send the 2·n mails of n check-ins that came
        due at once while no worker ran."""
        budget = self.config.park + n / 25
        async with fresh_database(self.stack) as (dsn, pool):
            for _ in range(3):
                tag = self._tag()
                ids = await self._people(pool, tag, n)
                queue = f"burst-{tag}"
                due = datetime.now(UTC) + timedelta(seconds=budget)
                wids = await self._park_burst(kind, pool, queue, ids, tag, due)
                if datetime.now(UTC) < due - timedelta(seconds=0.3):
                    break
                # Parking took longer than the budget: some were due on the parking worker.
                await self._terminate(wids)
                budget *= 2
            else:
                raise RuntimeError("could not park the burst in time")
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.2)
            prof = self.stack.home / f"profile-{queue}.json" if profile else None
            env = worker_env(self.stack.settings, dsn, self.address, queue)
            marks = self.stack.home / f"marks-{queue}"
            env["TANDEM_BENCH_MARKS"] = str(marks)
            cold = await spawn_worker(kind, env, self.stack.home / f"{queue}.log", profile=prof)
            m0, k0 = self.stack.mails(), self._marks(marks)
            await wait_started([cold])

            def done() -> bool:
                if kind == "bare":
                    return self._marks(marks) >= k0 + 2 * n
                return self.stack.mails() >= m0 + 2 * n

            async def go() -> None:
                return None

            try:
                seconds = await self._measure(
                    f"burst · {kind}",
                    [cold],
                    n,
                    go,
                    done,
                    timeout=120 + n,
                    record=not profile,
                    profile=prof,
                )
            finally:
                await cold.stop()
        return seconds

    async def _terminate(self, wids: list[str]) -> None:
        async def one(wid: str) -> None:
            try:
                await self.client.get_workflow_handle(wid).terminate("bench: parked too late")
            except Exception:  # already closed
                return

        await gather_limited(one(w) for w in wids)


# -- the run -------------------------------------------------------------------------------------


def _progress(what: str, value: str, since: float) -> None:
    print(f"  {what}: {value}  ({time.perf_counter() - since:.0f} s)", flush=True)


async def run(config: Config) -> Results:
    load = os.getloadavg()[0]
    async with bench_base() as base:
        results = await _run(config, base)
    results.load = [load, os.getloadavg()[0]]
    return results


async def _run(config: Config, base: Base) -> Results:
    """The dev-server paths, then the time-skipping ones; at once for a smoke run (its
    figures are not comparable anyway), which keeps it short."""
    results = Results()
    if config.overlap:
        await asyncio.gather(_dev_paths(config, base, results), _ts_paths(config, base, results))
    else:
        await _dev_paths(config, base, results)
        await _ts_paths(config, base, results)
    return results


async def _dev_paths(config: Config, base: Base, results: Results) -> None:
    dev_paths = {"enrol", "burst", "scale", "gateway"} & config.paths
    if dev_paths:
        async with bench_stack(base=base) as stack:
            bench = DevBench(stack, config, results)
            shapes = ["tandem", "bare"] + (["bare-io"] if config.io else [])
            for rep in range(config.reps):
                if "enrol" in config.paths:
                    for kind in shapes:
                        t = time.perf_counter()
                        rate = await bench.enrol(kind, config.tandems)
                        results.add("enrol", kind, rate)
                        _progress(f"enrol · {kind}", f"{rate:.1f} /s", t)
                if "burst" in config.paths:
                    for kind in shapes:
                        t = time.perf_counter()
                        seconds = await bench.burst(kind, config.burst)
                        results.add("burst", kind, seconds)
                        _progress(f"burst · {kind}", f"{seconds:.1f} s", t)
                if "scale" in config.paths:
                    scaled = bench.scale(config.scale, config.scale_tandems)
                    await _scale_out("scale", scaled, results)
                if "gateway" in config.paths:
                    scaled = bench.gateways(config.gateways, config.gateway_tandems)
                    await _scale_out("gateway", scaled, results)
                print(f"  repetition {rep + 1}/{config.reps} done", flush=True)
            if config.profile:
                t = time.perf_counter()
                if "enrol" in config.paths:
                    await bench.enrol("tandem", config.tandems, profile=True)
                    for kind in ("tandem", "bare"):
                        await bench.enrol(kind, config.tandems, memory=True)
                if "burst" in config.paths:
                    await bench.burst("tandem", config.burst, profile=True)
                _progress("profiled passes", "done", t)


async def _scale_out(row: str, scaled: Awaitable[dict[int, float]], results: Results) -> None:
    """One scale-out curve: the rate at each number of processes."""
    t = time.perf_counter()
    rates = await scaled
    for k, rate in rates.items():
        results.add(row, str(k), rate)
    _progress(row, " · ".join(f"{k}: {v:.1f} /s" for k, v in rates.items()), t)


async def _ts_paths(config: Config, base: Base, results: Results) -> None:
    if {"years", "life"} & config.paths:
        t = time.perf_counter()
        results.lifecycle = await run_lifecycle_paths(
            config.reps,
            years="years" in config.paths,
            life="life" in config.paths,
            profile=config.profile,
            io=config.io,
            base=base,
        )
        _progress("time-skipping paths", "done", t)


# -- the table -----------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


def table(config: Config, results: Results) -> list[str]:
    """The table as Markdown lines."""
    r = results
    load = " → ".join(f"{v:.1f}" for v in r.load)
    lines = [
        f"Tandem beside bare Temporal, {os.cpu_count()} cores (load average {load}), one dev"
        f" server, one worker process (scale-out: several), {config.reps} repetition(s):"
        " median [min-max]"
        + (
            " - a smoke run: tiny numbers, paths overlapping, figures not comparable"
            if config.overlap
            else ""
        ),
        "",
        "| work | Tandem | bare workflow, same shape, trivial activities"
        " | bare, minimal real I/O | ratio | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    if "enrol" in r.figures:
        t, b, io = r.get("enrol", "tandem"), r.get("enrol", "bare"), r.get("enrol", "bare-io")
        ratio = t.median / b.median
        io_ratio = f" ({t.median / io.median:.2f} of I/O)" if io.values else ""
        lines.append(
            f"| {ROWS['enrol']}, {config.tandems} tandems | {t.show(unit=' /s')}"
            f" | {b.show(unit=' /s')} ({len(ENROL_STEPS)} activities) | {io.show(unit=' /s')}"
            f" | **{ratio:.2f}**{io_ratio} | ≥ 0.85: {_mark(ratio >= 0.85)} |"
        )
    if "burst" in r.figures:
        t, b, io = r.get("burst", "tandem"), r.get("burst", "bare"), r.get("burst", "bare-io")
        ratio = t.median / b.median
        io_ratio = f" ({t.median / io.median:.2f}x I/O)" if io.values else ""
        lines.append(
            f"| {ROWS['burst']}: {config.burst} due at once, {2 * config.burst:,} mails"
            f" | {t.show(unit=' s')} | {b.show(unit=' s')} | {io.show(unit=' s')}"
            f" | **{ratio:.2f}x**{io_ratio} | ≤ 1.3x: {_mark(ratio <= 1.3)} |"
        )
    if "memory" in r.figures:
        t, b, s = r.get("memory", "tandem"), r.get("memory", "bare"), r.get("memory", "sleeping")
        lines.append(
            f"| {ROWS['memory']} ({config.tandems:,} cached) | {t.show('{:.0f}', ' KiB')}"
            f" | {s.show('{:.0f}', ' KiB')} sleeping, {b.show('{:.0f}', ' KiB')}"
            f" with {len(ENROL_STEPS)} activities | - | **{t.median / b.median:.1f}x**"
            f" | ≤ 180 KiB: {_mark(t.median <= 180)} |"
        )
    life = r.lifecycle
    if life is not None and life.steady:
        st, mn, y1 = life.steady, life.minimal, life.year1

        def hist(p: dict[str, Figure]) -> str:
            return (
                f"{p['events'].show('{:.0f}')} events, {p['kib'].show('{:.1f}', ' KiB')},"
                f" {p['billable'].show('{:.0f}')} billable actions"
            )

        kib, actions = st["kib"].median, st["billable"].median
        lines.append(
            f"| {ROWS['year']} | {hist(st)} | minimal year (4 x timer + 2 mails): {hist(mn)}"
            f" | - | **{kib / mn['kib'].median:.1f}x bytes** | ≤ 8 KiB: {_mark(kib <= 8)},"
            f" ≤ 14 actions: {_mark(actions <= 14)} |"
        )
        lines.append(f"| {ROWS['year1']} | {hist(y1)} | - | - | - | - |")
    if life is not None and life.life["tandem"].values:
        t, b, bio = life.life["tandem"], life.life["bare"], life.life["bare-io"]
        ratio = t.median / b.median
        with_io = (
            f"{bio.show('{:.2f}', ' s')} (one SMTP send and one INSERT per activity):"
            f" {t.median / bio.median:.2f}x"
            if bio.values
            else "-"
        )
        lines.append(
            f"| {ROWS['life']} | {t.show('{:.2f}', ' s')} | {b.show('{:.2f}', ' s')}, same"
            f" timers, activities, updates | {with_io} | **{ratio:.2f}x**"
            f" | ≤ 1.3x: {_mark(ratio <= 1.3)} |"
        )
    if "scale" in r.figures:
        what = f"{config.scale_tandems} tandems, `tandem worker`"
        lines.append(_curve(r, "scale", config.scale, what, "worker"))
    if "gateway" in r.figures:
        what = f"{2 * config.gateway_tandems} replies, 1 worker, `tandem gateway`"
        lines.append(_curve(r, "gateway", config.gateways, what, "gateway"))
    if r.cpu or (life is not None and life.cpu):
        lines += [
            "",
            "CPU milliseconds per tandem (median), by process",
            "",
            "| path · shape | worker | this process (client, sink) | Temporal server"
            " | PostgreSQL | total |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        cpu = {**r.cpu, **(life.cpu if life is not None else {})}
        for key, row in cpu.items():
            values = [row[p].median for p in PROCESSES]
            cells = " | ".join(f"{v:.1f}" for v in values)
            lines.append(f"| {key} | {cells} | {sum(values):.1f} |")
    notes = []
    shape = r.notes.get("enrol_shape")
    if shape:
        notes.append(
            f"Tandem's enrol → introduced today: {shape['activities']:.0f} activities,"
            f" {shape['timers']:.0f} timers, {shape['events']:.0f} events,"
            f" {shape['kib']:.1f} KiB, {shape['billable']:.0f} billable actions per tandem"
            f" (the bare shape keeps the issue's {len(ENROL_STEPS)} activities)."
        )
    if "gateway" in r.figures:
        notes.append(
            "The gateway rows' CPU is per reply, and their worker column holds the worker and"
            " the gateways; the mail servers sending the replies are a process not counted."
        )
    if life is not None and life.life_shape:
        notes.append(f"13-year shapes (Tandem / bare): {life.life_shape}.")
    if notes:
        lines += ["", *notes]
    return lines


def _curve(r: Results, row: str, levels: tuple[int, ...], what: str, unit: str) -> str:
    """A scale-out row: the rate at each level, and its gain over the first."""
    one = r.get(row, str(levels[0])).median
    rates = " · ".join(f"{k}: {r.get(row, str(k)).show(unit=' /s')}" for k in levels)
    gains = " · ".join(f"{r.get(row, str(k)).median / one:.2f}" for k in levels)
    return (
        f"| {ROWS[row]}, {what} x {'/'.join(map(str, levels))} | {rates} | - | - |"
        f" {gains} of 1 {unit} | - |"
    )


def profile_lines(results: Results) -> list[str]:
    lines: list[str] = []
    for key, figures in results.profiles.items():
        if key.startswith("memory"):
            lines.append(
                f"{key}: RSS +{figures['rss_delta'] / 1024:.0f} KiB over {figures['count']},"
                f" Python heap +{figures['total'] / 1024:.0f} KiB (tracemalloc), top files:"
            )
            for item in figures["top"][:5]:
                lines.append(
                    f"    {item['bytes'] / figures['count'] / 1024:7.1f} KiB/workflow"
                    f"  {item['file']}"
                )
            continue
        lines.append(f"{key}: {figures['busy']:.0f} busy samples (5 ms of CPU each); top costs")
        for view in ("project", "library", "function"):
            tops = ", ".join(f"{name} {share:.0f} %" for name, share in top_costs(figures, view))
            lines.append(f"    by {view} frame: {tops}")
    life = results.lifecycle
    if life is not None and life.profile:
        lines.append("13-year lifecycle (this process: worker and client); top costs")
        for view in ("project", "library", "function"):
            tops = ", ".join(
                f"{name} {share:.0f} %" for name, share in top_costs(life.profile, view)
            )
            lines.append(f"    by {view} frame: {tops}")
    if life is not None and life.steady_bytes:
        parts = ", ".join(f"{k} {v.median:.0f} B" for k, v in list(life.steady_bytes.items())[:5])
        lines.append(f"history bytes per steady year by event type: {parts}")
    return lines


def as_json(config: Config, results: Results) -> dict[str, Any]:
    def figs(d: dict[str, Figure]) -> dict[str, list[float]]:
        return {k: v.values for k, v in d.items()}

    life = results.lifecycle
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": results.load,
        },
        "config": {
            k: sorted(v) if isinstance(v, frozenset) else v for k, v in vars(config).items()
        },
        "figures": {row: figs(shapes) for row, shapes in results.figures.items()},
        "cpu_ms_per_tandem": {k: figs(v) for k, v in results.cpu.items()}
        | ({k: figs(v) for k, v in life.cpu.items()} if life else {}),
        "history": {
            "year1": figs(life.year1),
            "steady_year": figs(life.steady),
            "minimal_year": figs(life.minimal),
            "steady_bytes_by_type": figs(life.steady_bytes),
        }
        if life
        else {},
        "lifecycle_seconds": figs(life.life) if life else {},
        "notes": results.notes | ({"life_shape": life.life_shape} if life else {}),
        "profiles": results.profiles
        | ({"lifecycle": life.profile} if life and life.profile else {}),
        "table": table(config, results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tandems", type=int, help="enrol → introduced (300)")
    parser.add_argument("--burst", type=int, help="tandems due at once (500)")
    parser.add_argument("--scale-tandems", type=int, help="tandems of the scale-out (300)")
    parser.add_argument("--reps", type=int, help="repetitions (3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny numbers, once")
    parser.add_argument("--no-io", action="store_true", help="leave out the bare I/O column")
    parser.add_argument("--profile", action="store_true", help="add a profiled pass per path")
    parser.add_argument(
        "--only",
        help="comma-separated paths: enrol (with memory),burst,scale,gateway,years,life",
    )
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args()
    config = Config()
    if args.quick:
        config = Config(
            tandems=6,
            burst=6,
            scale_tandems=6,
            gateway_tandems=4,
            reps=1,
            warm=1,
            settle=0.2,
            park=1.0,
            overlap=True,
        )
    for name in ("tandems", "burst", "scale_tandems", "reps"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    if config.tandems + config.warm > CACHE:
        parser.error(f"--tandems: at most {CACHE - config.warm} (the worker caches {CACHE:,})")
    config.io = not args.no_io
    config.profile = args.profile
    if args.only:
        config.paths = frozenset(p.strip() for p in args.only.split(","))
    started = time.perf_counter()
    results = asyncio.run(run(config))
    lines = table(config, results)
    if config.profile:
        lines += [
            "",
            "Profile (one extra pass per path, Tandem's worker)",
            "",
            *profile_lines(results),
        ]
    print("\n".join(["", *lines, "", f"({time.perf_counter() - started:.0f} s)"]))
    if args.json:
        args.json.write_text(json.dumps(as_json(config, results), indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
