"""Tandem's own metrics, served with the Temporal SDK's on one Prometheus endpoint per process
(``TANDEM_METRICS_PORT``, for ``tandem worker`` and ``tandem gateway``): mails sent and
refused, replies decided by verdict and reason, the inbox's depth and the age of the oldest
unsent mail. Counts and ages only: no id, no address, no text is ever an attribute."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from temporalio.common import MetricMeter

#: Seconds between two samples of the inbox's depth and the outbox's oldest unsent mail.
SAMPLE_EVERY = 15.0


class _Instruments:
    def __init__(self, meter: MetricMeter) -> None:
        self.mails_sent = meter.create_counter("tandem_mails_sent", "mails the relay accepted")
        self.mails_refused = meter.create_counter(
            "tandem_mails_refused", "mails the relay refused for good (5xx)"
        )
        self.replies = meter.create_counter(
            "tandem_replies", "replies decided by the gateway, by verdict and reason"
        )
        self.inbox_depth = meter.create_gauge(
            "tandem_inbox_depth", "replies received and not decided yet"
        )
        self.outbox_unsent_age = meter.create_gauge_float(
            "tandem_outbox_unsent_age", "age of the oldest mail not sent yet", "s"
        )


_now = _Instruments(MetricMeter.noop)


def use(meter: MetricMeter) -> None:
    """Report to ``meter`` from now on (the process's Temporal runtime)."""
    global _now
    _now = _Instruments(meter)


def mail_sent() -> None:
    _now.mails_sent.add(1)


def mail_refused() -> None:
    _now.mails_refused.add(1)


def reply_decided(verdict: str, reason: str) -> None:
    _now.replies.add(1, {"verdict": verdict, "reason": reason})


async def sample_outbox(pool: asyncpg.Pool, stop: asyncio.Event) -> None:
    """Until ``stop``: the age of the oldest mail waiting to be sent (0 when none waits)."""
    while not stop.is_set():
        with contextlib.suppress(Exception):  # the database away: the next sample tells
            age = await pool.fetchval(
                "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM outbox"
                " WHERE sent_at IS NULL AND failed_at IS NULL"
            )
            _now.outbox_unsent_age.set(float(age))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)


async def sample_inbox(pool: asyncpg.Pool, stop: asyncio.Event) -> None:
    """Until ``stop``: how many received replies wait to be decided."""
    while not stop.is_set():
        with contextlib.suppress(Exception):
            _now.inbox_depth.set(int(await pool.fetchval("SELECT count(*) FROM inbound_mail")))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)
