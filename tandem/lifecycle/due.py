"""What is due when: one table for the whole lifecycle.

The workflow sleeps until ``next_deadline``; a ``Tick`` then fires the earliest item of
``due_items``. Both read the same list, so a deadline and what happens at it can never drift
apart.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from enum import StrEnum
from typing import NamedTuple

from tandem.answers import RequestKind, request_id
from tandem.lifecycle.rules import Rules
from tandem.models import OpenRequest, Role, TandemState, TandemStatus


class DueKind(StrEnum):
    COMPLETE = "complete"  # the last phase's duration is over
    RESUME = "resume"  # a pause with an end date
    MATCH = "match"  # look for a mentor (again)
    ASK_DECISION = "ask_decision"  # the first-meeting window is over
    REASK_DECISION = "reask_decision"  # someone was undecided
    ESCALATE_DECISION = "escalate_decision"
    REMIND_DECISION = "remind_decision"
    ASK_PHASE = "ask_phase"  # the phase's expected end is near: ask the mentee
    REASK_PHASE = "reask_phase"  # the mentee said "later"
    ESCALATE_PHASE = "escalate_phase"
    REMIND_PHASE = "remind_phase"
    NUDGE = "nudge"  # the check-in of this period
    SNOOZE_OVER = "snooze_over"  # one person asked to be reminded later
    REMIND_PROPOSAL = "remind_proposal"  # the coordinator has not approved the match yet
    ESCALATE_PROPOSAL = "escalate_proposal"


_ORDER = {kind: i for i, kind in enumerate(DueKind)}


class Due(NamedTuple):
    at: datetime
    kind: DueKind
    role: Role | None = None


def decision_id(state: TandemState) -> str:
    return request_id(RequestKind.DECISION, state.rematches)


def proposal_id(state: TandemState) -> str:
    return request_id(RequestKind.PROPOSAL, state.rematches)


def phase_check_id(state: TandemState) -> str:
    return request_id(RequestKind.PHASE_CHECK, state.phase)


def phase_end(state: TandemState, rules: Rules) -> datetime | None:
    """When the current phase is expected to end: the mentee's own date for a phase with a
    successor, else the phase's duration from its start."""
    if state.expected_phase_end is not None and rules.next_phase(state.phase) is not None:
        return datetime.combine(state.expected_phase_end, time(), UTC)
    if state.phase_started_at is None or not rules.has_phase(state.phase):
        return None
    duration = rules.phase(state.phase).duration
    return state.phase_started_at + duration if duration else None


def due_items(state: TandemState, rules: Rules) -> list[Due]:
    """Everything that will fire by itself in the current status, earliest first."""
    s, items = state, list[Due]()
    if s.attention is not None:  # waits for the office's fix (``tandem retry``)
        return items
    if s.status in (TandemStatus.MATCHING, TandemStatus.WAITING_FOR_MENTOR):
        if s.next_match_at is not None:
            items.append(Due(s.next_match_at, DueKind.MATCH))
    elif s.status is TandemStatus.PROPOSED:
        request = s.requests.get(proposal_id(s))
        if request is not None and request.asked_at is not None:
            items += _follow_ups(request, rules, PROPOSAL_FOLLOW_UPS)
    elif s.status is TandemStatus.INTRODUCED and s.introduced_at is not None:
        items.append(Due(s.introduced_at + rules.first_meeting_window, DueKind.ASK_DECISION))
    elif s.status is TandemStatus.DECIDING:
        request = s.requests.get(decision_id(s))
        if request is not None and request.asked_at is not None:
            items += _follow_ups(request, rules, DECISION_FOLLOW_UPS)
    elif s.status is TandemStatus.ACTIVE:
        end = phase_end(s, rules)
        if s.next_nudge_at is not None:
            items.append(Due(s.next_nudge_at, DueKind.NUDGE))
        for role, until in s.snoozed_until.items():
            items.append(Due(until, DueKind.SNOOZE_OVER, role))
        if rules.next_phase(s.phase) is None:
            if end is not None:
                items.append(Due(end, DueKind.COMPLETE))
        else:
            check = s.requests.get(phase_check_id(s))
            if check is None or check.asked_at is None:
                if end is not None:
                    items.append(Due(end - rules.phase_check_lead, DueKind.ASK_PHASE))
            else:
                items += _follow_ups(check, rules, PHASE_FOLLOW_UPS)
    elif s.status is TandemStatus.PAUSED and s.paused_until is not None:
        items.append(Due(s.paused_until, DueKind.RESUME))
    return sorted(items, key=lambda d: (d.at, _ORDER[d.kind], d.role or ""))


#: (asked again, reminder, escalation) of a request: the same rule for every question asked.
DECISION_FOLLOW_UPS = (DueKind.REASK_DECISION, DueKind.REMIND_DECISION, DueKind.ESCALATE_DECISION)
PHASE_FOLLOW_UPS = (DueKind.REASK_PHASE, DueKind.REMIND_PHASE, DueKind.ESCALATE_PHASE)
#: A proposal is never asked again later: the first item is never due (no ``reask_at``).
PROPOSAL_FOLLOW_UPS = (DueKind.REMIND_PROPOSAL, DueKind.REMIND_PROPOSAL, DueKind.ESCALATE_PROPOSAL)


def _follow_ups(
    request: OpenRequest, rules: Rules, kinds: tuple[DueKind, DueKind, DueKind]
) -> list[Due]:
    """A request asked again later (the person said "later"), else reminded once after the
    reminder delay and escalated to the office once after the escalation delay."""
    reask, remind, escalate = kinds
    if request.reask_at is not None:
        return [Due(request.reask_at, reask)]
    assert request.asked_at is not None
    items = []
    if not request.reminded:
        items.append(Due(request.asked_at + rules.decision_reminder_after, remind))
    if not request.escalated:
        items.append(Due(request.asked_at + rules.decision_escalation_after, escalate))
    return items


#: What the workflow waits for, as the UI's timeline names its timer.
WAITING_FOR = {
    DueKind.COMPLETE: "end of the last phase",
    DueKind.RESUME: "end of the pause",
    DueKind.MATCH: "next search for a mentor",
    DueKind.ASK_DECISION: "decision after the first meeting",
    DueKind.REASK_DECISION: "decision, asked again",
    DueKind.ESCALATE_DECISION: "decision escalation",
    DueKind.REMIND_DECISION: "decision reminder",
    DueKind.ASK_PHASE: "phase check",
    DueKind.REASK_PHASE: "phase check, asked again",
    DueKind.ESCALATE_PHASE: "phase check escalation",
    DueKind.REMIND_PHASE: "phase check reminder",
    DueKind.NUDGE: "next check-in",
    DueKind.SNOOZE_OVER: 'check-in after "later"',
    DueKind.REMIND_PROPOSAL: "proposal reminder",
    DueKind.ESCALATE_PROPOSAL: "proposal escalation",
}


def waiting_for(state: TandemState, rules: Rules) -> str:
    """The timer's summary: "wait: next check-in" (ids and kinds only)."""
    items = due_items(state, rules)
    return f"wait: {WAITING_FOR[items[0].kind]}" if items else "wait: an answer or the office"


def next_deadline(state: TandemState, rules: Rules) -> datetime | None:
    """When the workflow must wake up next by itself (``None``: only a message wakes it)."""
    items = due_items(state, rules)
    return items[0].at if items else None
