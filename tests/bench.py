"""Benchmark: how fast enrolment → match → introduction runs on the real parts.

    make bench            (or: .venv/bin/python -m tests.bench --mentees 500)

Starts the Temporal dev server, embedded PostgreSQL, the SMTP sink and one worker in this
process, enrols N mentees and prints throughput and the worker's peak memory. Figures, not
assertions: a programme of 100,000 tandems scales by running more workers.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from pydantic import SecretStr
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.db import migrate
from starter.mailsink import MailSink
from starter.postgres import embedded_postgres
from starter.tandem_cmds import enroll_ids
from tandem.settings import Settings
from tests.support import BIN, mentee, mentor, put_people, running_worker
from workflows import search_attributes as sa


async def bench(mentees: int, mentors: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
    with embedded_postgres(home / "pg", delete=True) as dsn:
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=20)
        assert pool is not None
        async with pool.acquire() as conn:
            await migrate(conn)
        sink = MailSink(home / "mail", port=0)
        await sink.start()
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            dev_server_existing_path=str(BIN / "temporal"),
            search_attributes=sa.ALL,
        )
        settings = Settings(
            home=home,
            smtp_port=sink.port,
            task_queue=f"bench-{uuid.uuid4().hex[:6]}",
            reply_token_secret=SecretStr("bench"),
        )
        try:
            people = [mentee(f"S{i:06d}") for i in range(mentees)]
            await put_people(pool, [mentor(f"M{i:05d}", capacity=5) for i in range(mentors)])
            t0 = time.perf_counter()
            await put_people(pool, [], people)
            imported = time.perf_counter() - t0
            async with running_worker(env.client, settings, pool):
                t0 = time.perf_counter()
                await enroll_ids(env.client, dsn, [p.id for p in people], settings)
                enrolled = time.perf_counter() - t0
                while True:
                    async with pool.acquire() as conn:
                        done = await conn.fetchval(
                            "SELECT count(*) FROM tandems WHERE status <> 'matching'"
                        )
                    if done >= mentees:
                        break
                    await asyncio.sleep(0.2)
                total = time.perf_counter() - t0
            mails = len(sink.messages())
        finally:
            await env.shutdown()
            await sink.stop()
            await pool.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"mentees imported:          {mentees} in {imported:.2f}s")
    print(f"enrol calls:               {mentees / enrolled:.0f} starts/s")
    print(f"enrol -> matched/waiting:  {mentees / total:.1f} tandems/s ({total:.1f}s)")
    print(f"mails through the outbox:  {mails} ({mails / total:.1f}/s)")
    print(f"peak memory of the process (worker, sink, client): {peak_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mentees", type=int, default=300)
    parser.add_argument("--mentors", type=int, default=80)
    args = parser.parse_args()
    asyncio.run(bench(args.mentees, args.mentors))


if __name__ == "__main__":
    main()
