"""``tandem dev``: refusals before anything starts, the real Temporal dev server, supervision."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import WorkflowExecutionStatus

from starter import devstack
from starter.dev_cmd import Running, run_stack
from starter.devstack import (
    SEARCH_ATTRIBUTES,
    DevStackError,
    TemporalDevServer,
    check_ports,
    single_instance,
)
from tandem.settings import PROJECT_ROOT, Settings
from tests.support import free_port


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def dev_settings(home: Path, **kw: object) -> Settings:
    values: dict[str, object] = {
        "home": home,
        "temporal_address": f"127.0.0.1:{free_port()}",
        "temporal_ui_port": free_port(),
        "smtp_port": free_port(),
        "gateway_port": free_port(),
    }
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- refusals ---------------------------------------------------------------------------------


def test_free_ports_pass(tmp_path: Path) -> None:
    check_ports(dev_settings(tmp_path))


def test_temporal_port_in_use_is_one_clear_line(tmp_path: Path, listening: int) -> None:
    settings = dev_settings(tmp_path, temporal_address=f"127.0.0.1:{listening}")
    with pytest.raises(DevStackError) as err:
        check_ports(settings)
    assert str(err.value) == (
        f"port {listening} (Temporal) is in use: stop what uses it or set TANDEM_TEMPORAL_ADDRESS"
    )


def test_ui_and_mail_ports_name_their_settings(tmp_path: Path, listening: int) -> None:
    with pytest.raises(DevStackError, match=r"\(Temporal UI\) is in use.*TANDEM_TEMPORAL_UI_PORT"):
        check_ports(dev_settings(tmp_path, temporal_ui_port=listening))
    with pytest.raises(DevStackError, match=r"\(mail sink\) is in use.*TANDEM_SMTP_PORT"):
        check_ports(dev_settings(tmp_path, smtp_port=listening))
    with pytest.raises(DevStackError, match=r"\(reply gateway\) is in use.*TANDEM_GATEWAY_PORT"):
        check_ports(dev_settings(tmp_path, gateway_port=listening))


def test_second_instance_is_refused(tmp_path: Path) -> None:
    with (
        single_instance(tmp_path),
        pytest.raises(DevStackError) as err,
        single_instance(tmp_path),
    ):
        pytest.fail("two instances held the lock")
    assert str(err.value) == f"tandem dev is already running (pid {os.getpid()})"
    with single_instance(tmp_path):  # released again
        pass


def _tandem_dev(home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "starter.cli", "dev"],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "TANDEM_HOME": str(home),
            # Free ports unless the test says otherwise: a developer's own `tandem dev` may run.
            "TANDEM_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "TANDEM_TEMPORAL_UI_PORT": str(free_port()),
            "TANDEM_SMTP_PORT": str(free_port()),
            "TANDEM_GATEWAY_PORT": str(free_port()),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_refuses_a_second_instance_and_starts_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with single_instance(home):
        result = _tandem_dev(home)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: tandem dev is already running (pid {os.getpid()})"
    assert sorted(p.name for p in home.iterdir()) == ["dev.lock"]


def test_cli_refuses_a_busy_port_and_starts_nothing(tmp_path: Path, listening: int) -> None:
    home = tmp_path / "home"
    result = _tandem_dev(home, TANDEM_TEMPORAL_ADDRESS=f"127.0.0.1:{listening}")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: port {listening} (Temporal) is in use:"
        " stop what uses it or set TANDEM_TEMPORAL_ADDRESS"
    )
    assert sorted(p.name for p in home.iterdir()) == ["dev.lock"]


# -- the Temporal dev server ------------------------------------------------------------------


async def test_temporal_dev_server_registers_attributes_and_restarts(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path / "home")
    pids = []
    for round_ in (1, 2):
        server = TemporalDevServer(settings)
        client = await server.start()
        assert server.pid is not None
        pids.append(server.pid)
        try:
            listed = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=settings.temporal_namespace)
            )
            for name, kind in SEARCH_ATTRIBUTES.items():
                assert IndexedValueType.Name(listed.custom_attributes[name]) == (
                    "INDEXED_VALUE_TYPE_" + kind.upper()
                )
            handle = client.get_workflow_handle("devstack-persistence")
            if round_ == 1:  # no worker: it just waits, and must still be there after a restart
                await client.start_workflow("Nothing", id=handle.id, task_queue="nobody")
            assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        finally:
            await server.stop()
        assert server.returncode is not None
        assert gone(pids[-1])
    assert pids[0] != pids[1]
    assert (settings.home / "temporal.db").is_file()
    assert not (settings.home / "temporal.pid").exists()


async def test_temporal_exiting_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    server = TemporalDevServer(dev_settings(tmp_path), binary="/bin/false")
    with pytest.raises(DevStackError, match=r"Temporal exited while starting \(exit code 1\)"):
        await server.start()
    assert server.returncode == 1


def test_a_leftover_server_of_a_killed_run_is_stopped(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    db = str(home.resolve() / devstack.TEMPORAL_DB)
    # Any process whose command line looks like our dev server on our database file.
    fake = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "start-dev", db],
        start_new_session=True,
    )
    try:
        # Right after exec the kernel may still show an empty command line: wait for it.
        cmdline = Path(f"/proc/{fake.pid}/cmdline")
        deadline = time.monotonic() + 10
        while b"start-dev" not in cmdline.read_bytes():
            assert time.monotonic() < deadline, "the fake server never showed its command line"
            time.sleep(0.01)
        (home / devstack.TEMPORAL_PID).write_text(f"{fake.pid}\n")
        assert devstack.stop_leftover_temporal(home, timeout=10)
        assert fake.wait(timeout=10) == -signal.SIGTERM
        assert not (home / devstack.TEMPORAL_PID).exists()
    finally:
        fake.kill()
        fake.wait()


def test_an_unrelated_process_is_never_stopped(tmp_path: Path) -> None:
    (tmp_path / devstack.TEMPORAL_PID).write_text(f"{os.getpid()}\n")
    assert not devstack.stop_leftover_temporal(tmp_path)
    assert not (tmp_path / devstack.TEMPORAL_PID).exists()


# -- the whole stack, supervised ----------------------------------------------------------------


async def run(
    settings: Settings, on_ready: Callable[[Running, asyncio.Event], None]
) -> tuple[int, Running]:
    """The stack as ``tandem dev`` runs it (no signal handlers), ``on_ready`` once it is up."""
    seen: list[Running] = []
    stop = asyncio.Event()

    def ready(running: Running) -> None:
        seen.append(running)
        on_ready(running, stop)

    code = await asyncio.wait_for(
        run_stack(settings, stop=stop, handle_signals=False, on_ready=ready), timeout=120
    )
    return code, seen[0]


async def test_stack_stops_cleanly_when_asked_and_exits_1_when_temporal_dies(
    tmp_path: Path, db_dsn: str
) -> None:
    settings = dev_settings(tmp_path / "home", database_url=db_dsn)

    code, running = await run(settings, lambda _running, stop: stop.set())
    assert code == 0
    assert running.temporal.returncode is not None and running.worker.done()
    assert not devstack.port_in_use("127.0.0.1", running.sink.port)
    assert not devstack.port_in_use("127.0.0.1", running.gateway.port)
    assert running.gateway.port == settings.gateway_port
    assert not (settings.home / "postgres.dsn").exists()  # DATABASE_URL given: never written

    def kill_temporal(running: Running, _stop: asyncio.Event) -> None:
        assert running.temporal.pid is not None
        os.kill(running.temporal.pid, signal.SIGKILL)

    code, running = await run(settings, kill_temporal)
    assert code == 1
    assert running.temporal.returncode == -signal.SIGKILL
    assert running.worker.done()
    assert not devstack.port_in_use("127.0.0.1", running.sink.port)


async def test_a_crashing_worker_stops_the_stack_with_one_line(
    tmp_path: Path, db_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import worker

    async def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("worker broke")

    monkeypatch.setattr(worker, "run_worker", crash)
    settings = dev_settings(tmp_path / "home", database_url=db_dsn)
    code, running = await run(settings, lambda _running, _stop: None)
    assert code == 1
    assert "error: the worker stopped: RuntimeError: worker broke" in capsys.readouterr().err
    assert running.temporal.returncode is not None
    assert running.temporal.pid is not None and gone(running.temporal.pid)
