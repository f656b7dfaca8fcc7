"""``tandem dev``: the whole stack on one machine, started in order, stopped in reverse.

PostgreSQL -> schema and programmes -> codec server (with TANDEM_PAYLOAD_KEYS) -> Temporal dev
server -> mail sink -> worker -> reply gateway -> demo.
Everything started is registered on one exit stack, so whatever happens (Ctrl-C, SIGTERM, a
part dying, a failed start) the parts already running are stopped, newest first.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import structlog
import typer
from rich.table import Table
from temporalio.client import Client

from activities.db import migrate
from activities.people import upsert_programs
from replies.service import ReplyGateway
from starter import devstack
from starter.codec_cmd import CodecServer
from starter.common import CommandError, console, dsn_file, err_console, fail
from starter.devstack import DevStackError, TemporalDevServer
from starter.digest_cmd import ensure_digest_schedule
from starter.gateway_cmd import start_gateway
from starter.import_cmd import import_file, validate
from starter.mailsink import MailSink
from starter.retention_cmd import ensure_retention_schedule
from starter.tandem_cmds import enroll_ids, wake_waiting_tandems
from tandem.logging import configure_logging
from tandem.programs import Program, ProgramError, load_programs
from tandem.settings import PROJECT_ROOT, Settings, get_settings
from workflows.codec import PayloadKeyError, encrypts, payload_codec

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEMO_DIR = PROJECT_ROOT / "demo"
WORKER_STOP_GRACE = 30.0


def dev(
    demo: bool = typer.Option(
        False,
        "--demo",
        help="Also import the invented people in demo/*.csv and enrol every demo mentee"
        " (programme 'demo': a whole tandem lifecycle in minutes).",
    ),
) -> None:
    """Run everything locally until Ctrl-C: Temporal with its Web UI, PostgreSQL, a mail sink
    that keeps every mail (`tandem mail list`) and the worker. A restart resumes where it
    stopped; data lives under .tandem/."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    try:
        payload_codec(settings)  # a malformed key is one line before anything starts
    except PayloadKeyError as err:
        fail(str(err))
    try:
        with devstack.single_instance(settings.home):
            devstack.stop_leftover_temporal(settings.home)
            devstack.forget_dead_postgres_handles(settings.home / "pgdata")
            devstack.check_ports(settings)
            code = asyncio.run(run_stack(settings, demo=demo))
    except DevStackError as err:
        fail(str(err))
    if code:
        raise typer.Exit(code)


@dataclass
class Running:
    """What ``tandem dev`` has up once started."""

    dsn: str
    client: Client
    temporal: TemporalDevServer
    sink: MailSink
    worker: asyncio.Task[None]
    gateway: ReplyGateway
    demo: tuple[int, int] | None = None  # (demo mentees enrolled, of which started now)
    codec: CodecServer | None = None  # with TANDEM_PAYLOAD_KEYS: the Web UI decodes through it


async def run_stack(
    settings: Settings,
    *,
    demo: bool = False,
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
    on_ready: Callable[[Running], None] | None = None,
) -> int:
    """Start everything, supervise until ``stop`` (or SIGINT/SIGTERM), stop everything.

    Returns the exit code: 0 when asked to stop, 1 when a part died. A failed start raises
    ``DevStackError`` after stopping what had started.
    """
    stop = stop or asyncio.Event()
    if handle_signals:
        _stop_on_signals(stop)
    async with AsyncExitStack() as stack:
        running = await _start_unless_stopped(stack, settings, demo=demo, stop=stop)
        if running is None:
            code = 0
        else:
            (on_ready or (lambda r: _print_ready(settings, r)))(running)
            code = await _supervise(running, stop)
        log.info("dev_stopping")
    log.info("dev_stopped", exit_code=code)
    return code


async def _start_unless_stopped(
    stack: AsyncExitStack, settings: Settings, *, demo: bool, stop: asyncio.Event
) -> Running | None:
    """Start everything, or give up (``None``) as soon as ``stop`` is set."""
    starting = asyncio.create_task(_start(stack, settings, demo=demo))
    asked = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, asked}, return_when=asyncio.FIRST_COMPLETED)
    asked.cancel()
    if starting.done():
        return starting.result()
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    return None


async def _start(stack: AsyncExitStack, settings: Settings, *, demo: bool) -> Running:
    try:
        programs = load_programs(settings.programs_dir)
        dsn = await _start_postgres(stack, settings)
        await _prepare_database(dsn, programs)
        codec = await _start_codec_server(stack, settings)
        temporal = TemporalDevServer(settings, codec_endpoint=codec.url if codec else None)
        stack.push_async_callback(temporal.stop)
        client = await temporal.start()
        sink = await _start_sink(stack, settings)
        worker = _start_worker(stack, settings, dsn, client, temporal)
        await ensure_retention_schedule(client, settings)  # the daily sweep, in the UI
        await ensure_digest_schedule(client, settings)  # the office's weekly digest
        gateway = await start_gateway(stack, settings, dsn, client=client)
        log.info("gateway_ready", port=gateway.port)
        running = Running(
            dsn=dsn,
            client=client,
            temporal=temporal,
            sink=sink,
            worker=worker,
            gateway=gateway,
            codec=codec,
        )
        if demo:
            running.demo = await load_demo(settings, dsn, client, programs)
            _start_demo_people(stack, settings, dsn, client)
        return running
    except (CommandError, ProgramError) as err:
        raise DevStackError(str(err)) from None
    except (OSError, asyncpg.PostgresError) as err:
        raise DevStackError(f"start failed: {err.__class__.__name__}: {err}") from None


# -- the parts, in start order ---------------------------------------------------------------


async def _start_postgres(stack: AsyncExitStack, settings: Settings) -> str:
    """The embedded server (unless DATABASE_URL is set); its DSN goes to a file for the
    other ``tandem`` commands, removed again on stop."""
    if settings.database_url:
        return settings.database_url
    with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from starter.postgres import PostgresStartError, embedded_postgres
    try:
        dsn = await _enter_in_thread(stack, embedded_postgres(settings.home / "pgdata"))
    except PostgresStartError as err:
        raise DevStackError(str(err)) from None
    path = dsn_file(settings)
    stack.callback(path.unlink, missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(dsn + "\n")
    log.info("postgres_ready", embedded=True)
    return dsn


async def _prepare_database(dsn: str, programs: dict[str, Program]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        applied = await migrate(conn)
        await upsert_programs(conn, programs)
    finally:
        await conn.close()
    log.info("database_ready", migrations_applied=applied, programs=sorted(programs))


async def _start_codec_server(stack: AsyncExitStack, settings: Settings) -> CodecServer | None:
    """With encrypted payloads, the codec server the Web UI decodes them through; it answers
    the UI's own origins too, whatever TANDEM_TEMPORAL_UI_PORT says."""
    if not encrypts(settings):
        return None
    host, _ = devstack.split_address(settings.temporal_address)
    hosts = {f"[{host}]" if ":" in host else host, "127.0.0.1", "localhost"}
    ui = [f"http://{h}:{settings.temporal_ui_port}" for h in hosts]
    server = CodecServer(settings, extra_origins=ui)
    await server.start()
    stack.push_async_callback(server.stop)
    return server


async def _start_sink(stack: AsyncExitStack, settings: Settings) -> MailSink:
    sink = MailSink(settings.mail_dir, settings.smtp_host, settings.smtp_port)
    try:
        await sink.start()
    except OSError as err:
        if err.errno != errno.EADDRINUSE:
            raise
        raise DevStackError(
            f"port {settings.smtp_port} (mail sink) is in use:"
            " stop what uses it or set TANDEM_SMTP_PORT"
        ) from None
    stack.push_async_callback(sink.stop)
    log.info("mailsink_ready", port=sink.port)
    return sink


def _start_worker(
    stack: AsyncExitStack,
    settings: Settings,
    dsn: str,
    client: Client,
    temporal: TemporalDevServer,
) -> asyncio.Task[None]:
    worker_stop = asyncio.Event()
    task = asyncio.create_task(
        _worker_and_mailer(settings, dsn, client, worker_stop), name="worker"
    )

    async def stop_worker() -> None:
        """Let running activities finish; without a server there is nothing to wait for."""
        worker_stop.set()
        grace = WORKER_STOP_GRACE if temporal.returncode is None else 1.0
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            log.warning("worker_cancelled", after_seconds=grace)
            task.cancel()
            await asyncio.wait({task}, timeout=5.0)
        if task.done() and not task.cancelled():
            task.exception()  # reported by the supervisor already; retrieved here

    stack.push_async_callback(stop_worker)
    return task


async def _worker_and_mailer(
    settings: Settings, dsn: str, client: Client, stop: asyncio.Event
) -> None:
    """The worker, and the mailer in the same process if the workers hand mails over
    (``TANDEM_MAIL_DELIVERY=mailer``): either both run or neither."""
    from mailer import run_mailer
    from worker import run_worker

    if settings.mail_delivery != "mailer":
        await run_worker(settings, dsn, client, stop=stop)
        return
    async with asyncio.TaskGroup() as both:
        both.create_task(run_worker(settings, dsn, client, stop=stop))
        both.create_task(run_mailer(settings, dsn, stop=stop))


async def load_demo(
    settings: Settings, dsn: str, client: Client, programs: dict[str, Program]
) -> tuple[int, int]:
    """Import ``demo/mentors.csv`` and ``demo/mentees.csv`` and enrol every demo mentee.

    Idempotent: a restart with ``--demo`` changes nothing that is already there. Returns
    (demo mentees enrolled, tandems this call started)."""
    conn = await asyncpg.connect(dsn)
    try:
        mentors = await import_file(conn, "mentors", DEMO_DIR / "mentors.csv", programs)
        await import_file(conn, "mentees", DEMO_DIR / "mentees.csv", programs)
    finally:
        await conn.close()
    if mentors.changed:
        await wake_waiting_tandems(dsn, client)
    outcomes = await enroll_ids(client, dsn, demo_mentee_ids(programs), settings)
    started = sum(1 for o in outcomes if o.started)
    log.info("demo_loaded", mentees=len(outcomes), started=started)
    return len(outcomes), started


def _start_demo_people(stack: AsyncExitStack, settings: Settings, dsn: str, client: Client) -> None:
    """The demo people answer their mail, so the whole lifecycle runs by itself."""
    from starter.demo_people import DemoPeople

    task = asyncio.create_task(DemoPeople(settings.mail_dir, dsn, client).run())

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)


def demo_mentee_ids(programs: dict[str, Program]) -> list[str]:
    path = DEMO_DIR / "mentees.csv"
    rows, _ = validate("mentees", path.read_bytes(), programs)
    return [row.id for row in rows]


# -- running ---------------------------------------------------------------------------------


async def _supervise(running: Running, stop: asyncio.Event) -> int:
    """Wait for a stop request or for a part to die; 0 or 1 accordingly."""
    asked = asyncio.create_task(stop.wait())
    temporal_exit = asyncio.create_task(running.temporal.wait())
    watched: set[asyncio.Future[Any]] = {asked, temporal_exit, running.worker}
    if running.gateway.task is not None:
        watched.add(running.gateway.task)
    await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    asked.cancel()
    temporal_exit.cancel()
    if stop.is_set():
        return 0
    code = running.temporal.returncode
    if code is not None:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        err_console.print(
            f"error: the Temporal server {how}; see {running.temporal.log_path}",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    inbox = running.gateway.task
    if inbox is not None and inbox.done() and not running.worker.done():
        crash = None if inbox.cancelled() else inbox.exception()
        what = f"{crash.__class__.__name__}: {crash}" if crash else "it returned"
        err_console.print(f"error: the reply inbox stopped: {what}", highlight=False)
        return 1
    if running.worker.cancelled():  # temporalio cancels it on a fatal worker error
        reason = "it failed (see the worker's error above)"
    else:
        crash = running.worker.exception()
        reason = f"{crash.__class__.__name__}: {crash}" if crash else "it returned"
    err_console.print(f"error: the worker stopped: {reason}", highlight=False, soft_wrap=True)
    return 1


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def handle(sig: signal.Signals) -> None:
        if stop.is_set():
            log.info("dev_already_stopping", signal=sig.name)
            return
        log.info("dev_stop_requested", signal=sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handle, sig)


def _print_ready(settings: Settings, running: Running) -> None:
    host, port = devstack.split_address(settings.temporal_address)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Temporal UI", f"http://{host}:{settings.temporal_ui_port}")
    grid.add_row("Temporal", f"{host}:{port} (namespace {settings.temporal_namespace})")
    if running.codec is not None:
        grid.add_row(
            "Codec server",
            f"{running.codec.url}: payloads encrypted (key {running.codec.codec.key_id}),"
            " the UI decodes them here",
        )
    grid.add_row("PostgreSQL", _describe_database(settings))
    grid.add_row(
        "Mail", f"kept in {_shown(settings.mail_dir)} (port {running.sink.port}): tandem mail list"
    )
    grid.add_row("Worker", f"running on task queue {settings.task_queue}")
    grid.add_row(
        "Replies",
        f"SMTP gateway on {settings.gateway_host}:{running.gateway.port}:"
        " tandem mail reply ID TEXT",
    )
    if running.demo is not None:
        enrolled, started = running.demo
        grid.add_row("Demo", f"{enrolled} demo mentees enrolled ({started} new): tandem list")
    console.print()
    console.print("[bold green]tandem dev is up[/]")
    console.print(grid, highlight=False)
    console.print("Ctrl-C to stop.")


def _describe_database(settings: Settings) -> str:
    if not settings.database_url:
        return f"embedded, data under {_shown(settings.home / 'pgdata')}"
    url = urlsplit(settings.database_url)
    where = f"{url.hostname or 'local socket'}{f':{url.port}' if url.port else ''}{url.path}"
    return f"DATABASE_URL ({where})"


def _shown(path: Path) -> str:
    """A path as the operator would type it: relative to here when below here."""
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


async def _enter_in_thread(stack: AsyncExitStack, cm: AbstractContextManager[T]) -> T:
    """Enter a blocking context manager in a thread; exit it on the stack, in a thread too.

    A thread cannot be interrupted: if we are cancelled meanwhile, wait for it to finish
    and undo what it started."""
    entering = asyncio.ensure_future(asyncio.to_thread(cm.__enter__))
    try:
        value = await asyncio.shield(entering)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await entering
            await asyncio.to_thread(cm.__exit__, None, None, None)
        raise
    stack.push_async_callback(asyncio.to_thread, cm.__exit__, None, None, None)
    return value
