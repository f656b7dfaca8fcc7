"""The coordinator's digest, started weekly by the Temporal Schedule ``tandem-digest``
(visible in the UI under Schedules): one activity builds and sends each programme's digest
that is due (weekly, or monthly in a month's first week, per programme file) and returns
counts; the names stay in the activity. ``tandem digest`` creates or updates the schedule,
``tandem digest --show`` prints what the office would get now."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.digest import DigestActivities, DigestSent

SCHEDULE_ID = "tandem-digest"
WORKFLOW_ID = "tandem-digest-run"


@workflow.defn
class DigestWorkflow:
    @workflow.run
    async def run(self) -> list[DigestSent]:
        sent: list[DigestSent] = await workflow.execute_activity_method(
            DigestActivities.send_digests,
            workflow.now(),
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=20),
            summary="build and mail the digests",
        )
        workflow.set_current_details(
            "\n\n".join(
                f"`{d.program}` {d.period}: {d.lines} open item(s), "
                + ("mailed" if d.sent else "nothing to mail")
                for d in sent
            )
            or "no programme has a digest due"
        )
        return sent
