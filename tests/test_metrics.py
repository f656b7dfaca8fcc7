"""``TANDEM_METRICS_PORT``: ``tandem worker`` and ``tandem gateway`` each serve Prometheus
metrics, the Temporal SDK's and Tandem's own (mails sent, replies decided by verdict and
reason, inbox depth, oldest unsent mail). Scraped from both processes after a real tandem was
introduced and its mentee replied; no address or id appears in any metric."""

from __future__ import annotations

import asyncio
import os
import re
import urllib.request
from pathlib import Path

import aiosmtplib
import asyncpg
from temporalio.testing import WorkflowEnvironment

from starter.mail_cmd import compose_reply
from starter.mailsink import MailSink
from starter.tandem_cmds import start_tandem
from tandem.settings import Settings
from tests.support import eventually, free_port, mails_to, mentee, mentor, put_people, uid
from tests.test_mailer import spawned


async def scrape(port: int) -> str:
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    try:
        return await asyncio.to_thread(get)
    except OSError:
        return ""  # not listening yet


def value(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    total = 0.0
    for m in re.finditer(rf"^{name}(?:\{{([^}}]*)\}})? ([0-9.eE+-]+)$", text, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


async def test_worker_and_gateway_serve_the_sdks_and_tandems_metrics(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
    tmp_path: Path,
) -> None:
    the_mentee, the_mentor = mentee(uid("S")), mentor(uid("M"))
    await put_people(db, [the_mentor], [the_mentee])
    worker_port, gateway_metrics, gateway_port = free_port(), free_port(), free_port()
    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")},
        "DATABASE_URL": db_dsn,
        "TANDEM_HOME": str(settings.home),
        "TANDEM_PROGRAMS_DIR": str(settings.programs_dir),
        "TANDEM_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TANDEM_TASK_QUEUE": settings.task_queue,
        "TANDEM_SMTP_PORT": str(sink.port),
        "TANDEM_REPLY_TOKEN_SECRET": settings.reply_token_secret.get_secret_value(),
        "TANDEM_GATEWAY_PORT": str(gateway_port),
    }
    async with (
        spawned("worker", {**base, "TANDEM_METRICS_PORT": str(worker_port)}, tmp_path / "w.log"),
        spawned(
            "gateway", {**base, "TANDEM_METRICS_PORT": str(gateway_metrics)}, tmp_path / "g.log"
        ),
    ):
        await start_tandem(dev_env.client, the_mentee, settings)
        [introduction] = await mails_to(sink, the_mentee.email, timeout=60)
        await mails_to(sink, the_mentor.email, timeout=60)

        async def worker_metrics() -> str:
            return await scrape(worker_port)

        from_worker = await eventually(
            worker_metrics, lambda t: value(t, "tandem_mails_sent") >= 2, timeout=60
        )
        assert re.search(r"^temporal_\w+", from_worker, re.M), "the SDK's own metrics"
        assert "tandem_outbox_unsent_age" in from_worker

        reply = compose_reply(introduction, "Hallo, ich freue mich auf das Treffen!")
        await aiosmtplib.send(reply, hostname="127.0.0.1", port=gateway_port)

        async def from_gateway() -> str:
            return await scrape(gateway_metrics)

        gateway_text = await eventually(
            from_gateway, lambda t: value(t, "tandem_replies") >= 1, timeout=60
        )
        assert re.search(r'^tandem_replies\{[^}]*verdict="\w+"', gateway_text, re.M)
        assert "tandem_inbox_depth" in gateway_text
    for text in (from_worker, gateway_text):
        for secret in (the_mentee.email, the_mentor.email, the_mentee.id, the_mentee.last_name):
            assert secret not in text
