"""Runs the Tandem worker: the workflow and its activities on one task queue."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities import metrics
from activities.db import create_pool
from activities.digest import DigestActivities
from activities.effects import EffectActivities
from activities.heartbeat import HeartbeatWhileRunning
from activities.mail import Outbox, Sender
from activities.matching import MatchingActivities
from activities.retention import RetentionActivities
from activities.scrub import ScrubFailures
from tandem.programs import ProgramCatalog
from tandem.retention import retention_policy
from tandem.settings import Settings
from workflows.digest import DigestWorkflow
from workflows.retention import RetentionSweepWorkflow
from workflows.tandem import TandemWorkflow

log = structlog.get_logger(__name__)
#: Longer than one SMTP send may take (``activities.smtp.SEND_TIMEOUT``); the compose file
#: gives the container more still (``stop_grace_period``) before it is killed.
GRACEFUL_SHUTDOWN = timedelta(seconds=30)


def workflow_runner() -> WorkflowRunner:
    """What the worker runs workflows on: no sandbox.

    The sandbox re-imports the workflow module for every run and keeps that copy with each
    cached workflow; measured with ``make bench`` (150 tandems, one worker), it cost 37 % of
    the worker's CPU on the enrol path and 125 KiB of memory per cached tandem (277 against
    152 KiB). What it guards against (I/O, clocks, randomness in workflow code) is checked
    instead where it costs nothing in production: the tests run every workflow in the
    sandbox (``sandboxed_runner``), and every stored history replays in it."""
    return UnsandboxedWorkflowRunner()


def sandboxed_runner() -> SandboxedWorkflowRunner:
    """The sandbox, strict but for our pure model libraries: the tests' workflows and the
    replay of stored histories run here, so a forbidden call in workflow code fails a test."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "pydantic", "pydantic_core", "email_validator", "idna", "yaml"
        )
    )


def build_worker(
    client: Client,
    settings: Settings,
    *,
    matching: MatchingActivities,
    effects: EffectActivities,
    retention: RetentionActivities | None = None,
    task_queue: str | None = None,
    runner: WorkflowRunner | None = None,
) -> Worker:
    """One place that lists what the worker runs (the tests build theirs here too, on the
    sandbox)."""
    swept = retention or RetentionActivities(effects.pool, retention_policy(settings))
    digests = DigestActivities(effects.pool, settings, effects.outbox)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[TandemWorkflow, RetentionSweepWorkflow, DigestWorkflow],
        workflow_runner=runner or workflow_runner(),
        max_concurrent_activities=settings.worker_activity_concurrency,
        # On shutdown (a deploy, Ctrl-C) the running transition's effects finish first.
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        # No name, address or mail text in any failure or log line of an activity.
        interceptors=[ScrubFailures(), HeartbeatWhileRunning()],
        activities=[
            matching.find_mentor,
            effects.carry_out,
            swept.sweep_retention,
            digests.send_digests,
        ],
    )


async def run_worker(
    settings: Settings,
    dsn: str,
    client: Client,
    *,
    stop: asyncio.Event,
    sender: Sender | None = None,
) -> None:
    """Serve until ``stop`` is set, then finish running activities and return."""
    from activities.smtp import SmtpSender

    # A connection for every activity that may run, one for the outbox metrics, one spare.
    pool = await create_pool(dsn, max_size=settings.worker_activity_concurrency + 2)
    relay = sender or SmtpSender(settings)
    try:
        programs = ProgramCatalog(settings.programs_dir)  # read on demand: new files work
        worker = build_worker(
            client,
            settings,
            matching=MatchingActivities(pool),
            effects=EffectActivities(pool, Outbox(pool, settings, relay, programs)),
        )
        async with worker:
            log.info("worker_started", task_queue=settings.task_queue)
            await metrics.sample_outbox(pool, stop)  # returns once stop is set
        log.info("worker_stopped")
    finally:
        if isinstance(relay, SmtpSender):
            await relay.close()  # QUIT on the relay sessions kept open
        await pool.close()


async def main() -> None:
    """``python worker.py`` / ``tandem worker``: connect and serve until SIGINT/SIGTERM."""
    from starter.common import CommandError, connect_temporal, database_url, stop_on_signals
    from tandem.logging import configure_logging
    from tandem.programs import ProgramError, load_programs
    from tandem.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    try:  # a broken programme file is refused now, not at some tandem's next mail
        load_programs(settings.programs_dir)
    except ProgramError as err:
        raise CommandError(str(err)) from None
    stop = stop_on_signals()
    client = await connect_temporal(settings, serve_metrics=True)
    await run_worker(settings, database_url(settings), client, stop=stop)


if __name__ == "__main__":
    asyncio.run(main())
