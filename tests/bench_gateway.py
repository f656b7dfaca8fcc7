"""Benchmark of the reply gateway on loopback: replies/second through SMTP, and the latency
from "SMTP accepted (stored)" to "answerer called" (p50/p95).

    .venv/bin/python -m tests.bench_gateway [--count 500] [--concurrency 16]

Real parts: PostgreSQL (embedded, or DATABASE_URL), the SMTP gateway with its durable inbox,
the pipeline, and an SMTP sink for the confirmation mails. Only the workflow is a fake that
records when it is called. Bounded in count and time; talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import aiosmtplib
import asyncpg
from pydantic import SecretStr

from activities.db import create_pool, migrate
from activities.smtp import SmtpSender
from replies.pipeline import answer_id_for
from replies.service import ReplyGateway
from starter.mailsink import MailSink
from tandem.answers import RequestKind
from tandem.logging import configure_logging
from tandem.models import Role
from tandem.settings import Settings
from tests.reply_support import FakeAnswerer, FakeSender, mint_token, put_tandem, reply_mail

TIME_LIMIT = 300.0
#: A reply's envelope: sender, recipient, the raw mail.
Envelope = tuple[str, str, bytes]
_MID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from starter.postgres import embedded_postgres

    data = Path(tempfile.mkdtemp(prefix="tandem-bench-pg-")) / "data"
    try:
        with embedded_postgres(data, delete=True) as dsn:
            yield dsn
    finally:
        shutil.rmtree(data.parent, ignore_errors=True)


async def bench(server_dsn: str, count: int, concurrency: int, fake_relay: bool) -> None:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base, _, query = server_dsn.partition("?")
    dsn = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    home = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
    try:
        conn = await asyncpg.connect(dsn)
        await migrate(conn)
        await conn.close()
        pool = await create_pool(dsn, max_size=20)
        try:
            await run(pool, home, count, concurrency, fake_relay)
        finally:
            await pool.close()
    finally:
        admin = await asyncpg.connect(server_dsn)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
        shutil.rmtree(home, ignore_errors=True)


async def run(
    pool: asyncpg.Pool, home: Path, count: int, concurrency: int, fake_relay: bool
) -> None:
    sink = MailSink(home / "mail", port=0)
    await sink.start()
    settings = Settings(home=home, smtp_port=sink.port, reply_token_secret=SecretStr("bench"))
    called: dict[str, float] = {}
    answerer = FakeAnswerer(on_call=lambda _m, a: called.__setitem__(a.answer_id, time.monotonic()))
    relay = FakeSender() if fake_relay else SmtpSender(settings)
    gateway = ReplyGateway(settings, pool, answerer, relay, port=0)

    stored: dict[str, float] = {}
    store = gateway.inbox.store

    async def timed_store(raw: bytes, **kw: object) -> int:
        inbound_id = await store(raw, **kw)  # type: ignore[arg-type]
        found = _MID.search(raw)
        if found:
            stored[answer_id_for(found.group(1).decode())] = time.monotonic()
        return inbound_id

    gateway.inbox.store = timed_store  # type: ignore[method-assign]

    print(f"preparing {count} replies (tokens, people) …", flush=True)
    tandems = [await put_tandem(pool) for _ in range(max(1, count // 20))]
    mails = []
    for i in range(count):
        tandem = tandems[i % len(tandems)]
        role = Role.MENTEE if i % 2 else Role.MENTOR
        token = await mint_token(pool, settings, tandem, role, RequestKind.NUDGE, number=i)
        text = ("Ja, wir haben uns am 3.5. getroffen.", "später in 3 Wochen", "Hilfe")[i % 3]
        mails.append(reply_mail(settings, token, sender=tandem.email(role), text=text))

    await gateway.start()
    envelopes = [(tandem_sender(m), str(m["To"]), bytes(m)) for m in mails]
    burst, paced = envelopes[: count - count // 5], envelopes[count - count // 5 :]
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(1, mp_context=ctx) as pool_exec:
            # Phase 1, a burst: how many replies per second the gateway takes and decides.
            start, sent = await loop.run_in_executor(
                pool_exec, send_all, (gateway.port,), burst, concurrency, 0.0
            )
            await _until(lambda: len(called) >= len(burst))
            done = time.monotonic()
            burst_latencies = _latencies(called, stored)
            # Phase 2, paced well below capacity: the latency of one reply on its own.
            called.clear()
            stored.clear()
            await loop.run_in_executor(pool_exec, send_all, (gateway.port,), paced, 4, 20.0)
            await _until(lambda: len(called) >= len(paced))
            paced_latencies = _latencies(called, stored)
    finally:
        await gateway.stop()
        await sink.stop()

    print(
        f"replies:                  {len(burst)} as one burst over {concurrency} SMTP"
        f" connections, then {len(paced)} at 20/s"
    )
    print(f"SMTP accepted (stored):   {len(burst) / (sent - start):8.1f} replies/s")
    print(f"end to end (answered):    {len(burst) / (done - start):8.1f} replies/s")
    for label, values in (("burst", burst_latencies), ("20/s", paced_latencies)):
        if values:
            p50 = statistics.median(values)
            p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
            print(f"accept -> answerer ({label:5}) p50 {p50:8.1f} ms   p95 {p95:8.1f} ms")
    confirmations = len(relay.sent) if isinstance(relay, FakeSender) else len(sink.messages())
    print(f"confirmations sent:       {confirmations}")


def tandem_sender(msg: object) -> str:
    return str(msg["From"])  # type: ignore[index]


def _latencies(called: dict[str, float], stored: dict[str, float]) -> list[float]:
    return sorted((called[k] - stored[k]) * 1000 for k in called if k in stored)


async def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIME_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the gateway did not decide every reply in time")
        await asyncio.sleep(0.01)


def send_all(
    ports: tuple[int, ...], envelopes: list[Envelope], concurrency: int, rate: float
) -> tuple[float, float]:
    """In a separate process, as the mail servers of the world would be: send every mail
    (at ``rate`` per second when > 0) over ``concurrency`` connections, spread over the
    gateways' ``ports``; (start, end) on the shared monotonic clock."""
    return asyncio.run(_send_all(ports, envelopes, concurrency, rate))


async def _send_all(
    ports: tuple[int, ...], envelopes: list[Envelope], concurrency: int, rate: float
) -> tuple[float, float]:
    queue: asyncio.Queue[Envelope] = asyncio.Queue()
    for envelope in envelopes:
        queue.put_nowait(envelope)
    start = time.monotonic()

    async def client(port: int) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await smtp.connect()
        try:
            while True:
                try:
                    sender, to, raw = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if rate > 0:
                    index = len(envelopes) - queue.qsize() - 1
                    await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
                await smtp.sendmail(sender, [to], raw)
        finally:
            with contextlib.suppress(Exception):
                await smtp.quit()

    await asyncio.wait_for(
        asyncio.gather(*(client(ports[i % len(ports)]) for i in range(concurrency))),
        timeout=TIME_LIMIT,
    )
    return start, time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--fake-relay",
        action="store_true",
        help="Confirmations to an in-memory relay instead of the SMTP sink (which fsyncs).",
    )
    args = parser.parse_args()
    configure_logging("console", "warning")  # per-reply info lines would be the bottleneck
    with postgres() as dsn:
        count, concurrency = min(args.count, 20_000), min(args.concurrency, 200)
        asyncio.run(bench(dsn, count, concurrency, args.fake_relay))


if __name__ == "__main__":
    main()
