"""The daily retention sweep, started by the Temporal Schedule ``tandem-retention`` (visible
in the UI under Schedules): one activity that purges what is past its period and returns
counts. ``tandem retention`` creates or updates the schedule; ``--dry-run`` shows the counts."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.retention import RetentionActivities
    from tandem.retention import SweepResult

SCHEDULE_ID = "tandem-retention"
WORKFLOW_ID = "tandem-retention-sweep"


@workflow.defn
class RetentionSweepWorkflow:
    @workflow.run
    async def run(self) -> SweepResult:
        result = await workflow.execute_activity_method(
            RetentionActivities.sweep_retention,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=20),
        )
        workflow.set_current_details(
            f"swept: {result.mail_bodies} mail texts, {result.reply_verdicts} reply verdicts"
        )
        return result
