"""``TandemWorkflow``: one long-running workflow per mentee, id ``tandem-<mentee_id>``.

The lifecycle (see the brief): matching -> introduced -> deciding -> active <-> paused ->
completed, or ended at any time. Answers and operator commands arrive as updates with
validators; the run method owns the timers. It carries ids and status only; every side effect
(Postgres, mail) is an activity. It continues as new at each phase change and whenever the
SDK suggests it, carrying the whole state.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.events import EventActivities
    from activities.mail import MailActivities
    from activities.matching import MatchingActivities
    from tandem.answers import (
        ALLOWED,
        STANDING,
        Answer,
        AnswerResult,
        Intent,
        RequestKind,
        request_id,
        request_kind,
    )
    from tandem.messages import (
        AdvanceRequest,
        CadenceRequest,
        EndRequest,
        MailRequest,
        MatchRequest,
        OperatorResult,
        PauseRequest,
        SeatRelease,
        StatusEvent,
        TandemInput,
    )
    from tandem.models import FINAL_STATUSES, DecisionState, Role, TandemState, TandemStatus
    from workflows import search_attributes as sa

ACTIVITY_TIMEOUT = timedelta(seconds=60)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))
PEOPLE = (Role.MENTEE, Role.MENTOR)
DEFAULT_SNOOZE = timedelta(weeks=2)
KEEP_ANSWER_IDS = 200
#: Statuses in which the pair is matched and a seat is held.
MATCHED = frozenset(
    {TandemStatus.INTRODUCED, TandemStatus.DECIDING, TandemStatus.ACTIVE, TandemStatus.PAUSED}
)


def workflow_id(mentee_id: str) -> str:
    return f"tandem-{mentee_id}"


def refuse(message: str) -> ApplicationError:
    """A validator's refusal: the caller sees ``message`` at once, nothing is recorded."""
    return ApplicationError(message, type="Refused", non_retryable=True)


@workflow.defn
class TandemWorkflow:
    @workflow.init
    def __init__(self, input: TandemInput) -> None:
        self._rules = input.rules
        self._state = input.state.model_copy(deep=True)
        self._wake = False
        self._mentors_changed = False
        self._phase_changed = False

    # -- the run method owns time ---------------------------------------------------------

    @workflow.run
    async def run(self, input: TandemInput) -> TandemState:
        s = self._state
        if s.enrolled_at is None:
            s.enrolled_at = workflow.now()
            await self._set_status(s.status, "enrolled")
        else:
            self._refresh_visibility()
        while s.status not in FINAL_STATUSES:
            if s.status in (TandemStatus.MATCHING, TandemStatus.WAITING_FOR_MENTOR):
                await self._match_and_introduce()
                continue
            self._wake = False
            await self._sleep_until(self._next_deadline())
            await self._on_time()
            if s.status in FINAL_STATUSES:
                break
            if self._phase_changed or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(TandemInput(rules=self._rules, state=s))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return s

    async def _sleep_until(self, deadline: datetime | None) -> None:
        """Wait for the deadline, or until a handler changed something (``_wake``)."""
        if deadline is None:
            await workflow.wait_condition(lambda: self._wake or self._phase_changed)
            return
        timeout = deadline - workflow.now()
        if timeout <= timedelta(0):
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: self._wake or self._phase_changed, timeout=timeout
            )

    def _next_deadline(self) -> datetime | None:
        s, r = self._state, self._rules
        if s.status is TandemStatus.INTRODUCED and s.introduced_at:
            return s.introduced_at + r.first_meeting_window
        if s.status is TandemStatus.DECIDING and s.decision.asked_at:
            d, asked = s.decision, s.decision.asked_at
            due = [d.reask_at]
            if not d.reminded:
                due.append(asked + r.decision_reminder_after)
            if not d.escalated:
                due.append(asked + r.decision_escalation_after)
            return min((t for t in due if t is not None), default=None)
        if s.status is TandemStatus.ACTIVE:
            end = self._phase_end()
            due = [s.next_nudge_at]
            if self._next_phase() is None:
                due.append(end)  # the tandem completes
            elif end is not None and not s.phase_check_sent:
                due.append(end - r.phase_check_lead)  # ask the mentee once
            return min((t for t in due if t is not None), default=None)
        if s.status is TandemStatus.PAUSED:
            return s.paused_until
        return None

    async def _on_time(self) -> None:
        """Do whatever is due now for the current status."""
        s, r, now = self._state, self._rules, workflow.now()
        if s.status is TandemStatus.INTRODUCED and s.introduced_at:
            if now >= s.introduced_at + r.first_meeting_window:
                await self._ask_decision()
        elif s.status is TandemStatus.DECIDING and s.decision.asked_at:
            d, asked = s.decision, s.decision.asked_at
            if d.reask_at and now >= d.reask_at:
                await self._ask_decision()
            elif not d.reminded and now >= asked + r.decision_reminder_after:
                d.reminded = True
                for role in self._undecided():
                    await self._mail("decision_reminder", role, f"d{s.rematches}.{d.asks}")
            elif not d.escalated and now >= asked + r.decision_escalation_after:
                d.escalated = True
                waiting = ",".join(role.value for role in self._undecided())
                await self._mail(
                    "decision_escalation_coordinator",
                    Role.COORDINATOR,
                    f"d{s.rematches}.{d.asks}",
                    facts={"waiting_for": waiting},
                )
                await self._set_status(s.status, "decision_escalated")
        elif s.status is TandemStatus.ACTIVE:
            end = self._phase_end()
            if end and now >= end and self._next_phase() is None:
                await self._finish(TandemStatus.COMPLETED, "completed", "tandem_completed")
                return
            if (
                not s.phase_check_sent
                and end
                and self._next_phase() is not None
                and now >= end - r.phase_check_lead
            ):
                await self._send_phase_check()
            if s.next_nudge_at and now >= s.next_nudge_at:
                await self._nudge()
        elif s.status is TandemStatus.PAUSED and s.paused_until and now >= s.paused_until:
            await self._resume("resumed_automatically")

    # -- matching and the decision --------------------------------------------------------

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
            if s.status in FINAL_STATUSES:  # ended while we looked
                await self._release_seat()
                return
            if result.mentor_id is not None:
                break
            if s.status is not TandemStatus.WAITING_FOR_MENTOR:
                await self._set_status(TandemStatus.WAITING_FOR_MENTOR, "no_mentor_free")
            if not s.coordinator_told_no_mentor:
                await self._mail("no_mentor_coordinator", Role.COORDINATOR, f"r{s.rematches}")
                s.coordinator_told_no_mentor = True
            with contextlib.suppress(asyncio.TimeoutError):  # timing out is the daily retry
                await workflow.wait_condition(
                    lambda: self._mentors_changed or s.status in FINAL_STATUSES,
                    timeout=self._rules.waiting_retry_every,
                )
            if s.status in FINAL_STATUSES:
                return
        s.mentor_id = result.mentor_id
        s.match_score = result.score
        s.match_reasons = result.reasons
        s.coordinator_told_no_mentor = False
        s.decision = DecisionState()
        s.introduced_at = workflow.now()
        decision = request_id(RequestKind.DECISION, s.rematches)
        s.open_requests[decision] = [r.value for r in PEOPLE]
        await asyncio.gather(
            self._mail("introduction_mentee", Role.MENTEE, f"r{s.rematches}", request=decision),
            self._mail("introduction_mentor", Role.MENTOR, f"r{s.rematches}", request=decision),
        )
        await self._set_status(TandemStatus.INTRODUCED, "introduced")
        await self._settle_decision()  # answers may have come in while mails went out

    def _undecided(self) -> list[Role]:
        return [r for r in PEOPLE if r.value not in self._state.decision.answers]

    async def _ask_decision(self) -> None:
        s, d = self._state, self._state.decision
        d.asks += 1
        d.asked_at = workflow.now()
        d.reminded = False
        d.escalated = False
        d.reask_at = None
        if s.status is not TandemStatus.DECIDING:
            await self._set_status(TandemStatus.DECIDING, "decision_asked")
        decision = request_id(RequestKind.DECISION, s.rematches)
        await asyncio.gather(
            *(
                self._mail("decision_request", role, f"d{s.rematches}.{d.asks}", request=decision)
                for role in self._undecided()
            )
        )

    async def _settle_decision(self) -> None:
        """Both said yes -> active; one said no -> rematch. Otherwise keep waiting."""
        d = self._state.decision
        if d.outcome is not None:
            return
        if Intent.DECLINE.value in d.answers.values():
            d.outcome = Intent.DECLINE.value
            await self._declined()
        elif all(d.answers.get(r.value) == Intent.CONTINUE.value for r in PEOPLE):
            d.outcome = Intent.CONTINUE.value
            await self._activate()

    async def _activate(self) -> None:
        s, now = self._state, workflow.now()
        s.open_requests.pop(request_id(RequestKind.DECISION, s.rematches), None)
        s.active_since = now
        if s.phase_started_at is None:
            s.phase_started_at = now
        s.next_nudge_at = now + self._cadence()
        s.missed_periods = 0
        await self._set_status(TandemStatus.ACTIVE, "activated")
        facts = {"cadence_days": _days(self._cadence())}
        await self._mail_both("tandem_confirmed", f"r{s.rematches}", facts=facts)

    async def _declined(self) -> None:
        s = self._state
        round_ = f"r{s.rematches}"
        s.open_requests.pop(request_id(RequestKind.DECISION, s.rematches), None)
        await self._mail("decision_declined", Role.MENTEE, round_, facts={"audience": "mentee"})
        await self._mail("decision_declined", Role.MENTOR, round_, facts={"audience": "mentor"})
        await self._unmatch()
        if s.rematches > self._rules.max_rematches:
            await self._set_status(TandemStatus.NEEDS_COORDINATOR, "needs_coordinator")
            await self._mail(
                "needs_coordinator_coordinator",
                Role.COORDINATOR,
                round_,
                facts={"rematches": str(s.rematches)},
            )
        else:
            await self._set_status(TandemStatus.MATCHING, "rematching")

    async def _unmatch(self) -> None:
        """Release the seat, exclude that mentor, count the rematch."""
        s = self._state
        await self._release_seat()
        if s.mentor_id and s.mentor_id not in s.excluded_mentor_ids:
            s.excluded_mentor_ids.append(s.mentor_id)
        s.mentor_id = None
        s.rematches += 1
        s.decision = DecisionState()
        s.next_nudge_at = None
        s.open_requests.clear()

    # -- the active tandem ----------------------------------------------------------------

    def _cadence(self) -> timedelta:
        return timedelta(days=self._state.cadence_days)

    def _phase_end(self) -> datetime | None:
        s, r = self._state, self._rules
        if s.expected_phase_end is not None and self._next_phase() is not None:
            return datetime.combine(
                s.expected_phase_end, datetime.min.time(), workflow.now().tzinfo
            )
        if s.phase_started_at is None or not r.has_phase(s.phase):
            return None
        duration = r.phase(s.phase).duration
        return s.phase_started_at + duration if duration else None

    def _next_phase(self) -> str | None:
        names = [p.name for p in self._rules.phases]
        if self._state.phase not in names:
            return None
        i = names.index(self._state.phase)
        return names[i + 1] if i + 1 < len(names) else None

    async def _nudge(self) -> None:
        s, now = self._state, workflow.now()
        period_start = s.last_nudge_at or s.active_since or now
        if s.last_contact_at is None or s.last_contact_at < period_start:
            s.missed_periods += 1
        else:
            s.missed_periods = 0
        s.nudges_sent += 1
        s.last_nudge_at = now
        s.next_nudge_at = now + self._cadence()
        nudge = request_id(RequestKind.NUDGE, s.nudges_sent)
        s.open_requests[nudge] = [r.value for r in PEOPLE]
        s.open_requests.pop(request_id(RequestKind.NUDGE, s.nudges_sent - 2), None)
        await asyncio.gather(
            *(
                self._mail(
                    "nudge",
                    role,
                    f"n{s.nudges_sent}",
                    request=nudge,
                    facts={"audience": role.value, "phase": s.phase},
                )
                for role in PEOPLE
            )
        )
        if s.status in FINAL_STATUSES:  # stopped while the check-in went out
            return
        if s.missed_periods >= 2 and not s.at_risk:
            s.at_risk = True
            await self._mail("at_risk_coordinator", Role.COORDINATOR, f"n{s.nudges_sent}")
            await self._set_status(s.status, "at_risk")
        else:
            await self._set_status(s.status, "nudged")

    async def _send_phase_check(self) -> None:
        s = self._state
        s.phase_check_sent = True
        check = request_id(RequestKind.PHASE_CHECK, s.phase)
        s.open_requests[check] = [Role.MENTEE.value]
        await self._mail(
            "phase_check",
            Role.MENTEE,
            f"p-{s.phase}-{s.event_seq}",
            request=check,
            facts={"next_phase": self._next_phase() or ""},
        )

    async def _change_phase(self, phase: str, kind: str) -> None:
        s, now = self._state, workflow.now()
        s.open_requests.pop(request_id(RequestKind.PHASE_CHECK, s.phase), None)
        s.phase = phase
        s.phase_started_at = now
        s.phase_check_sent = False
        s.expected_phase_end = None
        s.cadence_days = self._rules.cadence(phase) / timedelta(days=1)
        if s.status is TandemStatus.ACTIVE:
            s.next_nudge_at = now + self._cadence()
        facts = {"phase": phase, "cadence_days": _days(self._cadence())}
        await self._mail_both("phase_changed", f"ph-{phase}-{s.event_seq}", facts=facts)
        await self._set_status(s.status, kind)
        self._phase_changed = True

    async def _pause(self, until: datetime | None) -> None:
        s = self._state
        s.paused_until = until
        s.next_nudge_at = None
        facts = {"until": until.date().isoformat()} if until else {}
        await self._mail_both("paused", f"pause{s.event_seq}", facts=facts)
        await self._set_status(TandemStatus.PAUSED, "paused")

    async def _resume(self, kind: str) -> None:
        s, now = self._state, workflow.now()
        s.paused_until = None
        s.next_nudge_at = now + self._cadence()
        s.last_nudge_at = now  # a pause is no missed period
        await self._mail_both("resumed", f"resume{s.event_seq}")
        await self._set_status(TandemStatus.ACTIVE, kind)

    async def _finish(self, status: TandemStatus, kind: str, template: str, by: str = "") -> None:
        """Completed or ended: tell both (if matched), release the seat, record it."""
        s = self._state
        was_matched = s.status in MATCHED and s.mentor_id is not None
        s.next_nudge_at = None
        s.paused_until = None
        s.open_requests.clear()
        facts = {"by": by} if by else {}
        if was_matched:
            await self._mail_both(template, "final", facts=facts)
        await self._release_seat()
        if status is TandemStatus.ENDED:
            await self._mail(
                "ended_coordinator", Role.COORDINATOR, "final", facts={"by": by or "office"}
            )
        await self._set_status(status, kind)

    # -- answers ----------------------------------------------------------------------------

    @workflow.update
    async def answer(self, answer: Answer) -> AnswerResult:
        """An answer by reply mail (via the gateway) or by phone (``tandem answer``)."""
        s = self._state
        if answer.answer_id in s.answer_ids:
            return AnswerResult(duplicate=True, status=s.status, message="already taken")
        s.answer_ids = [*s.answer_ids, answer.answer_id][-KEEP_ANSWER_IDS:]
        kind = self._answer_kind(answer)
        role, intent = answer.role, answer.intent
        message = await self._apply_answer(kind, role, intent, answer)
        self._wake = True
        return AnswerResult(status=s.status, message=message)

    @answer.validator
    def _validate_answer(self, answer: Answer) -> None:
        s = self._state
        if answer.answer_id in s.answer_ids:
            return  # the same answer again: accepted, changes nothing
        if answer.role not in PEOPLE:
            raise refuse("only the mentor or the mentee can answer")
        if s.status in FINAL_STATUSES:
            raise refuse(f"the tandem is {s.status.value}")
        kind = self._answer_kind(answer)
        if answer.intent not in ALLOWED[kind]:
            raise refuse(f"'{answer.intent.value}' is not an answer to this request")
        self._check_intent(kind, answer)
        if self._repeats_decision(kind, answer):
            return  # the same decision again, in another mail: accepted, changes nothing
        if request_kind(answer.request_id) not in STANDING:  # the request the answer names
            roles = s.open_requests.get(answer.request_id)
            if roles is None or answer.role.value not in roles:
                raise refuse("this request is closed")

    def _repeats_decision(self, kind: RequestKind, answer: Answer) -> bool:
        given = self._state.decision.answers.get(answer.role.value)
        return kind is RequestKind.DECISION and given == answer.intent.value

    def _answer_kind(self, answer: Answer) -> RequestKind:
        """The request an answer belongs to; office answers go to what is open now."""
        try:
            kind = request_kind(answer.request_id)
        except ValueError as err:
            raise refuse("unknown request") from err
        if kind is not RequestKind.OFFICE:
            return kind
        s, intent = self._state, answer.intent
        if (
            intent in (Intent.CONTINUE, Intent.DECLINE)
            and any(k.startswith("shadowing:") for k in s.open_requests)
            and answer.role is Role.MENTOR
            and s.status is TandemStatus.ACTIVE
        ):
            return RequestKind.SHADOWING
        if intent in (Intent.CONTINUE, Intent.DECLINE, Intent.UNDECIDED):
            return RequestKind.DECISION
        if intent is Intent.PHASE_DONE:
            return RequestKind.PHASE_CHECK
        return RequestKind.NUDGE if intent in (Intent.SNOOZE, Intent.SHADOWING) else kind

    def _check_intent(self, kind: RequestKind, answer: Answer) -> None:
        s, role, intent = self._state, answer.role, answer.intent
        if kind is RequestKind.DECISION and intent in (
            Intent.CONTINUE,
            Intent.DECLINE,
            Intent.UNDECIDED,
        ):
            if s.status not in (TandemStatus.INTRODUCED, TandemStatus.DECIDING):
                raise refuse("no decision is asked now")
            if s.decision.outcome is not None:
                raise refuse("the decision is already made")
            given = s.decision.answers.get(role.value)
            if given is not None and given != intent.value:
                raise refuse(f"the {role.value} already answered '{given}'")
        if kind is RequestKind.SHADOWING and (
            role is not Role.MENTOR or not any(k.startswith("shadowing:") for k in s.open_requests)
        ):
            raise refuse("no shadowing request is open")
        if intent is Intent.SHADOWING and (role is not Role.MENTEE or s.status not in MATCHED):
            raise refuse("only the mentee of a running tandem can ask for shadowing")
        if intent is Intent.PHASE_DONE:
            if role is not Role.MENTEE:
                raise refuse("only the mentee confirms a new phase")
            if self._next_phase() is None:
                raise refuse("there is no next phase to confirm")
            if s.status not in (TandemStatus.ACTIVE, TandemStatus.PAUSED):
                raise refuse("phases change only in a running tandem")
        if intent is Intent.SNOOZE and s.status is not TandemStatus.ACTIVE:
            raise refuse("check-ins are not running now")
        if intent is Intent.MET and s.status not in MATCHED:
            raise refuse("no tandem to meet in yet")

    async def _apply_answer(
        self, kind: RequestKind, role: Role, intent: Intent, answer: Answer
    ) -> str:
        s, now = self._state, workflow.now()
        if kind is RequestKind.SHADOWING and intent in (Intent.CONTINUE, Intent.DECLINE):
            opened = [k for k in s.open_requests if k.startswith("shadowing:")]
            for k in opened:
                s.open_requests.pop(k)
            accepted = "yes" if intent is Intent.CONTINUE else "no"
            await self._mail(
                "shadowing_answer",
                Role.MENTEE,
                f"s{s.shadowing_requests}",
                facts={"accepted": accepted},
            )
            await self._set_status(s.status, f"shadowing_{accepted}")
            return "shadowing answer passed on"
        if intent in (Intent.CONTINUE, Intent.DECLINE):
            if self._repeats_decision(kind, answer):
                return "decision already recorded"
            s.decision.answers[role.value] = intent.value
            if roles := s.open_requests.get(request_id(RequestKind.DECISION, s.rematches)):
                s.open_requests[request_id(RequestKind.DECISION, s.rematches)] = [
                    r for r in roles if r != role.value
                ]
            await self._set_status(s.status, f"decision_{intent.value}_{role.value}")
            await self._settle_decision()
            return "decision recorded"
        if intent is Intent.UNDECIDED:
            s.decision.reask_at = now + self._cadence()
            if s.status is TandemStatus.INTRODUCED:
                s.decision.asked_at = now
                await self._set_status(TandemStatus.DECIDING, "decision_undecided")
            else:
                await self._set_status(s.status, "decision_undecided")
            return "we will ask again after the next period"
        if intent is Intent.MET:
            met = answer.details.met_on
            at = datetime.combine(met, datetime.min.time(), now.tzinfo) if met else now
            s.last_contact_at = max(s.last_contact_at or at, at) if met else now
            s.missed_periods = 0
            s.at_risk = False
            await self._set_status(s.status, "contact")
            return "contact recorded"
        if intent is Intent.SNOOZE:
            weeks = answer.details.snooze_weeks
            delay = timedelta(weeks=weeks) if weeks else min(DEFAULT_SNOOZE, self._cadence())
            s.next_nudge_at = now + delay
            await self._set_status(s.status, "snoozed")
            return "next check-in moved"
        if intent is Intent.HELP:
            await self._mail(
                "help_coordinator",
                Role.COORDINATOR,
                f"h{s.event_seq}",
                facts={"role": role.value},
            )
            await self._set_status(s.status, f"help_{role.value}")
            return "the programme office will get in touch"
        if intent is Intent.STOP:
            await self._finish(
                TandemStatus.ENDED, f"stopped_by_{role.value}", "tandem_ended", role.value
            )
            return "the tandem has ended"
        if intent is Intent.SHADOWING:
            s.shadowing_requests += 1
            shadowing = request_id(RequestKind.SHADOWING, s.shadowing_requests)
            s.open_requests[shadowing] = [Role.MENTOR.value]
            await self._mail(
                "shadowing_request", Role.MENTOR, f"s{s.shadowing_requests}", request=shadowing
            )
            await self._set_status(s.status, "shadowing_asked")
            return "the mentor is asked"
        if intent is Intent.PHASE_DONE:
            nxt = self._next_phase()
            assert nxt is not None
            await self._change_phase(nxt, "phase_confirmed")
            return f"phase is now {nxt}"
        raise refuse("not understood")  # pragma: no cover - the validator refuses earlier

    # -- operator updates -------------------------------------------------------------------

    @workflow.update
    async def advance(self, request: AdvanceRequest) -> OperatorResult:
        await self._change_phase(request.phase, "phase_advanced")
        self._wake = True
        return OperatorResult(status=self._state.status, message=f"phase is now {request.phase}")

    @advance.validator
    def _validate_advance(self, request: AdvanceRequest) -> None:
        s = self._state
        if s.status in FINAL_STATUSES:
            raise refuse(f"the tandem is {s.status.value}")
        if not self._rules.has_phase(request.phase):
            phases = ", ".join(p.name for p in self._rules.phases)
            raise refuse(f"programme {s.program} has no phase '{request.phase}' ({phases})")
        if request.phase == s.phase:
            raise refuse(f"the tandem is already in phase {s.phase}")

    @workflow.update
    async def pause(self, request: PauseRequest) -> OperatorResult:
        await self._pause(request.until)
        self._wake = True
        return OperatorResult(status=self._state.status)

    @pause.validator
    def _validate_pause(self, request: PauseRequest) -> None:
        if self._state.status is not TandemStatus.ACTIVE:
            raise refuse(f"only an active tandem can be paused (it is {self._state.status.value})")
        if request.until is not None and request.until <= workflow.now():
            raise refuse("the pause must end in the future")

    @workflow.update
    async def resume(self) -> OperatorResult:
        await self._resume("resumed")
        self._wake = True
        return OperatorResult(status=self._state.status)

    @resume.validator
    def _validate_resume(self) -> None:
        if self._state.status is not TandemStatus.PAUSED:
            raise refuse(f"the tandem is not paused (it is {self._state.status.value})")

    @workflow.update
    async def end(self, request: EndRequest) -> OperatorResult:
        self._state.end_reason = request.reason
        await self._finish(TandemStatus.ENDED, "ended_by_office", "tandem_ended", "office")
        self._wake = True
        return OperatorResult(status=self._state.status)

    @end.validator
    def _validate_end(self, request: EndRequest) -> None:
        if self._state.status in FINAL_STATUSES:
            raise refuse(f"the tandem is already {self._state.status.value}")

    @workflow.update
    async def rematch(self) -> OperatorResult:
        s = self._state
        if s.mentor_id is not None:
            round_ = f"r{s.rematches}"
            for role in PEOPLE:
                await self._mail(
                    "decision_declined", role, f"{round_}.op", facts={"audience": role.value}
                )
        await self._unmatch()
        await self._set_status(TandemStatus.MATCHING, "rematch_by_office")
        self._wake = True
        return OperatorResult(status=s.status, message="looking for a new mentor")

    @rematch.validator
    def _validate_rematch(self) -> None:
        s = self._state
        if s.status in FINAL_STATUSES:
            raise refuse(f"the tandem is {s.status.value}")
        if s.status in (TandemStatus.MATCHING, TandemStatus.WAITING_FOR_MENTOR):
            raise refuse("the tandem is already looking for a mentor")

    @workflow.update
    async def cadence(self, request: CadenceRequest) -> OperatorResult:
        s = self._state
        s.cadence_days = request.days
        if s.status is TandemStatus.ACTIVE:
            base = s.last_nudge_at or s.active_since or workflow.now()
            s.next_nudge_at = max(base + self._cadence(), workflow.now())
        await self._set_status(s.status, "cadence_changed")
        self._wake = True
        return OperatorResult(status=s.status, message=f"check-ins every {request.days:g} days")

    @cadence.validator
    def _validate_cadence(self, request: CadenceRequest) -> None:
        if self._state.status in FINAL_STATUSES:
            raise refuse(f"the tandem is {self._state.status.value}")

    # -- queries and signals ----------------------------------------------------------------

    @workflow.query
    def state(self) -> TandemState:
        return self._state

    @workflow.signal
    def mentors_changed(self) -> None:
        """An import added mentors or seats: a waiting tandem looks again at once."""
        self._mentors_changed = True

    # -- effects -------------------------------------------------------------------------

    async def _mail_both(
        self, template: str, key: str, facts: dict[str, str] | None = None
    ) -> None:
        await asyncio.gather(*(self._mail(template, role, key, facts=facts) for role in PEOPLE))

    async def _mail(
        self,
        template: str,
        to: Role,
        key: str,
        *,
        request: str | None = None,
        facts: dict[str, str] | None = None,
    ) -> None:
        s = self._state
        idempotency_key = f"{s.mentee_id}/{key}/{template}/{to.value}"
        await workflow.execute_activity_method(
            MailActivities.send_mail,
            MailRequest(
                idempotency_key=idempotency_key,
                template=template,
                to=to,
                mentee_id=s.mentee_id,
                mentor_id=s.mentor_id,
                program=s.program,
                phase=s.phase,
                request_id=request,
                facts=facts or {},
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )

    async def _release_seat(self) -> None:
        await workflow.execute_activity_method(
            MatchingActivities.release_seat,
            SeatRelease(mentee_id=self._state.mentee_id),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )

    async def _set_status(self, status: TandemStatus, kind: str) -> None:
        """Every change: search attributes, current details, event log and projection."""
        s = self._state
        s.status = status
        s.event_seq += 1
        s.updated_at = workflow.now()
        self._refresh_visibility()
        await workflow.execute_activity_method(
            EventActivities.record_event,
            StatusEvent(seq=s.event_seq, at=workflow.now(), kind=kind, state=s),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )

    def _refresh_visibility(self) -> None:
        workflow.upsert_search_attributes(
            sa.updates(self._state, workflow.info().typed_search_attributes)
        )
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
        return "\n\n".join(lines)


def _days(value: timedelta) -> str:
    return f"{value / timedelta(days=1):g}"
