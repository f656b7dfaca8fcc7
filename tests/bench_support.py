"""The real parts a benchmark runs on, and what it measures them with.

Embedded PostgreSQL, the SMTP sink (in this process), a Temporal server (the dev server, or
the time-skipping test server); worker processes (``tests/bench_worker.py`` or ``tandem
worker``); CPU seconds by process read from ``/proc`` (psutil) before and after a path; the
histories of workflows with Temporal's billable actions counted; median [min-max].
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil
import structlog
from pydantic import SecretStr
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.db import migrate
from starter.mailsink import MailSink
from starter.postgres import embedded_postgres
from tandem.logging import configure_logging
from tandem.settings import PROJECT_ROOT, Settings
from tests.bench_worker import IO_SCHEMA
from tests.conftest import register_search_attributes
from tests.support import BIN, terminate
from workflows import search_attributes as sa
from workflows.codec import data_converter


def log_to(path: Path) -> None:
    """The worker in this process logs as the worker processes do (JSON, info), to a file."""
    configure_logging("json", "info")
    structlog.configure(logger_factory=structlog.WriteLoggerFactory(file=path.open("a")))


@dataclass
class Stack:
    env: WorkflowEnvironment
    pool: asyncpg.Pool
    dsn: str
    sink: MailSink
    settings: Settings
    home: Path
    pg_data: Path

    def mails(self) -> int:
        """Mails the sink holds (a directory count: parsing them would cost the driver)."""
        return sum(1 for _ in os.scandir(self.sink.maildir / "new"))


async def _dev_server() -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        data_converter=data_converter(Settings()),
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=sa.ALL,
    )


async def _time_skipping() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(Settings()),
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )
    await register_search_attributes(env.client)
    return env


@dataclass
class Base:
    """PostgreSQL and the SMTP sink, shared by the Temporal servers of one benchmark."""

    pool: asyncpg.Pool
    dsn: str
    sink: MailSink
    home: Path


@contextlib.asynccontextmanager
async def bench_base() -> AsyncIterator[Base]:
    """Everything started here and stopped afterwards; data in a fresh temporary folder."""
    home = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
    log_to(home / "this-process.log")
    with embedded_postgres(home / "pg", delete=True) as dsn:
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=20)
        assert pool is not None
        async with pool.acquire() as conn:
            await migrate(conn)
        sink = MailSink(home / "mail", port=0)
        await sink.start()
        try:
            yield Base(pool, dsn, sink, home)
        finally:
            await sink.stop()
            await pool.close()


@contextlib.asynccontextmanager
async def bench_stack(
    *, time_skipping: bool = False, base: Base | None = None
) -> AsyncIterator[Stack]:
    """A Temporal server (the dev server, or the time-skipping one) on ``base`` (or on a base
    of its own)."""
    if base is None:
        async with bench_base() as own, bench_stack(time_skipping=time_skipping, base=own) as st:
            yield st
        return
    start: Callable[[], Awaitable[WorkflowEnvironment]] = (
        _time_skipping if time_skipping else _dev_server
    )
    env = await start()
    settings = Settings(
        home=base.home,
        smtp_port=base.sink.port,
        task_queue=f"bench-{uuid.uuid4().hex[:6]}",
        reply_token_secret=SecretStr("bench"),
    )
    try:
        yield Stack(env, base.pool, base.dsn, base.sink, settings, base.home, base.home / "pg")
    finally:
        await env.shutdown()


@contextlib.asynccontextmanager
async def fresh_database(stack: Stack) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A migrated database of its own (with the bare I/O tables), dropped afterwards, so
    every repetition starts from the same empty tables."""
    name = f"b_{uuid.uuid4().hex[:10]}"
    await stack.pool.execute(f'CREATE DATABASE "{name}"')
    base, _, query = stack.dsn.partition("?")
    dsn = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            await conn.execute(IO_SCHEMA)
        yield dsn, pool
    finally:
        await pool.close()
        await stack.pool.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


# -- processes and their CPU ------------------------------------------------------------------


def _own_cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def _tree_cpu(pid: int) -> float:
    """A process, its live children and (through the kernel's cutime/cstime) every child it
    has reaped: PostgreSQL's backends come and go with their connections."""
    try:
        root = psutil.Process(pid)
        t = root.cpu_times()
        total = float(t.user + t.system + t.children_user + t.children_system)
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += _own_cpu(child)
        return total
    except psutil.Error:
        return 0.0


def server_pid(binary: str) -> int:
    """The Temporal server this process started (a child process of ours)."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if Path(child.exe()).name == binary or child.name() == binary:
                return child.pid
    raise RuntimeError(f"no {binary} process found")


def postmaster_pid(pg_data: Path) -> int:
    for path in (pg_data / "postmaster.pid", *pg_data.glob("*/postmaster.pid")):
        if path.is_file():
            return int(path.read_text().split()[0])
    raise RuntimeError("no postmaster.pid")


@dataclass
class CpuMeter:
    """CPU seconds by process group: the workers, this process (client, SMTP sink, and any
    in-process worker), the Temporal server, PostgreSQL."""

    server: int
    postgres: int

    def read(self, workers: Iterable[int] = ()) -> dict[str, float]:
        worker = 0.0
        for pid in workers:
            with contextlib.suppress(psutil.Error):
                worker += _own_cpu(psutil.Process(pid))
        t = os.times()
        return {
            "worker": worker,
            "driver": t.user + t.system,
            "server": _tree_cpu(self.server),
            "postgres": _tree_cpu(self.postgres),
        }


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in before}


@dataclass
class WorkerProcess:
    """One worker (or gateway) process, its output in a log file."""

    kind: str
    proc: asyncio.subprocess.Process
    log: Path
    #: The log event that says it is ready.
    ready_event: str = "worker_started"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def started(self) -> bool:
        if self.proc.returncode is not None:
            tail = self.log.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"{self.kind} worker left with {self.proc.returncode}: {tail}")
        return f'"{self.ready_event}"' in self.log.read_text(errors="replace")

    async def stop(self) -> None:
        """SIGTERM and wait: a worker finishes its running activities first."""
        await terminate(self.proc, grace=45)


def worker_env(settings: Settings, dsn: str, address: str, task_queue: str) -> dict[str, str]:
    """What a worker process is configured with, as an operator would set it."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    kept.pop("DATABASE_URL", None)
    return {
        **kept,
        "DATABASE_URL": dsn,
        "TANDEM_HOME": str(settings.home),
        "TANDEM_TEMPORAL_ADDRESS": address,
        "TANDEM_TASK_QUEUE": task_queue,
        "TANDEM_SMTP_PORT": str(settings.smtp_port),
        "TANDEM_REPLY_TOKEN_SECRET": settings.reply_token_secret.get_secret_value(),
        "TANDEM_PROGRAMS_DIR": str(settings.programs_dir),
        "TANDEM_LOG_FORMAT": "json",
    }


async def spawn_worker(
    kind: str,
    env: dict[str, str],
    log: Path,
    *,
    profile: Path | None = None,
    memory: Path | None = None,
) -> WorkerProcess:
    """``kind``: ``tandem-cli`` (the ``tandem worker`` command), or a kind of
    ``tests.bench_worker`` (``tandem``, ``bare``, ``bare-io``)."""
    if kind == "tandem-cli":
        argv = [str(BIN / "tandem"), "worker"]
    else:
        argv = [sys.executable, "-m", "tests.bench_worker", kind]
        if profile is not None:
            argv += ["--profile", str(profile)]
        if memory is not None:
            argv += ["--memory", str(memory)]
    return WorkerProcess(kind, await _spawn(argv, env, log), log)


async def spawn_gateway(env: dict[str, str], log: Path, port: int) -> WorkerProcess:
    """``tandem gateway`` on ``port`` (SMTP), configured as ``env`` says."""
    argv = [str(BIN / "tandem"), "gateway"]
    proc = await _spawn(argv, {**env, "TANDEM_GATEWAY_PORT": str(port)}, log)
    return WorkerProcess("gateway", proc, log, ready_event="gateway_listening")


async def _spawn(argv: list[str], env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    """A process of the project, its output (both streams) in ``log``."""
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            cwd=PROJECT_ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )


async def wait_started(workers: list[WorkerProcess], timeout: float = 120.0) -> None:
    await until(lambda: all(w.started() for w in workers), timeout, what="workers to start")


async def until(
    done: Callable[[], bool | Awaitable[bool]],
    timeout: float,
    *,
    what: str,
    interval: float = 0.05,
) -> None:
    """Wait for a condition (the benchmark's clock keeps running: poll often, cheaply)."""
    deadline = time.monotonic() + timeout
    while True:
        value = done()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f}s for {what}")
        await asyncio.sleep(interval)


async def gather_limited(coros: Iterable[Awaitable[object]], limit: int = 32) -> list[object]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Awaitable[object]) -> object:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


# -- histories and what Temporal bills ----------------------------------------------------------

#: The counting rule for billable actions, as Temporal Cloud bills them, from history:
#: - a workflow start, for every run (client start and each continue-as-new: the new run's
#:   WorkflowExecutionStarted; the ContinuedAsNew event itself is not counted again);
#: - an activity start or retry: every attempt (the started event's ``attempt``; an activity
#:   scheduled and never started counts once);
#: - a timer started (including those of ``wait_condition(timeout=...)``);
#: - a search-attribute upsert (one per command, however many attributes it sets);
#: - a signal received, an update accepted (rejected updates leave no event and are not
#:   counted here), a child workflow or external signal initiated, a local activity marker.
#: Not counted: patch markers (exempt, like TemporalChangeVersion), queries (none of the
#: benchmarked workflows' own; the benchmark's polling is its own cost), and activity
#: heartbeats, which Temporal bills when recorded but history does not show.
ONE_ACTION = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
    EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
}


def billable(event: HistoryEvent, started_attempts: dict[int, int]) -> int:
    """The actions one event stands for (see the rule above)."""
    t = event.event_type
    if t in ONE_ACTION:
        return 1
    if t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return max(1, started_attempts.get(event.event_id, 1))
    if t == EventType.EVENT_TYPE_MARKER_RECORDED:
        name = event.marker_recorded_event_attributes.marker_name
        return 1 if "local_activity" in name else 0
    return 0


@dataclass
class Event:
    type: int
    size: int
    at: float
    actions: int
    #: Timers: the duration in seconds; activities: the type's name.
    detail: str | float | None = None
    run: int = 0


async def history_of(client: Client, workflow_id: str) -> list[Event]:
    """Every event of every run so far (following continue-as-new)."""
    rows: list[Event] = []
    desc = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
    )
    run_id: str | None = (
        desc.workflow_execution_info.first_run_id or desc.workflow_execution_info.execution.run_id
    )
    run = 0
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        attempts = {
            e.activity_task_started_event_attributes.scheduled_event_id: (
                e.activity_task_started_event_attributes.attempt
            )
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        }
        for e in history.events:
            detail: str | float | None = None
            if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                detail = e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
                detail = detail.total_seconds()
            elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                detail = e.activity_task_scheduled_event_attributes.activity_type.name
            rows.append(
                Event(
                    e.event_type,
                    e.ByteSize(),
                    e.event_time.ToDatetime().timestamp(),
                    billable(e, attempts),
                    detail,
                    run,
                )
            )
        last = history.events[-1]
        attrs = last.workflow_execution_continued_as_new_event_attributes
        run_id = attrs.new_execution_run_id or None
        run += 1
    return rows


def summarise(rows: list[Event], per: float = 1.0) -> dict[str, float]:
    """Events, KiB, activities, timers and billable actions (divided by ``per``)."""
    return {
        "events": len(rows) / per,
        "kib": sum(e.size for e in rows) / 1024 / per,
        "activities": sum(e.type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in rows)
        / per,
        "timers": sum(e.type == EventType.EVENT_TYPE_TIMER_STARTED for e in rows) / per,
        "billable": sum(e.actions for e in rows) / per,
    }


def bytes_by_type(rows: list[Event], per: float = 1.0) -> list[tuple[str, float]]:
    """History bytes by event type, largest first: what a history is made of."""
    totals: dict[str, float] = {}
    for e in rows:
        name = EventType.Name(e.type).removeprefix("EVENT_TYPE_")
        totals[name] = totals.get(name, 0) + e.size / per
    return sorted(totals.items(), key=lambda kv: -kv[1])


# -- figures ---------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured quantity over the repetitions."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def show(self, fmt: str = "{:.1f}", unit: str = "") -> str:
        if not self.values:
            return "-"
        text = fmt.format(self.median)
        if len(self.values) > 1:
            text += f" [{fmt.format(min(self.values))}-{fmt.format(max(self.values))}]"
        return text + unit
