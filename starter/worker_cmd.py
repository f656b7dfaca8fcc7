"""``tandem worker``: run a worker against an existing Temporal, Postgres and SMTP relay."""

from __future__ import annotations

import worker as worker_module
from starter.common import run


def worker() -> None:
    """Run a worker (scale out by starting more). Stops cleanly on Ctrl-C."""
    run(worker_module.main())
