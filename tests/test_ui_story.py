"""The Temporal UI tells a tandem's story on every run: the first run's static summary, and
on a continued run (no static summary: the SDK sets one only at start) the same line at the
top of the current details, with the rhythm in words and no name or address."""

from __future__ import annotations

import asyncpg
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from starter.mailsink import MailSink
from starter.tandem_cmds import enroll_ids
from tandem.models import TandemStatus
from tandem.settings import Settings
from tests.support import eventually, mentee, mentor, put_people, running_worker, uid, wait_status
from workflows.client import TandemClient
from workflows.ids import workflow_id


async def _details(client: Client, mentee_id: str) -> str:
    meta = await client.get_workflow_handle(workflow_id(mentee_id)).query(
        "__temporal_workflow_metadata"
    )
    return str(meta.current_details)


async def test_every_run_shows_what_the_tandem_is_and_since_when(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
) -> None:
    the_mentee, the_mentor = mentee(uid("S")), mentor(uid("M"))
    await put_people(db, [the_mentor], [the_mentee])
    client = dev_env.client
    async with running_worker(client, settings, db):
        await enroll_ids(client, db_dsn, [the_mentee.id], settings)
        await wait_status(client, the_mentee.id, TandemStatus.INTRODUCED)
        first = await client.get_workflow_handle(workflow_id(the_mentee.id)).describe()
        assert await first.static_summary() == (
            f"Tandem of mentee {the_mentee.id} ({the_mentee.program})"
        )
        # Any continue-as-new (here: an erasure of someone not in this tandem).
        await TandemClient(client, settings.task_queue).forget(the_mentee.id, "M-unrelated")

        async def run_id() -> str:
            return (await client.get_workflow_handle(workflow_id(the_mentee.id)).describe()).run_id

        await eventually(run_id, lambda r: r != first.run_id, timeout=30)
        details = await eventually(
            lambda: _details(client, the_mentee.id), lambda d: d.startswith("Tandem"), timeout=30
        )
    head = details.split("\n\n")[0]
    assert head.startswith(f"Tandem of mentee `{the_mentee.id}` ({the_mentee.program}), no. 1")
    assert "check-ins every 91 days" in details and "0.0" not in details
    for secret in (the_mentee.first_name, the_mentee.last_name, str(the_mentee.email)):
        assert secret not in details
