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
import time

from starter.tandem_cmds import enroll_ids
from tests.bench_support import bench_stack
from tests.support import mentee, mentor, put_people, running_worker


async def bench(mentees: int, mentors: int) -> None:
    async with bench_stack() as stack:
        env, pool, dsn, sink, settings = (
            stack.env,
            stack.pool,
            stack.dsn,
            stack.sink,
            stack.settings,
        )
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
