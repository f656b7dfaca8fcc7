"""``TandemWorkflow``: one long-running workflow per mentee, id ``tandem-<mentee_id>``.

It carries ids and status only; every side effect (Postgres, mail) is an activity.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.events import EventActivities
    from activities.mail import MailActivities
    from activities.matching import MatchingActivities
    from tandem.messages import MailRequest, MatchRequest, StatusEvent, TandemInput
    from tandem.models import FINAL_STATUSES, Role, TandemState, TandemStatus
    from workflows import search_attributes as sa

ACTIVITY_TIMEOUT = timedelta(seconds=60)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))


def workflow_id(mentee_id: str) -> str:
    return f"tandem-{mentee_id}"


@workflow.defn
class TandemWorkflow:
    @workflow.init
    def __init__(self, input: TandemInput) -> None:
        self._rules = input.rules
        self._state = input.state.model_copy(deep=True)
        self._mentors_changed = False

    @workflow.run
    async def run(self, input: TandemInput) -> TandemState:
        if self._state.enrolled_at is None:
            self._state.enrolled_at = workflow.now()
            await self._set_status(self._state.status, "enrolled")
        if self._state.status in (TandemStatus.MATCHING, TandemStatus.WAITING_FOR_MENTOR):
            await self._match_and_introduce()
        await workflow.wait_condition(lambda: self._state.status in FINAL_STATUSES)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    @workflow.query
    def state(self) -> TandemState:
        return self._state

    @workflow.signal
    def mentors_changed(self) -> None:
        """An import added mentors or seats: a waiting tandem looks again at once."""
        self._mentors_changed = True

    # -- matching ------------------------------------------------------------------------

    async def _match_and_introduce(self) -> None:
        s = self._state
        while True:
            self._mentors_changed = False
            result = await workflow.execute_activity_method(
                MatchingActivities.find_mentor,
                MatchRequest(
                    mentee_id=s.mentee_id,
                    program=s.program,
                    excluded_mentor_ids=s.excluded_mentor_ids,
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
            )
            if result.mentor_id is not None:
                break
            if s.status is not TandemStatus.WAITING_FOR_MENTOR:
                await self._set_status(TandemStatus.WAITING_FOR_MENTOR, "no_mentor_free")
            if not s.coordinator_told_no_mentor:
                await self._mail("no_mentor_coordinator", Role.COORDINATOR, f"r{s.rematches}")
                s.coordinator_told_no_mentor = True
            with contextlib.suppress(TimeoutError):  # timing out is the daily retry
                await workflow.wait_condition(
                    lambda: self._mentors_changed, timeout=self._rules.waiting_retry_every
                )
        s.mentor_id = result.mentor_id
        s.match_score = result.score
        s.match_reasons = result.reasons
        s.coordinator_told_no_mentor = False
        round_ = f"r{s.rematches}"
        await asyncio.gather(
            self._mail("introduction_mentee", Role.MENTEE, round_),
            self._mail("introduction_mentor", Role.MENTOR, round_),
        )
        await self._set_status(TandemStatus.INTRODUCED, "introduced")

    # -- effects -------------------------------------------------------------------------

    async def _mail(self, template: str, to: Role, round_: str) -> None:
        s = self._state
        key = f"{s.mentee_id}/{round_}/{template}/{to.value}"
        await workflow.execute_activity_method(
            MailActivities.send_mail,
            MailRequest(
                idempotency_key=key,
                template=template,
                to=to,
                mentee_id=s.mentee_id,
                mentor_id=s.mentor_id,
                program=s.program,
                phase=s.phase,
                request_id=key,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )

    async def _set_status(self, status: TandemStatus, kind: str) -> None:
        """Every change: search attributes, current details, event log and projection."""
        s = self._state
        s.status = status
        s.event_seq += 1
        s.updated_at = workflow.now()
        workflow.upsert_search_attributes(sa.updates(s, workflow.info().typed_search_attributes))
        workflow.set_current_details(self._details())
        await workflow.execute_activity_method(
            EventActivities.record_event,
            StatusEvent(seq=s.event_seq, at=workflow.now(), kind=kind, state=s),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )

    def _details(self) -> str:
        """What the UI shows on the workflow page: status at a glance, ids only."""
        s = self._state
        lines = [
            f"**{s.status.value}** · phase `{s.phase}` · programme `{s.program}`",
            f"mentor: `{s.mentor_id or '-'}` · rematches: {s.rematches}",
        ]
        if s.next_nudge_at:
            lines.append(f"next nudge: {s.next_nudge_at.isoformat(timespec='minutes')}")
        if s.last_contact_at:
            lines.append(f"last contact: {s.last_contact_at.isoformat(timespec='minutes')}")
        return "\n\n".join(lines)
