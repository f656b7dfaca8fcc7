"""Every transition of a tandem: ``decide(state, rules, now, event) -> Transition``.

Pure: the same input gives the same output, nothing is done here. The returned effects are
what the workflow must carry out, in order. ``Refused`` means nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tandem.answers import Answer, Intent, RequestKind, request_id, request_kind
from tandem.durations import every
from tandem.lifecycle.answer_rules import (
    MATCHED,
    PEOPLE,
    Refused,
    check_answer,
    open_shadowing,
    person_of,
)
from tandem.lifecycle.due import (
    Due,
    DueKind,
    decision_id,
    due_items,
    phase_check_id,
    proposal_id,
)
from tandem.lifecycle.effects import (
    Effect,
    FindMentor,
    RecordEvent,
    ReleaseSeat,
    ResendMails,
    RevokeTokens,
    SendMail,
    TandemRef,
    Template,
)
from tandem.lifecycle.events import (
    AdvancePhase,
    AnswerGiven,
    ChangeCadence,
    EffectsFailed,
    EndTandem,
    Enrolled,
    Event,
    ForgetPerson,
    MailFailed,
    MailsResent,
    MatchFound,
    MentorsChanged,
    PauseTandem,
    Rematch,
    ResumeTandem,
    RetryRequested,
    Tick,
)
from tandem.lifecycle.rules import Rules
from tandem.messages import FailedMail, MatchRequest
from tandem.models import (
    FINAL_STATUSES,
    DecisionState,
    OpenRequest,
    Role,
    TandemState,
    TandemStatus,
)

__all__ = ["NeedsAttention", "Refused", "Transition", "decide"]

#: "Later" without a number: the check-in comes again after this (at most one period).
DEFAULT_SNOOZE = timedelta(weeks=2)
#: "Later" to the phase check without a number: asked again after this.
DEFAULT_PHASE_SNOOZE = timedelta(weeks=4)
KEEP_ANSWER_IDS = 200
#: Refused mails a tandem remembers for ``tandem retry`` at most.
KEEP_FAILED_MAILS = 50
#: What a tandem that needs attention still takes: the fix, the end, and facts about effects.
_WHILE_STALLED = (
    RetryRequested,
    EndTandem,
    ForgetPerson,
    MatchFound,
    MailFailed,
    MailsResent,
    EffectsFailed,
)


class NeedsAttention(Refused):
    """Refused for now: an activity failed for good and the office has to fix its cause."""


@dataclass
class Transition:
    state: TandemState
    effects: list[Effect] = field(default_factory=list)
    #: What the caller is told (an answer's confirmation, an operator's result).
    message: str = ""
    #: The answer was taken before: nothing changed.
    duplicate: bool = False
    #: Who the effects are about (``None`` only when there are no effects).
    tandem: TandemRef | None = None


def decide(state: TandemState, rules: Rules, now: datetime, event: Event) -> Transition:
    """The next state and its effects. Raises ``Refused`` for what the state does not allow."""
    if isinstance(event, AnswerGiven) and event.answer.answer_id in state.answer_ids:
        return Transition(state, duplicate=True, message="already taken")
    if isinstance(event, MailFailed | MailsResent | EffectsFailed):
        # Facts about effects already carried out: recorded in any status, even a final one.
        return _step(state, rules, now, event)
    if state.status in FINAL_STATUSES:
        if isinstance(event, MatchFound) and event.mentor_id is not None:
            # A seat taken for a tandem that ended meanwhile goes back at once.
            seat = ReleaseSeat(mentee_id=state.mentee_id, mentor_id=event.mentor_id)
            return Transition(state, [seat], tandem=TandemRef.of(state, now, state.event_seq))
        if isinstance(event, Tick | MentorsChanged | MatchFound | Enrolled):
            return Transition(state)
        raise Refused(f"the tandem is {state.status.value}")
    if state.attention is not None and not isinstance(event, _WHILE_STALLED):
        if isinstance(event, Tick | MentorsChanged | Enrolled):
            return Transition(state)
        raise NeedsAttention(
            f"the tandem needs attention ({state.attention}): fix the cause, then run"
            f" `tandem retry {state.mentee_id}`"
        )
    return _step(state, rules, now, event)


def _step(state: TandemState, rules: Rules, now: datetime, event: Event) -> Transition:
    step = _Step(state.model_copy(deep=True), rules, now)
    step.handle(event)
    return step.finish()


class _Step:
    """One transition being built: the new state, its mails and its event-log rows."""

    def __init__(self, state: TandemState, rules: Rules, now: datetime) -> None:
        self.s = state
        self.rules = rules
        self.now = now
        self.effects: list[Effect] = []
        self.kinds: list[str] = []
        self.message = ""
        self._seq: int | None = None
        self._written_as: tuple[str, str | None] | None = None  # (phase, mentor) of the mails
        #: Effects that wait for this step's event row (a match looked for at enrolment).
        self.after_record: list[Effect] = []

    # -- building blocks ------------------------------------------------------------------

    @property
    def seq(self) -> int:
        """The sequence number of this transition (the first of its event-log rows)."""
        if self._seq is None:
            self._seq = self.s.event_seq + 1
        return self._seq

    def record(self, kind: str) -> None:
        self.kinds.append(kind)
        _ = self.seq

    def mail(
        self,
        template: Template,
        to: Role,
        *,
        request: str | None = None,
        facts: dict[str, str] | None = None,
    ) -> None:
        """Mail one person of the tandem (never a mentor the tandem does not have)."""
        s = self.s
        if to is Role.MENTOR and s.mentor_id is None:
            return
        _ = self.seq
        if self._written_as is None:
            self._written_as = (s.phase, s.mentor_id)
        elif to is not Role.COORDINATOR:
            assert self._written_as == (s.phase, s.mentor_id), "one tandem per transition"
        mail = SendMail(template=template, to=to, request_id=request, facts=facts or {})
        self.effects.append(mail)

    def mail_pair(self, template: Template, facts: dict[str, str] | None = None) -> None:
        for role in PEOPLE:
            self.mail(template, role, facts=facts)

    def cadence(self) -> timedelta:
        return timedelta(days=self.s.cadence_days)

    def undecided(self) -> list[Role]:
        return [r for r in PEOPLE if r not in self.s.decision.answers]

    def open_request(self, rid: str, who: list[Role], **fields: object) -> OpenRequest:
        s = self.s
        people = {role: person for role in who if (person := person_of(s, role)) is not None}
        request = OpenRequest.model_validate(
            {"kind": request_kind(rid).value, "round": s.rematches, "who": people, **fields}
        )
        s.requests[rid] = request
        return request

    def close_request(self, rid: str) -> None:
        """The question is answered or stale: its reply tokens stop working too."""
        if self.s.requests.pop(rid, None) is not None:
            self.effects.append(RevokeTokens(mentee_id=self.s.mentee_id, request_ids=[rid]))

    def finish(self) -> Transition:
        s = self.s
        if not self.kinds:
            assert self._written_as is None, "a mail needs an event"
            ref = TandemRef.of(s, self.now, s.event_seq) if self.effects else None
            return Transition(s, self.effects, self.message, tandem=ref)
        s.updated_at = self.now
        s.event_seq = self.seq + len(self.kinds) - 1
        self.effects.append(
            RecordEvent(
                kinds=self.kinds,
                status=s.status,
                mentor_id=s.mentor_id,
                cadence_days=s.cadence_days,
                next_nudge_at=s.next_nudge_at,
                last_contact_at=s.last_contact_at,
                rematches=s.rematches,
            )
        )
        ref = TandemRef.of(s, self.now, self.seq, self._written_as)
        return Transition(s, self.effects + self.after_record, self.message, tandem=ref)

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        match event:
            case Enrolled():
                self.s.enrolled_at = self.now
                self.s.status = TandemStatus.MATCHING
                self.s.next_match_at = self.now
                self.record("enrolled")
                if event.match_at_once:  # after the enrolment's row: the log reads in order
                    self.after_record.append(self.find_mentor())
            case Tick():
                items = due_items(self.s, self.rules)
                if items and items[0].at <= self.now:
                    self.fire(items[0])
            case MatchFound():
                self.match_found(event)
            case MentorsChanged():
                if self.s.status is TandemStatus.WAITING_FOR_MENTOR:
                    self.s.next_match_at = self.now
            case AnswerGiven():
                self.answer(event.answer)
            case AdvancePhase():
                self.advance(event.phase)
            case PauseTandem():
                self.pause(event.until)
            case ResumeTandem():
                if self.s.status is not TandemStatus.PAUSED:
                    raise Refused(f"the tandem is not paused (it is {self.s.status.value})")
                self.resume("resumed")
            case EndTandem():
                self.s.end_reason = event.reason
                self.end(TandemStatus.ENDED, "ended_by_office", Template.TANDEM_ENDED, "office")
            case Rematch():
                expected = event.expected_rematches
                if expected is not None and expected != self.s.rematches:
                    raise Refused("the tandem was rematched meanwhile")
                self.rematch()
            case ChangeCadence():
                self.change_cadence(event.days)
            case ForgetPerson():
                self.forget(event.person_id)
            case MailFailed():
                self.mail_failed(event.mail)
            case MailsResent():
                self.mails_resent(event.keys)
            case EffectsFailed():
                self.stalled(event.cause)
            case RetryRequested():
                self.retry()

    # -- time -----------------------------------------------------------------------------

    def find_mentor(self) -> FindMentor:
        """Look for a mentor now; the result (``MatchFound``) sets the next try."""
        s = self.s
        request = MatchRequest(
            mentee_id=s.mentee_id,
            program=s.program,
            excluded_mentor_ids=list(s.excluded_mentor_ids),
        )
        s.next_match_at = None
        return FindMentor(request=request)

    def fire(self, due: Due) -> None:
        s, kind = self.s, due.kind
        if kind is DueKind.MATCH:
            self.effects.append(self.find_mentor())
        elif kind in (DueKind.ASK_DECISION, DueKind.REASK_DECISION):
            self.ask_decision(again=kind is DueKind.REASK_DECISION)
        elif kind is DueKind.REMIND_DECISION:
            s.requests[decision_id(s)].reminded = True
            for role in self.undecided():
                self.mail(Template.DECISION_REMINDER, role, request=decision_id(s))
            self.record("decision_reminded")
        elif kind is DueKind.ESCALATE_DECISION:
            s.requests[decision_id(s)].escalated = True
            waiting = ",".join(role.value for role in self.undecided())
            self.mail(
                Template.DECISION_ESCALATION_COORDINATOR,
                Role.COORDINATOR,
                facts={"waiting_for": waiting},
            )
            self.record("decision_escalated")
        elif kind in (DueKind.REMIND_PROPOSAL, DueKind.ESCALATE_PROPOSAL):
            proposal = s.requests[proposal_id(s)]
            if kind is DueKind.REMIND_PROPOSAL:
                proposal.reminded = True
                self.mail_proposal(reminder=True)
                self.record("proposal_reminded")
            else:
                proposal.escalated = True
                self.mail_proposal(escalated=True)
                self.record("proposal_escalated")
        elif kind is DueKind.NUDGE:
            self.nudge()
        elif kind is DueKind.SNOOZE_OVER:
            assert due.role is not None
            self.snooze_over(due.role)
        elif kind in (DueKind.ASK_PHASE, DueKind.REASK_PHASE):
            self.ask_phase(again=kind is DueKind.REASK_PHASE)
        elif kind is DueKind.REMIND_PHASE:
            check = s.requests[phase_check_id(s)]
            check.reminded = True
            self.mail_phase_check(reminder=True)
            self.record("phase_check_reminded")
        elif kind is DueKind.ESCALATE_PHASE:
            s.requests[phase_check_id(s)].escalated = True
            nxt = self.rules.next_phase(s.phase) or ""
            self.mail(
                Template.PHASE_CHECK_UNANSWERED_COORDINATOR,
                Role.COORDINATOR,
                facts={"next_phase": nxt},
            )
            self.record("phase_check_unanswered")
        elif kind is DueKind.COMPLETE:
            self.end(TandemStatus.COMPLETED, "completed", Template.TANDEM_COMPLETED)
        elif kind is DueKind.RESUME:
            self.resume("resumed_automatically")

    # -- matching and the decision --------------------------------------------------------

    def match_found(self, found: MatchFound) -> None:
        s = self.s
        if s.status not in (TandemStatus.MATCHING, TandemStatus.WAITING_FOR_MENTOR):
            if found.mentor_id is not None:  # not looking any more: give the seat back
                self.effects.append(ReleaseSeat(mentee_id=s.mentee_id, mentor_id=found.mentor_id))
            return
        if found.mentor_id is None:
            s.next_match_at = self.now + self.rules.waiting_retry_every
            if s.status is TandemStatus.MATCHING:
                s.status = TandemStatus.WAITING_FOR_MENTOR
                self.record("no_mentor_free")
            if not s.coordinator_told_no_mentor:
                s.coordinator_told_no_mentor = True
                self.mail(Template.NO_MENTOR_COORDINATOR, Role.COORDINATOR)
                if not self.kinds:
                    self.record("coordinator_told_no_mentor")
            return
        s.mentor_id = found.mentor_id
        s.match_score = found.score
        s.match_reasons = list(found.reasons)
        s.coordinator_told_no_mentor = False
        s.next_match_at = None
        s.decision = DecisionState()
        if self.rules.needs_approval(found.score):
            self.propose()
            return
        self.introduce()

    def propose(self) -> None:
        """The match waits for the coordinator: the proposal goes to the office with its
        score and reasons; nobody else is told until it is approved."""
        s = self.s
        s.status = TandemStatus.PROPOSED
        proposal = proposal_id(s)
        self.open_request(proposal, [Role.COORDINATOR], asked_at=self.now)
        self.mail_proposal()
        self.record("proposed")
        self.message = "the match waits for the coordinator's approval"

    def mail_proposal(self, *, reminder: bool = False, escalated: bool = False) -> None:
        s = self.s
        facts = {
            "score": "" if s.match_score is None else f"{s.match_score:g}",
            "reasons": "; ".join(s.match_reasons),
            "mentor_id": s.mentor_id or "",
        }
        if self.rules.min_score is not None:
            facts["min_score"] = f"{self.rules.min_score:g}"
        if reminder:
            facts["reminder"] = "1"
        if escalated:
            facts["escalated"] = "1"
        self.mail(
            Template.PROPOSAL_COORDINATOR, Role.COORDINATOR, request=proposal_id(s), facts=facts
        )

    def decide_proposal(self, approved: bool) -> None:
        """``ok``: the pair is introduced. ``nein``: the seat goes back, that mentor is left
        out and the next proposal follows; it does not count against the pair's rematches
        (they never knew)."""
        s = self.s
        self.close_request(proposal_id(s))
        if approved:
            self.record("proposal_approved")
            self.introduce()
            self.message = "approved: both are introduced"
            return
        self.record("proposal_rejected")
        self.unmatch()
        s.rematches -= 1
        s.status = TandemStatus.MATCHING
        s.next_match_at = self.now
        self.message = "rejected: looking for another mentor"

    def introduce(self) -> None:
        s = self.s
        s.introduced_at = self.now
        s.status = TandemStatus.INTRODUCED
        decision = decision_id(s)
        self.open_request(decision, list(PEOPLE))
        self.mail(Template.INTRODUCTION_MENTEE, Role.MENTEE, request=decision)
        self.mail(Template.INTRODUCTION_MENTOR, Role.MENTOR, request=decision)
        self.record("introduced")

    def ask_decision(self, *, again: bool) -> None:
        s = self.s
        decision = decision_id(s)
        request = s.requests.get(decision) or self.open_request(decision, list(PEOPLE))
        request.asks += 1
        request.asked_at = self.now
        request.reminded = False
        request.escalated = False
        request.reask_at = None
        s.status = TandemStatus.DECIDING
        for role in self.undecided():
            self.mail(Template.DECISION_REQUEST, role, request=decision)
        self.record("decision_asked_again" if again else "decision_asked")

    def settle_decision(self) -> None:
        """Both said yes -> active; one said no -> rematch. Otherwise keep waiting."""
        d = self.s.decision
        if Intent.DECLINE.value in d.answers.values():
            d.outcome = Intent.DECLINE.value
            self.declined()
        elif all(d.answers.get(r) == Intent.CONTINUE.value for r in PEOPLE):
            d.outcome = Intent.CONTINUE.value
            self.activate()

    def activate(self) -> None:
        s = self.s
        self.close_request(decision_id(s))
        s.active_since = self.now
        if s.phase_started_at is None:
            s.phase_started_at = self.now
        s.next_nudge_at = self.now + self.cadence()
        s.missed_periods = 0
        s.status = TandemStatus.ACTIVE
        self.mail_pair(Template.TANDEM_CONFIRMED, facts={"cadence_days": _days(self.cadence())})
        self.record("activated")

    def declined(self) -> None:
        s = self.s
        self.mail(Template.DECISION_DECLINED, Role.MENTEE)
        self.mail(Template.DECISION_DECLINED, Role.MENTOR)
        self.unmatch()
        if s.rematches > self.rules.max_rematches:
            s.status = TandemStatus.NEEDS_COORDINATOR
            self.mail(
                Template.NEEDS_COORDINATOR_COORDINATOR,
                Role.COORDINATOR,
                facts={"rematches": str(s.rematches)},
            )
            self.record("needs_coordinator")
        else:
            s.status = TandemStatus.MATCHING
            s.next_match_at = self.now
            self.record("rematching")

    def unmatch(self) -> None:
        """Release the seat, revoke that mentor's reply tokens, exclude them, count it."""
        s = self.s
        old = s.mentor_id
        if old is not None:
            self.effects.append(RevokeTokens(mentee_id=s.mentee_id, person_id=old))
            self.effects.append(ReleaseSeat(mentee_id=s.mentee_id, mentor_id=old))
            if old not in s.excluded_mentor_ids:
                s.excluded_mentor_ids.append(old)
        s.mentor_id = None
        s.match_score = None
        s.match_reasons = []
        s.rematches += 1
        s.first_nudge_of_pairing = s.nudges_sent + 1
        s.decision = DecisionState()
        s.introduced_at = None
        s.active_since = None
        s.next_nudge_at = None
        s.snoozed_until.clear()
        for rid in list(s.requests):
            self.close_request(rid)

    # -- the active tandem ----------------------------------------------------------------

    def nudge(self) -> None:
        s, now = self.s, self.now
        period_start = s.last_nudge_at or s.active_since or now
        if s.last_contact_at is None or s.last_contact_at < period_start:
            s.missed_periods += 1
        else:
            s.missed_periods = 0
        s.nudges_sent += 1
        s.last_nudge_at = now
        s.next_nudge_at = now + self.cadence()
        nudge = request_id(RequestKind.NUDGE, s.nudges_sent)
        self.open_request(nudge, list(PEOPLE))
        self.close_request(request_id(RequestKind.NUDGE, s.nudges_sent - 2))
        for role in PEOPLE:
            snoozed = s.snoozed_until.get(role)
            if snoozed is not None and snoozed > now:
                continue  # asked to be reminded later than this: the snooze's end reminds
            s.snoozed_until.pop(role, None)
            self.mail(
                Template.NUDGE,
                role,
                request=nudge,
            )
        if s.missed_periods >= 2 and not s.at_risk:
            s.at_risk = True
            self.mail(Template.AT_RISK_COORDINATOR, Role.COORDINATOR)
            self.record("at_risk")
        else:
            self.record("nudged")

    def snooze_over(self, role: Role) -> None:
        s = self.s
        s.snoozed_until.pop(role, None)
        nudge = request_id(RequestKind.NUDGE, s.nudges_sent)
        request = s.requests.get(nudge) or self.open_request(nudge, [role])
        if (person := person_of(s, role)) is not None:
            request.who[role] = person
        self.mail(
            Template.NUDGE,
            role,
            request=nudge,
            facts={"audience": role.value, "phase": s.phase},
        )
        self.record(f"snooze_over_{role.value}")

    def ask_phase(self, *, again: bool) -> None:
        s = self.s
        check_id = phase_check_id(s)
        check = s.requests.get(check_id) or self.open_request(check_id, [Role.MENTEE])
        check.asks += 1
        check.asked_at = self.now
        check.reask_at = None
        check.reminded = False
        self.mail_phase_check(reminder=False)
        self.record("phase_check_asked_again" if again else "phase_check_asked")

    def mail_phase_check(self, *, reminder: bool) -> None:
        facts = {"next_phase": self.rules.next_phase(self.s.phase) or ""}
        if reminder:
            facts["reminder"] = "yes"
        self.mail(Template.PHASE_CHECK, Role.MENTEE, request=phase_check_id(self.s), facts=facts)

    def change_phase(self, phase: str, kind: str) -> None:
        s = self.s
        self.close_request(phase_check_id(s))
        s.phase = phase
        s.phase_started_at = self.now
        s.expected_phase_end = None
        s.cadence_days = s.own_cadence_days or self.rules.cadence(phase) / timedelta(days=1)
        if s.status is TandemStatus.ACTIVE:
            s.next_nudge_at = self.now + self.cadence()
        facts = {"phase": phase, "cadence_days": _days(self.cadence())}
        self.mail(Template.PHASE_CHANGED, Role.MENTEE, facts=facts)
        if s.status in MATCHED:
            self.mail(Template.PHASE_CHANGED, Role.MENTOR, facts=facts)
        self.record(kind)

    def pause(self, until: datetime | None) -> None:
        s = self.s
        if s.status is not TandemStatus.ACTIVE:
            raise Refused(f"only an active tandem can be paused (it is {s.status.value})")
        if until is not None and until <= self.now:
            raise Refused("the pause must end in the future")
        s.paused_until = until
        s.next_nudge_at = None
        s.snoozed_until.clear()
        s.status = TandemStatus.PAUSED
        self.mail_pair(Template.PAUSED, facts={"until": until.date().isoformat()} if until else {})
        self.record("paused")

    def resume(self, kind: str) -> None:
        s = self.s
        s.paused_until = None
        s.next_nudge_at = self.now + self.cadence()
        s.last_nudge_at = self.now  # a pause is no missed period
        s.status = TandemStatus.ACTIVE
        self.mail_pair(Template.RESUMED)
        self.record(kind)

    def end(
        self,
        status: TandemStatus,
        kind: str,
        template: Template,
        by: str = "",
        *,
        tell_mentee: bool = True,
    ) -> None:
        """Completed or ended: tell the mentee (and the mentor, if matched), release the seat,
        revoke every reply token of the tandem, tell the office if it ended."""
        s = self.s
        was_matched = s.status in MATCHED and s.mentor_id is not None
        self.effects.append(RevokeTokens(mentee_id=s.mentee_id))
        if s.mentor_id is not None:
            self.effects.append(ReleaseSeat(mentee_id=s.mentee_id, mentor_id=s.mentor_id))
        facts = {"by": by} if by else {}
        if tell_mentee:
            self.mail(template, Role.MENTEE, facts=facts)
        if was_matched:
            self.mail(template, Role.MENTOR, facts=facts)
        if status is TandemStatus.ENDED:
            self.mail(Template.ENDED_COORDINATOR, Role.COORDINATOR, facts={"by": by or "office"})
        s.status = status
        s.attention = None
        s.attention_since = None
        s.next_nudge_at = None
        s.next_match_at = None
        s.paused_until = None
        s.snoozed_until.clear()
        s.requests.clear()
        self.record(kind)

    # -- faults: what could not be carried out ------------------------------------------

    def mail_failed(self, mail: FailedMail) -> None:
        """Recorded once per mail; the office is told who (role and id) and the code."""
        s = self.s
        if mail.idempotency_key in s.failed_mails:
            return
        s.failed_mails = [*s.failed_mails, mail.idempotency_key][-KEEP_FAILED_MAILS:]
        self.record("mail_failed")
        if mail.to is not Role.COORDINATOR:  # the office's own address: nobody else to tell
            facts = {
                "role": mail.to.value,
                "person_id": mail.person_id or "",
                "template": mail.template,
                "code": mail.failure,
            }
            self.mail(Template.MAIL_FAILED_COORDINATOR, Role.COORDINATOR, facts=facts)

    def mails_resent(self, keys: list[str]) -> None:
        s = self.s
        if not any(k in s.failed_mails for k in keys):
            return
        s.failed_mails = [k for k in s.failed_mails if k not in keys]
        self.record("mail_resent")

    def stalled(self, cause: str) -> None:
        s = self.s
        s.attention = cause
        s.attention_since = self.now
        self.record("needs_attention")
        self.mail(Template.NEEDS_ATTENTION_COORDINATOR, Role.COORDINATOR, facts={"cause": cause})
        self.message = f"needs attention ({cause})"

    def retry(self) -> None:
        s = self.s
        if s.attention is None and not s.failed_mails:
            raise Refused("nothing to retry: the tandem needs no attention and no mail failed")
        s.attention = None
        s.attention_since = None
        self.record("retried")
        if s.failed_mails:
            self.effects.append(ResendMails(keys=list(s.failed_mails)))
        self.message = "retried"

    # -- operator commands ----------------------------------------------------------------

    def advance(self, phase: str) -> None:
        s = self.s
        if not self.rules.has_phase(phase):
            phases = ", ".join(self.rules.phase_names)
            raise Refused(f"programme {s.program} has no phase '{phase}' ({phases})")
        if phase == s.phase:
            raise Refused(f"the tandem is already in phase {s.phase}")
        self.change_phase(phase, "phase_advanced")
        self.message = f"phase is now {phase}"

    def rematch(self) -> None:
        s = self.s
        if s.status in (TandemStatus.MATCHING, TandemStatus.WAITING_FOR_MENTOR):
            raise Refused("the tandem is already looking for a mentor")
        if s.status is TandemStatus.PROPOSED:  # nobody was told: the proposal is rejected
            self.decide_proposal(approved=False)
            return
        for role in PEOPLE:
            self.mail(Template.DECISION_DECLINED, role)
        self.unmatch()
        s.status = TandemStatus.MATCHING
        s.next_match_at = self.now
        self.record("rematch_by_office")
        self.message = "looking for a new mentor"

    def forget(self, person_id: str) -> None:
        """``tandem forget``: the mentee's tandem ends without a mail to them; a mentor leaves
        it (the mentee is told neutrally and gets another). The id leaves the state."""
        s = self.s
        if person_id == s.mentee_id:
            s.end_reason = "erasure"
            self.end(
                TandemStatus.ENDED,
                "ended_by_office",
                Template.TANDEM_ENDED,
                "office",
                tell_mentee=False,
            )
            self.message = "ended; the mentee is not written to"
        elif person_id == s.mentor_id:
            self.mail(Template.MENTOR_LEFT, Role.MENTEE)
            self.unmatch()
            s.rematches -= 1  # not the pair's doing: it does not count against the limit
            s.status = TandemStatus.MATCHING
            s.paused_until = None
            s.next_match_at = self.now
            self.record("mentor_left")
            self.message = "the mentor left; looking for a new one"
        else:
            self.message = "nothing to change"
        s.excluded_mentor_ids = [m for m in s.excluded_mentor_ids if m != person_id]

    def change_cadence(self, days: float) -> None:
        s = self.s
        s.own_cadence_days = days
        s.cadence_days = days
        if s.status is TandemStatus.ACTIVE:
            base = s.last_nudge_at or s.active_since or self.now
            s.next_nudge_at = max(base + self.cadence(), self.now)
        self.record("cadence_changed")
        self.message = f"check-ins {every(days, 'en')}"

    # -- answers --------------------------------------------------------------------------

    def answer(self, answer: Answer) -> None:
        s, role, intent = self.s, answer.role, answer.intent
        rid = check_answer(s, self.rules, answer)
        kind = request_kind(rid)
        s.answer_ids = [*s.answer_ids, answer.answer_id][-KEEP_ANSWER_IDS:]
        if kind is RequestKind.PROPOSAL:
            self.decide_proposal(intent is Intent.CONTINUE)
        elif kind is RequestKind.SHADOWING:
            self.close_request(rid)
            accepted = "yes" if intent is Intent.CONTINUE else "no"
            self.mail(Template.SHADOWING_ANSWER, Role.MENTEE, facts={"accepted": accepted})
            self.record(f"shadowing_{accepted}")
            self.message = "shadowing answer passed on"
        elif intent in (Intent.CONTINUE, Intent.DECLINE):
            if s.decision.answers.get(role) == intent.value:
                self.message = "decision already recorded"
                return
            s.decision.answers[role] = intent.value
            self.record(f"decision_{intent.value}_{role.value}")
            self.settle_decision()
            self.message = "decision recorded"
        elif intent is Intent.UNDECIDED:
            decision = decision_id(s)
            request = s.requests.get(decision) or self.open_request(decision, list(PEOPLE))
            if s.status is TandemStatus.INTRODUCED:
                s.status = TandemStatus.DECIDING
                request.asked_at = self.now
            request.reask_at = self.now + self.cadence()
            self.record("decision_undecided")
            self.message = "we will ask again after the next period"
        elif intent is Intent.MET:
            met = answer.details.met_on
            at = datetime.combine(met, datetime.min.time(), self.now.tzinfo) if met else self.now
            at = min(at, self.now)
            s.last_contact_at = max(s.last_contact_at or at, at)
            s.missed_periods = 0
            s.at_risk = False
            self.record("contact")
            self.message = "contact recorded"
        elif intent is Intent.SNOOZE:
            weeks = answer.details.snooze_weeks
            if kind is RequestKind.PHASE_CHECK:
                check = s.requests.get(rid) or self.open_request(rid, [Role.MENTEE])
                check.asked_at = check.asked_at or self.now
                check.reask_at = self.now + (
                    timedelta(weeks=weeks) if weeks else DEFAULT_PHASE_SNOOZE
                )
                self.record("phase_check_snoozed")
                self.message = "we will ask again later"
            else:
                delay = timedelta(weeks=weeks) if weeks else min(DEFAULT_SNOOZE, self.cadence())
                s.snoozed_until[role] = self.now + delay
                self.record("snoozed")
                self.message = "your next check-in is moved"
        elif intent is Intent.HELP:
            self.mail(Template.HELP_COORDINATOR, Role.COORDINATOR, facts={"role": role.value})
            self.record(f"help_{role.value}")
            self.message = "the programme office will get in touch"
        elif intent is Intent.STOP:
            by = role.value
            self.end(TandemStatus.ENDED, f"stopped_by_{by}", Template.TANDEM_ENDED, by)
            self.message = "the tandem has ended"
        elif intent is Intent.SHADOWING:
            if open_shadowing(s) is not None:
                self.message = "the mentor has been asked already"
                return
            s.shadowing_requests += 1
            shadowing = request_id(RequestKind.SHADOWING, s.shadowing_requests)
            self.open_request(shadowing, [Role.MENTOR])
            self.mail(Template.SHADOWING_REQUEST, Role.MENTOR, request=shadowing)
            self.record("shadowing_asked")
            self.message = "the mentor is asked"
        elif intent is Intent.PHASE_DONE:
            nxt = self.rules.next_phase(s.phase)
            assert nxt is not None  # check_answer refuses otherwise
            self.change_phase(nxt, "phase_confirmed")
            self.message = f"phase is now {nxt}"


def _days(value: timedelta) -> str:
    return f"{value / timedelta(days=1):g}"
