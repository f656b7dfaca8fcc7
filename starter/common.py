"""What every operator command shares: one-line errors, the database and Temporal connections."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from tandem.settings import Settings, get_settings

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

DSN_FILE = "postgres.dsn"


class CommandError(Exception):
    """A refusal for the operator: printed as one line, exit code 1."""


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"error: {message}", highlight=False, soft_wrap=True)
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


async def connect_temporal(settings: Settings | None = None) -> Client:
    settings = settings or get_settings()
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
        )
    except RuntimeError as err:
        raise CommandError(
            f"cannot reach Temporal at {settings.temporal_address}: start `tandem dev` first"
        ) from err
