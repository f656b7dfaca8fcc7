"""``TandemWorkflow``: one long-running workflow per mentee, id ``tandem-<mentee_id>``.

A thin interpreter of the pure lifecycle in ``tandem/lifecycle``: every transition (the timer
loop, each update, the signal) runs under one lock, asks the core for the next state and its
effects, and carries the effects out in order. The workflow holds ids and status only. It
continues as new at each phase change and whenever the run grows long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.effects import EffectActivities
    from activities.matching import MatchingActivities
    from tandem.answers import Answer, AnswerResult
    from tandem.durations import every
    from tandem.lifecycle import (
        AdvancePhase,
        AnswerGiven,
        ChangeCadence,
        Effect,
        EffectsFailed,
        EndTandem,
        Enrolled,
        Event,
        FindMentor,
        ForgetPerson,
        MailFailed,
        MailsResent,
        MatchFound,
        MentorsChanged,
        NeedsAttention,
        PauseTandem,
        Refused,
        Rematch,
        ResumeTandem,
        RetryRequested,
        SendMail,
        Tick,
        Transition,
        decide,
        next_deadline,
    )
    from tandem.lifecycle.due import waiting_for
    from tandem.lifecycle.effects import EffectBatch, TandemRef
    from tandem.lifecycle.events import TandemInput
    from tandem.messages import (
        AdvanceRequest,
        CadenceRequest,
        EffectOutcome,
        EndRequest,
        ForgetRequest,
        OperatorResult,
        PauseRequest,
        RematchRequest,
    )
    from tandem.models import FINAL_STATUSES, TandemState
    from workflows import search_attributes as sa
    from workflows.ids import workflow_id

__all__ = ["TandemWorkflow", "workflow_id"]

ACTIVITY_TIMEOUT = timedelta(seconds=60)
#: A worker that died mid-activity is noticed this soon (activities beat every 2 s).
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))
#: A transient fault (relay or database down) is retried this long; then the tandem waits
#: for the office ("needs attention") instead of retrying for ever or failing.
GIVE_UP_AFTER = timedelta(days=2)
#: Patch id: refused mails and final activity errors are facts, not failures (issue 9).
FAULTS_AS_FACTS = "faults-as-facts"
#: Patch id: what is due fires after its timer fired, never on a clock reading (issue 9).
FIRE_ON_TIMERS_ONLY = "fire-on-timers-only"
#: Patch id: one timer per deadline, kept while a handler's change leaves the deadline where
#: it was (before, every wake cancelled the timer and set a new one: twice the timers).
KEEP_TIMER = "keep-timer-across-wakes"
#: Patch id: the enrolment looks for a mentor in its own step (before, a timer of 1 ms and a
#: workflow task more came first).
MATCH_ON_ENROLMENT = "match-on-enrolment"
#: The timer an overdue item waits for (after an outage, at the start of a run).
OVERDUE_TIMER = timedelta(milliseconds=1)
#: A run continues as new past this many history events (or updates), long before the limits.
HISTORY_BUDGET = 2_000
UPDATE_BUDGET = 1_000
#: Items fired in one go at most (a tandem woken after a long outage catches up in steps).
MAX_FIRINGS = 50


def refuse(err: Refused) -> ApplicationError:
    """A refusal the caller sees at once; nothing is recorded. ``NeedsAttention`` is a
    refusal for now: the gateway keeps such an answer and tries again later."""
    kind = "NeedsAttention" if isinstance(err, NeedsAttention) else "Refused"
    return ApplicationError(err.message, type=kind, non_retryable=True)


class _Stalled(Exception):
    """Effects that could not be carried out (an activity's final error), to be done again
    by ``retry``: each chunk in order, with the tandem as it was when they were decided."""

    def __init__(self, chunks: list[EffectBatch], cause: str) -> None:
        super().__init__(cause)
        self.chunks = chunks
        self.cause = cause

    def then(self, tandem: TandemRef | None, rest: list[Effect]) -> _Stalled:
        if rest and tandem is not None:
            self.chunks.append(EffectBatch(tandem=tandem, effects=rest))
        return self


def _cause(err: ActivityError) -> str:
    """The final error's type (``UnknownProgram``, ``StartToCloseTimeout``): no message."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type[:60]
    return type(cause).__name__ if cause is not None else "ActivityError"


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
        #: What an activity's final error left undone, until ``retry`` (kept out of history:
        #: a run does not continue as new while there is any).
        self._pending: list[EffectBatch] = []
        #: The latest deadline whose timer fired (see ``_sleep``).
        self._reached: datetime | None = None
        self._on_timers_only = False
        self._keep_timer = False
        #: The running timer and the deadline it was set for (see ``_sleep_kept``).
        self._timer: asyncio.Task[None] | None = None
        self._timer_deadline: datetime | None = None
        #: ``forget``: continue as new at once, so the id stays only in runs to be deleted.
        self._forgotten = False

    # -- the run method owns time ---------------------------------------------------------

    @workflow.run
    async def run(self, input: TandemInput) -> TandemState:
        # A run of today's code records its newest patch alone: the earlier ones hold with it
        # (each patch marker comes with an upsert of TemporalChangeVersion: history bytes).
        latest = workflow.patched(MATCH_ON_ENROLMENT)
        self._on_timers_only = latest or workflow.patched(FIRE_ON_TIMERS_ONLY)
        self._keep_timer = latest or (self._on_timers_only and workflow.patched(KEEP_TIMER))
        if self._state.enrolled_at is None:
            await self._transition(Enrolled(match_at_once=latest))
        else:
            self._show()
        while self._state.status not in FINAL_STATUSES:
            await self._fire_due()
            if self._state.status in FINAL_STATUSES or self._time_to_continue():
                break
            await self._sleep()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._drop_timer()
        if self._state.status not in FINAL_STATUSES:
            workflow.continue_as_new(TandemInput(rules=self._rules, state=self._state))
        return self._state

    def _now(self) -> datetime:
        """The workflow's clock, never before a deadline whose timer has fired."""
        now = workflow.now()
        return max(now, self._reached) if self._reached is not None else now

    def _time_to_continue(self) -> bool:
        info = workflow.info()
        if self._pending:
            return False
        return (
            self._forgotten
            or self._state.phase != self._run_phase
            or info.is_continue_as_new_suggested()
            or info.get_current_history_length() > HISTORY_BUDGET
            or self._updates > UPDATE_BUDGET
        )

    async def _fire_due(self) -> None:
        async with self._lock:
            for _ in range(MAX_FIRINGS):
                deadline = next_deadline(self._state, self._rules)
                if deadline is None or not self._due(deadline):
                    return
                await self._apply(Tick())

    def _due(self, deadline: datetime) -> bool:
        """Due once its timer fired. Never by reading the clock: a task's clock can read
        differently on a replay (a task retried after its worker died), and a different
        answer to "is it due?" is a different history."""
        if self._on_timers_only:
            return self._reached is not None and deadline <= self._reached
        return deadline <= self._now()  # runs that started before this rule

    async def _sleep(self) -> None:
        """Until the next deadline, or until a handler or the signal changed something."""
        deadline = next_deadline(self._state, self._rules)
        self._changed = False

        def woken() -> bool:
            return self._changed or self._mentors_changed

        if self._keep_timer:
            await self._sleep_kept(deadline, woken)
        else:
            await self._sleep_rearming(deadline, woken)
        if self._mentors_changed:
            self._mentors_changed = False
            await self._transition(MentorsChanged())

    async def _sleep_kept(self, deadline: datetime | None, woken: Callable[[], bool]) -> None:
        """One timer per deadline: a wake that leaves the deadline where it was (an answer, a
        query-like update) waits on the same timer; a moved deadline gets a new one."""
        if deadline is None:
            self._drop_timer()
            await workflow.wait_condition(woken)
            return
        if self._timer is None or self._timer_deadline != deadline:
            self._drop_timer()
            timeout = max(deadline - self._now(), OVERDUE_TIMER)
            summary = waiting_for(self._state, self._rules)
            self._timer = asyncio.create_task(workflow.sleep(timeout, summary=summary))
            self._timer_deadline = deadline
        timer = self._timer
        await workflow.wait_condition(lambda: woken() or timer.done())
        if timer.done():
            # The timer fired: the deadline is reached, whatever the clock of this task says.
            self._timer = None
            self._reached = max(self._reached or deadline, deadline)

    def _drop_timer(self) -> None:
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
        self._timer = None
        self._timer_deadline = None

    async def _sleep_rearming(self, deadline: datetime | None, woken: Callable[[], bool]) -> None:
        """Runs that started before ``KEEP_TIMER``: a new timer at every wake."""
        timeout = None if deadline is None else deadline - self._now()
        if self._on_timers_only and timeout is not None:
            timeout = max(timeout, OVERDUE_TIMER)  # overdue: fire after a timer all the same
        if deadline is None or timeout is None:
            await workflow.wait_condition(woken)
        elif timeout > timedelta(0):
            try:
                await workflow.wait_condition(
                    woken, timeout=timeout, timeout_summary=waiting_for(self._state, self._rules)
                )
            except TimeoutError:
                # The timer fired: the deadline is reached, whatever the clock of this task
                # says. What fires next then depends on history only, never on a clock
                # reading that could differ between the first run and a replay.
                self._reached = max(self._reached or deadline, deadline)

    # -- transitions ----------------------------------------------------------------------

    async def _transition(self, event: Event) -> Transition:
        async with self._lock:
            return await self._apply(event)

    async def _apply(self, event: Event) -> Transition:
        """One step of the core, then its effects. Call with the lock held. An activity's
        final error does not fail the workflow: the tandem waits for the office instead."""
        transition = self._decide(event)
        try:
            await self._carry_out(transition.effects, transition.tandem)
        except _Stalled as stalled:
            await self._stall(stalled)
        return transition

    def _decide(self, event: Event) -> Transition:
        before = self._state.status
        transition = decide(self._state, self._rules, self._now(), event)
        if before in FINAL_STATUSES:
            assert transition.state.status is before, "a final status is never left"
        self._state = transition.state
        if self._state.attention is None:
            self._pending = []  # ended meanwhile: what was left undone is moot
        if not transition.duplicate:
            self._show()
        return transition

    async def _apply_nested(self, event: Event) -> None:
        """A step caused by an activity's result, inside another one's effects."""
        transition = self._decide(event)
        await self._carry_out(transition.effects, transition.tandem)

    async def _stall(self, stalled: _Stalled) -> None:
        """Keep what is undone, record why, tell the office once, and wait for ``retry``."""
        workflow.logger.warning("tandem needs attention: %s", stalled.cause)
        transition = self._decide(EffectsFailed(cause=stalled.cause))
        self._pending = stalled.chunks
        try:
            await self._carry_out(transition.effects, transition.tandem)
        except _Stalled as also:
            # The alert could not go out either (the cause may be the same): its event row is
            # written on retry, its mail is dropped (it would arrive after the fix).
            for chunk in also.chunks:
                rest = [e for e in chunk.effects if not isinstance(e, SendMail)]
                if rest:
                    self._pending.append(EffectBatch(tandem=chunk.tandem, effects=rest))

    async def _carry_out(self, effects: list[Effect], tandem: TandemRef | None) -> None:
        batch: list[Effect] = []
        for i, effect in enumerate(effects):
            if isinstance(effect, FindMentor):
                try:
                    await self._run_batch(batch, tandem)
                except _Stalled as stalled:
                    raise stalled.then(tandem, effects[i:]) from None
                batch = []
                try:
                    result = await workflow.execute_activity_method(
                        MatchingActivities.find_mentor,
                        effect.request,
                        start_to_close_timeout=ACTIVITY_TIMEOUT,
                        heartbeat_timeout=HEARTBEAT_TIMEOUT,
                        schedule_to_close_timeout=GIVE_UP_AFTER,
                        retry_policy=RETRY,
                        summary="find a mentor",
                    )
                except ActivityError as err:
                    raise _Stalled([], _cause(err)).then(tandem, effects[i:]) from None
                found = MatchFound(
                    mentor_id=result.mentor_id, score=result.score, reasons=result.reasons
                )
                try:
                    await self._apply_nested(found)
                except _Stalled as stalled:
                    raise stalled.then(tandem, effects[i + 1 :]) from None
            else:
                batch.append(effect)
        await self._run_batch(batch, tandem)

    async def _run_batch(self, effects: list[Effect], tandem: TandemRef | None) -> None:
        if not effects:
            return
        assert tandem is not None, "the core names the tandem of every effect"
        batch = EffectBatch(tandem=tandem, effects=effects)
        try:
            outcome: EffectOutcome | None = await workflow.execute_activity_method(
                EffectActivities.carry_out,
                batch,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                schedule_to_close_timeout=GIVE_UP_AFTER,
                retry_policy=RETRY,
                summary=batch.summary(),
            )
        except ActivityError as err:
            raise _Stalled([batch], _cause(err)) from None
        if outcome is None or not (outcome.failed or outcome.resent):
            return
        if not workflow.patched(FAULTS_AS_FACTS):
            return
        for failed in outcome.failed:
            await self._apply_nested(MailFailed(mail=failed))
        if outcome.resent:
            await self._apply_nested(MailsResent(keys=outcome.resent))

    async def _handle(self, event: Event) -> Transition:
        """An update's transition: refused if the state (by now) does not allow it."""
        self._updates += 1
        async with self._lock:
            try:
                transition = await self._apply(event)
            except Refused as err:
                raise refuse(err) from None
        self._changed = True
        return transition

    def _validate(self, event: Event) -> None:
        """Validators refuse at once what the current state does not allow (nothing recorded);
        the handler asks again under the lock, as the state may change while it waits."""
        try:
            decide(self._state, self._rules, self._now(), event)
        except Refused as err:
            raise refuse(err) from None

    def _result(self, transition: Transition) -> OperatorResult:
        message = transition.message
        if self._state.attention is not None:
            message = f"needs attention ({self._state.attention}); fix it, then `tandem retry`"
        return OperatorResult(status=self._state.status, message=message)

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
    async def forget(self, request: ForgetRequest) -> OperatorResult:
        """``tandem forget``: the person leaves the tandem; the run then continues as new."""
        result = self._result(await self._handle(ForgetPerson(person_id=request.person_id)))
        self._forgotten = True
        return result

    @forget.validator
    def _validate_forget(self, request: ForgetRequest) -> None:
        self._validate(ForgetPerson(person_id=request.person_id))

    @workflow.update
    async def cadence(self, request: CadenceRequest) -> OperatorResult:
        return self._result(await self._handle(ChangeCadence(days=request.days)))

    @cadence.validator
    def _validate_cadence(self, request: CadenceRequest) -> None:
        self._validate(ChangeCadence(days=request.days))

    @workflow.update
    async def retry(self) -> OperatorResult:
        """``tandem retry``: carry out what an activity's final error left undone, and send the
        refused mails again (to the addresses now on file)."""
        self._updates += 1
        async with self._lock:
            pending = self._pending
            try:
                transition = self._decide(RetryRequested())
            except Refused as err:
                raise refuse(err) from None
            work = [*pending]
            if transition.effects and transition.tandem is not None:
                work.append(EffectBatch(tandem=transition.tandem, effects=transition.effects))
            for i, chunk in enumerate(work):
                try:
                    await self._carry_out(chunk.effects, chunk.tandem)
                except _Stalled as stalled:
                    stalled.chunks.extend(work[i + 1 :])
                    await self._stall(stalled)
                    break
        self._changed = True
        result = self._result(transition)
        if result.message == "retried" and self._state.failed_mails:
            result.message = f"retried; {len(self._state.failed_mails)} mail(s) still refused"
        return result

    @retry.validator
    def _validate_retry(self) -> None:
        self._validate(RetryRequested())

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
        # The run's own summary line: a continued run has no static summary (the SDK sets
        # one only at start), so the details carry what it says, on every run.
        since = s.enrolled_at.date().isoformat() if s.enrolled_at else "-"
        lines = [
            f"Tandem of mentee `{s.mentee_id}` ({s.program}), no. {s.enrolment}, since {since}"
        ]
        if s.attention is not None:
            lines.append(
                f"**NEEDS ATTENTION** ({s.attention}): fix the cause, then"
                f" `tandem retry {s.mentee_id}`"
            )
        if s.failed_mails:
            lines.append(f"mails refused by the relay: {len(s.failed_mails)}")
        lines += [
            f"**{s.status.value}**{' · **AT RISK**' if s.at_risk else ''}"
            f" · phase `{s.phase}` · programme `{s.program}`",
            f"mentor: `{s.mentor_id or '-'}` · rematches: {s.rematches}"
            f" · check-ins {every(s.cadence_days, 'en') if s.cadence_days > 0 else 'never'}",
        ]
        if s.next_nudge_at:
            lines.append(f"next check-in: {s.next_nudge_at.isoformat(timespec='minutes')}")
        if s.last_contact_at:
            lines.append(f"last contact: {s.last_contact_at.isoformat(timespec='minutes')}")
        if s.paused_until:
            lines.append(f"paused until: {s.paused_until.isoformat(timespec='minutes')}")
        if s.requests:
            lines.append("waiting for: " + ", ".join(sorted(s.requests)))
        return "\n\n".join(lines)
