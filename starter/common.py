"""What every operator command shares: one-line errors, the database and Temporal connections."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError

from tandem.settings import Settings, get_settings
from workflows.codec import PayloadKeyError, data_converter

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

DSN_FILE = "postgres.dsn"


class CommandError(Exception):
    """A refusal for the operator: printed as one line, exit code 1."""


def fail(message: str, code: int = 1) -> NoReturn:
    """Each line of ``message`` as an ``error:`` line (a file with several problems names
    each on its own line), then exit."""
    for line in message.splitlines() or [""]:
        err_console.print(f"error: {line}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; known refusals become one line on stderr."""
    try:
        return asyncio.run(coro)
    except CommandError as err:
        fail(str(err))
    except RPCError as err:
        fail(f"Temporal refused: {err.message}")
    except (TimeoutError, OSError) as err:
        fail(f"cannot reach a service: {err.__class__.__name__}: {err}")


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM: a service's cue to finish what it began and leave."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def dsn_file(settings: Settings) -> Path:
    return settings.home / DSN_FILE


def database_url(settings: Settings | None = None) -> str:
    """``DATABASE_URL``/``TANDEM_DATABASE_URL``, else the embedded server of ``tandem dev``."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    path = dsn_file(settings)
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    raise CommandError("no database: start `tandem dev` first, or set DATABASE_URL")


def temporal_connect_config(settings: Settings) -> dict[str, Any]:
    """How to reach Temporal: ``TANDEM_TEMPORAL_ADDRESS`` / ``_NAMESPACE`` alone, or a profile
    of Temporal's config file (``TANDEM_TEMPORAL_PROFILE``, ``TANDEM_TEMPORAL_CONFIG_FILE``;
    ``TEMPORAL_*`` variables override it as the SDK defines) with TLS and API key."""
    plain: dict[str, Any] = {
        "target_host": settings.temporal_address,
        "namespace": settings.temporal_namespace,
    }
    if settings.temporal_profile is None and settings.temporal_config_file is None:
        return plain
    source = settings.temporal_config_file
    name = settings.temporal_profile or "default"
    if source is not None and not source.is_file():
        raise CommandError(f"no Temporal config file at {source}")
    try:
        profile = ClientConfigProfile.load(settings.temporal_profile, config_source=source)
        config: dict[str, Any] = dict(profile.to_client_connect_config())
    except Exception as err:  # the SDK's ConfigError; its text may quote the file: not shown
        why = "not found" if "not found" in str(err) else f"unreadable ({type(err).__name__})"
        raise CommandError(f"Temporal profile {name}: {why}") from None
    for setting, key in (("temporal_address", "target_host"), ("temporal_namespace", "namespace")):
        if setting in settings.model_fields_set or not config.get(key):
            config[key] = plain[key]
    return config


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime that serves Prometheus metrics on ``TANDEM_METRICS_PORT`` (and
    carries Tandem's own, ``activities.metrics``), or None when no port is set."""
    if settings.metrics_port is None:
        return None
    from activities import metrics

    bind = f"{settings.metrics_host}:{settings.metrics_port}"
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))
    metrics.use(runtime.metric_meter)
    return runtime


async def connect_temporal(
    settings: Settings | None = None, *, serve_metrics: bool = False
) -> Client:
    """A client; with ``serve_metrics`` (a worker, a gateway) on a runtime serving metrics."""
    settings = settings or get_settings()
    config = temporal_connect_config(settings)
    try:
        converter = data_converter(settings)
    except PayloadKeyError as err:
        raise CommandError(str(err)) from None
    runtime = metrics_runtime(settings) if serve_metrics else None
    try:
        return await Client.connect(**config, data_converter=converter, runtime=runtime)
    except RuntimeError as err:
        fix = (
            "start `tandem dev` first"
            if settings.temporal_profile is None and settings.temporal_config_file is None
            else "check the profile's address, TLS and API key"
        )
        raise CommandError(f"cannot reach Temporal at {config['target_host']}: {fix}") from err
