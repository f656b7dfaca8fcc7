"""A worker process for the benchmark: Tandem's, or a bare one on the same configuration.

    python -m tests.bench_worker tandem        # exactly what `tandem worker` runs
    python -m tests.bench_worker bare          # the bare shapes, activities doing nothing
    python -m tests.bench_worker bare-io       # the bare shapes, the least real I/O

Configured by the environment like ``tandem worker`` (``TANDEM_*``, ``DATABASE_URL``). The bare
worker uses the product's sandbox runner and graceful shutdown; its activities append one
byte per step to ``TANDEM_BENCH_MARKS``, which is how the benchmark sees them finish.
``--profile FILE`` samples where the process spends its time between two SIGUSR2
(``tests/bench_profile.py``); ``--memory FILE`` answers SIGUSR1 with tracemalloc snapshots.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import asyncpg
from temporalio import activity
from temporalio.worker import Worker

import worker as worker_module
from starter.common import connect_temporal, database_url, run, stop_on_signals
from tandem.settings import Settings, get_settings
from tests.bench_profile import MemorySnapshots, Sampler
from tests.bench_shapes import BARE_WORKFLOWS

#: Bench tables of the bare I/O shape (created by the benchmark in its database).
IO_SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_events (key text NOT NULL, kind text NOT NULL,
                                         at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS bench_seats (mentor_id text PRIMARY KEY, free int NOT NULL);
"""


class BareSteps:
    """The one activity of the bare shapes: ``bare_step(key, kind)``."""

    def __init__(self, io: bool, settings: Settings, pool: asyncpg.Pool | None) -> None:
        self._io = io
        self._settings = settings
        self._pool = pool
        marks = os.environ.get("TANDEM_BENCH_MARKS")
        self._marks = os.open(marks, os.O_WRONLY | os.O_APPEND | os.O_CREAT) if marks else None

    @activity.defn(name="bare_step")
    async def step(self, key: str, kind: str) -> None:
        if self._io:
            await self.do_io(key, kind)
        if self._marks is not None:
            os.write(self._marks, b".")

    async def do_io(self, key: str, kind: str) -> None:
        """The least real I/O a step of this kind stands for."""
        assert self._pool is not None
        if "mail" in kind:
            message = EmailMessage()
            message["From"] = "bench@tandem.invalid"
            message["To"] = f"{key.lower()}@bench.invalid"
            message["Subject"] = "Tandem bench"
            message.set_content("Hallo,\n\nwie läuft es?\n")
            await aiosmtplib.send(
                message, hostname=self._settings.smtp_host, port=self._settings.smtp_port
            )
        if "event" in kind:
            await self._pool.execute(
                "INSERT INTO bench_events (key, kind) VALUES ($1, $2)", key, kind
            )
        if kind == "seat":
            async with self._pool.acquire() as conn, conn.transaction():
                mentor = await conn.fetchval(
                    "SELECT mentor_id FROM bench_seats WHERE free > 0"
                    " ORDER BY free DESC, mentor_id LIMIT 1 FOR UPDATE SKIP LOCKED"
                )
                await conn.execute(
                    "UPDATE bench_seats SET free = free - 1 WHERE mentor_id = $1", mentor
                )


async def bare_worker(io: bool) -> None:
    """The bare shapes on the worker configuration Tandem's worker has."""
    settings = get_settings()
    stop = stop_on_signals()
    client = await connect_temporal(settings)
    pool = await worker_module.create_pool(database_url(settings)) if io else None
    steps = BareSteps(io, settings, pool)
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=BARE_WORKFLOWS,
        activities=[steps.step],
        workflow_runner=worker_module.workflow_runner(),
        graceful_shutdown_timeout=worker_module.GRACEFUL_SHUTDOWN,
    )
    try:
        async with worker:
            print(json.dumps({"event": "worker_started"}), flush=True)
            await stop.wait()
    finally:
        if pool is not None:
            await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["tandem", "bare", "bare-io"])
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--memory", type=Path)
    args = parser.parse_args()
    if args.profile:
        Sampler(args.profile).on_signal()
    if args.memory:
        MemorySnapshots(args.memory).install()
    if args.kind == "tandem":
        run(worker_module.main())
    else:
        run(bare_worker(io=args.kind == "bare-io"))
    sys.exit(0)


if __name__ == "__main__":
    main()
