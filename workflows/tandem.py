"""``TandemWorkflow``: one long-running workflow per mentee, id ``tandem-<mentee_id>``.

A thin interpreter of the pure lifecycle in ``tandem/lifecycle``: every transition (the timer
loop, each update, the signal) runs under one lock, asks the core for the next state and its
effects, and carries the effects out in order. The workflow holds ids and status only. It
continues as new at each phase change and whenever the run grows long.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.effects import EffectActivities
    from activities.matching import MatchingActivities
    from tandem.answers import Answer, AnswerResult
    from tandem.lifecycle import (
        AdvancePhase,
        AnswerGiven,
        ChangeCadence,
        Effect,
        EndTandem,
        Enrolled,
        Event,
        FindMentor,
        MatchFound,
        MentorsChanged,
        PauseTandem,
        Refused,
        Rematch,
        ResumeTandem,
        Tick,
        Transition,
        decide,
        next_deadline,
    )
    from tandem.lifecycle.effects import EffectBatch, TandemRef
    from tandem.lifecycle.events import TandemInput
    from tandem.messages import (
        AdvanceRequest,
        CadenceRequest,
        EndRequest,
        OperatorResult,
        PauseRequest,
        RematchRequest,
    )
    from tandem.models import FINAL_STATUSES, TandemState
    from workflows import search_attributes as sa
    from workflows.ids import workflow_id

__all__ = ["TandemWorkflow", "workflow_id"]

ACTIVITY_TIMEOUT = timedelta(seconds=60)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))
#: A run continues as new past this many history events (or updates), long before the limits.
HISTORY_BUDGET = 2_000
UPDATE_BUDGET = 1_000
#: Items fired in one go at most (a tandem woken after a long outage catches up in steps).
MAX_FIRINGS = 50


def refuse(message: str) -> ApplicationError:
    """A refusal the caller sees at once; nothing is recorded."""
    return ApplicationError(message, type="Refused", non_retryable=True)


@workflow.defn
class TandemWorkflow:
    @workflow.init
    def __init__(self, input: TandemInput) -> None:
        self._rules = input.rules
        self._state = input.state
        self._lock = asyncio.Lock()
        self._changed = False
        self._mentors_changed = False
        self._run_phase = input.state.phase
        self._updates = 0

    # -- the run method owns time ---------------------------------------------------------

    @workflow.run
    async def run(self, input: TandemInput) -> TandemState:
        if self._state.enrolled_at is None:
            await self._transition(Enrolled())
        else:
            self._show()
        while self._state.status not in FINAL_STATUSES:
            await self._fire_due()
            if self._state.status in FINAL_STATUSES or self._time_to_continue():
                break
            await self._sleep()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._state.status not in FINAL_STATUSES:
            workflow.continue_as_new(TandemInput(rules=self._rules, state=self._state))
        return self._state

    def _time_to_continue(self) -> bool:
        info = workflow.info()
        return (
            self._state.phase != self._run_phase
            or info.is_continue_as_new_suggested()
            or info.get_current_history_length() > HISTORY_BUDGET
            or self._updates > UPDATE_BUDGET
        )

    async def _fire_due(self) -> None:
        async with self._lock:
            for _ in range(MAX_FIRINGS):
                deadline = next_deadline(self._state, self._rules)
                if deadline is None or deadline > workflow.now():
                    return
                await self._apply(Tick())

    async def _sleep(self) -> None:
        """Until the next deadline, or until a handler or the signal changed something."""
        deadline = next_deadline(self._state, self._rules)
        self._changed = False

        def woken() -> bool:
            return self._changed or self._mentors_changed

        if deadline is None:
            await workflow.wait_condition(woken)
        elif (timeout := deadline - workflow.now()) > timedelta(0):
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(woken, timeout=timeout, timeout_summary="next due")
        if self._mentors_changed:
            self._mentors_changed = False
            await self._transition(MentorsChanged())

    # -- transitions ----------------------------------------------------------------------

    async def _transition(self, event: Event) -> Transition:
        async with self._lock:
            return await self._apply(event)

    async def _apply(self, event: Event) -> Transition:
        """One step of the core, then its effects. Call with the lock held."""
        before = self._state.status
        transition = decide(self._state, self._rules, workflow.now(), event)
        if before in FINAL_STATUSES:
            assert transition.state.status is before, "a final status is never left"
        self._state = transition.state
        if not transition.duplicate:
            self._show()
        await self._carry_out(transition.effects, transition.tandem)
        return transition

    async def _carry_out(self, effects: list[Effect], tandem: TandemRef | None) -> None:
        batch: list[Effect] = []
        for effect in effects:
            if isinstance(effect, FindMentor):
                await self._run_batch(batch, tandem)
                batch = []
                result = await workflow.execute_activity_method(
                    MatchingActivities.find_mentor,
                    effect.request,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RETRY,
                    summary="find a mentor",
                )
                found = MatchFound(
                    mentor_id=result.mentor_id, score=result.score, reasons=result.reasons
                )
                await self._apply(found)
            else:
                batch.append(effect)
        await self._run_batch(batch, tandem)

    async def _run_batch(self, effects: list[Effect], tandem: TandemRef | None) -> None:
        if not effects:
            return
        assert tandem is not None, "the core names the tandem of every effect"
        batch = EffectBatch(tandem=tandem, effects=effects)
        await workflow.execute_activity_method(
            EffectActivities.carry_out,
            batch,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
            summary=batch.summary(),
        )

    async def _handle(self, event: Event) -> Transition:
        """An update's transition: refused if the state (by now) does not allow it."""
        self._updates += 1
        async with self._lock:
            try:
                transition = await self._apply(event)
            except Refused as err:
                raise refuse(err.message) from None
        self._changed = True
        return transition

    def _validate(self, event: Event) -> None:
        """Validators refuse at once what the current state does not allow (nothing recorded);
        the handler asks again under the lock, as the state may change while it waits."""
        try:
            decide(self._state, self._rules, workflow.now(), event)
        except Refused as err:
            raise refuse(err.message) from None

    def _result(self, transition: Transition) -> OperatorResult:
        return OperatorResult(status=self._state.status, message=transition.message)

    # -- answers and operator updates -------------------------------------------------------

    @workflow.update
    async def answer(self, answer: Answer) -> AnswerResult:
        """An answer by reply mail (via the gateway) or by phone (``tandem answer``)."""
        t = await self._handle(AnswerGiven(answer=answer))
        return AnswerResult(duplicate=t.duplicate, status=self._state.status, message=t.message)

    @answer.validator
    def _validate_answer(self, answer: Answer) -> None:
        self._validate(AnswerGiven(answer=answer))

    @workflow.update
    async def advance(self, request: AdvanceRequest) -> OperatorResult:
        return self._result(await self._handle(AdvancePhase(phase=request.phase)))

    @advance.validator
    def _validate_advance(self, request: AdvanceRequest) -> None:
        self._validate(AdvancePhase(phase=request.phase))

    @workflow.update
    async def pause(self, request: PauseRequest) -> OperatorResult:
        return self._result(await self._handle(PauseTandem(until=request.until)))

    @pause.validator
    def _validate_pause(self, request: PauseRequest) -> None:
        self._validate(PauseTandem(until=request.until))

    @workflow.update
    async def resume(self) -> OperatorResult:
        return self._result(await self._handle(ResumeTandem()))

    @resume.validator
    def _validate_resume(self) -> None:
        self._validate(ResumeTandem())

    @workflow.update
    async def end(self, request: EndRequest) -> OperatorResult:
        return self._result(await self._handle(EndTandem(reason=request.reason)))

    @end.validator
    def _validate_end(self, request: EndRequest) -> None:
        self._validate(EndTandem(reason=request.reason))

    @workflow.update
    async def rematch(self, request: RematchRequest) -> OperatorResult:
        event = Rematch(expected_rematches=request.expected_rematches)
        return self._result(await self._handle(event))

    @rematch.validator
    def _validate_rematch(self, request: RematchRequest) -> None:
        self._validate(Rematch(expected_rematches=request.expected_rematches))

    @workflow.update
    async def cadence(self, request: CadenceRequest) -> OperatorResult:
        return self._result(await self._handle(ChangeCadence(days=request.days)))

    @cadence.validator
    def _validate_cadence(self, request: CadenceRequest) -> None:
        self._validate(ChangeCadence(days=request.days))

    # -- query and signal -------------------------------------------------------------------

    @workflow.query
    def state(self) -> TandemState:
        return self._state

    @workflow.signal
    def mentors_changed(self) -> None:
        """An import added mentors or seats: a waiting tandem looks again at once."""
        self._mentors_changed = True

    # -- what the UI shows ------------------------------------------------------------------

    def _show(self) -> None:
        changes = sa.updates(self._state, workflow.info().typed_search_attributes)
        if changes:
            workflow.upsert_search_attributes(changes)
        workflow.set_current_details(self._details())

    def _details(self) -> str:
        """What the UI shows on the workflow page: status at a glance, ids only."""
        s = self._state
        lines = [
            f"**{s.status.value}**{' · **AT RISK**' if s.at_risk else ''}"
            f" · phase `{s.phase}` · programme `{s.program}`",
            f"mentor: `{s.mentor_id or '-'}` · rematches: {s.rematches}"
            f" · check-ins every {s.cadence_days:g} days",
        ]
        if s.next_nudge_at:
            lines.append(f"next nudge: {s.next_nudge_at.isoformat(timespec='minutes')}")
        if s.last_contact_at:
            lines.append(f"last contact: {s.last_contact_at.isoformat(timespec='minutes')}")
        if s.paused_until:
            lines.append(f"paused until: {s.paused_until.isoformat(timespec='minutes')}")
        if s.requests:
            lines.append("waiting for: " + ", ".join(sorted(s.requests)))
        return "\n\n".join(lines)
