"""Every answer rule in one place: which request an answer goes to, who may give it, in
which status, and which intents each request allows (``tandem.answers.ALLOWED``)."""

from __future__ import annotations

from tandem.answers import ALLOWED, STANDING, Answer, Intent, RequestKind, request_id, request_kind
from tandem.lifecycle.due import decision_id, phase_check_id
from tandem.lifecycle.rules import Rules
from tandem.models import FINAL_STATUSES, Role, TandemState, TandemStatus

PEOPLE = (Role.MENTEE, Role.MENTOR)
#: Statuses in which the pair is matched and a seat is held.
MATCHED = frozenset(
    {TandemStatus.INTRODUCED, TandemStatus.DECIDING, TandemStatus.ACTIVE, TandemStatus.PAUSED}
)
DECIDING = frozenset({TandemStatus.INTRODUCED, TandemStatus.DECIDING})
RUNNING = frozenset({TandemStatus.ACTIVE, TandemStatus.PAUSED})
#: The request id of answers the office takes by phone that belong to no open request.
OFFICE_PHONE = request_id(RequestKind.OFFICE, "phone")


class Refused(Exception):
    """The answer or command does not fit the tandem's state; nothing changed. The message is
    shown to the operator or logged as the reason: ids and status only."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def person_of(state: TandemState, role: Role) -> str | None:
    """Who holds ``role`` in this tandem now."""
    if role is Role.MENTEE:
        return state.mentee_id
    if role is Role.MENTOR:
        return state.mentor_id
    return None


def open_shadowing(state: TandemState) -> str | None:
    return next((k for k in state.requests if k.startswith("shadowing:")), None)


def latest_nudge(state: TandemState, role: Role) -> str | None:
    rid = request_id(RequestKind.NUDGE, state.nudges_sent)
    request = state.requests.get(rid)
    return rid if request is not None and role in request.who else None


def office_request(state: TandemState, role: Role, intent: Intent) -> str:
    """The request an answer taken by the office (phone, in person) goes to.

    The CLI names it in the answer, so running the same command twice is the same answer.
    """
    if intent in (Intent.CONTINUE, Intent.DECLINE) and role is Role.MENTOR:
        shadowing = open_shadowing(state)
        if shadowing is not None and state.status in MATCHED:
            return shadowing
    if intent in (Intent.CONTINUE, Intent.DECLINE, Intent.UNDECIDED):
        return decision_id(state)
    if intent is Intent.PHASE_DONE:
        return phase_check_id(state)
    if intent in (Intent.MET, Intent.SNOOZE, Intent.SHADOWING):
        return latest_nudge(state, role) or OFFICE_PHONE
    return OFFICE_PHONE


def check_answer(state: TandemState, rules: Rules, answer: Answer) -> str:
    """The id of the request ``answer`` goes to, or ``Refused`` with the reason."""
    role, intent = answer.role, answer.intent
    if role is Role.COORDINATOR:
        return _check_proposal_answer(state, answer)
    if role not in PEOPLE:
        raise Refused("only the mentor or the mentee can answer")
    if state.status in FINAL_STATUSES:
        raise Refused(f"the tandem is {state.status.value}")
    holder = person_of(state, role)
    if holder is None:
        raise Refused(f"this tandem has no {role.value} now")
    if answer.person_id is not None and answer.person_id != holder:
        raise Refused(f"the answer is not from the tandem's current {role.value}")
    try:
        kind = request_kind(answer.request_id)
    except ValueError as err:
        raise Refused("unknown request") from err
    rid = answer.request_id
    if kind is RequestKind.OFFICE:
        rid = office_request(state, role, intent)
        kind = request_kind(rid)
    if intent not in ALLOWED[kind]:
        raise Refused(f"'{intent.value}' is not an answer to this request")
    _check_intent(state, rules, kind, role, intent)
    if kind not in STANDING and rid != phase_check_id(state):
        # A request is open for its current round and its people only. The phase check of
        # the current phase stands: the mentee may say the new phase began before we ask.
        request = state.requests.get(rid)
        if request is None and _late_contact(state, rid, intent):
            return rid
        if request is None or request.round != state.rematches or role not in request.who:
            raise Refused("this request is closed")
    return rid


def _check_proposal_answer(state: TandemState, answer: Answer) -> str:
    """The coordinator answers one thing: the proposal of the match in front of them."""
    if state.status is not TandemStatus.PROPOSED:
        raise Refused(f"no match waits for approval (the tandem is {state.status.value})")
    rid = request_id(RequestKind.PROPOSAL, state.rematches)
    if answer.request_id not in (rid, OFFICE_PHONE):
        raise Refused("this request is closed")
    if answer.intent not in (Intent.CONTINUE, Intent.DECLINE):
        raise Refused(f"'{answer.intent.value}' is not an answer to this request")
    return rid


def _late_contact(state: TandemState, rid: str, intent: Intent) -> bool:
    """A "we met" to a check-in that newer ones have replaced still says they met: taken as
    contact, if the check-in was of this pairing (not of a mentor before a rematch)."""
    if intent is not Intent.MET or request_kind(rid) is not RequestKind.NUDGE:
        return False
    number = rid.partition(":")[2]
    return number.isdigit() and state.first_nudge_of_pairing <= int(number) <= state.nudges_sent


def _check_intent(
    state: TandemState, rules: Rules, kind: RequestKind, role: Role, intent: Intent
) -> None:
    s = state
    if intent in (Intent.CONTINUE, Intent.DECLINE, Intent.UNDECIDED) and (
        kind is not RequestKind.SHADOWING
    ):
        if s.status not in DECIDING:
            raise Refused("no decision is asked now")
        if s.decision.outcome is not None:
            raise Refused("the decision is already made")
        given = s.decision.answers.get(role)
        if given is not None and given != intent.value:
            raise Refused(f"the {role.value} already answered '{given}'")
    if kind is RequestKind.SHADOWING and role is not Role.MENTOR:
        raise Refused("no shadowing request is open")
    if intent is Intent.SHADOWING and (role is not Role.MENTEE or s.status not in MATCHED):
        raise Refused("only the mentee of a running tandem can ask for shadowing")
    if intent is Intent.PHASE_DONE:
        if role is not Role.MENTEE:
            raise Refused("only the mentee confirms a new phase")
        if rules.next_phase(s.phase) is None:
            raise Refused("there is no next phase to confirm")
        if s.status not in RUNNING:
            raise Refused("phases change only in a running tandem")
    if intent is Intent.SNOOZE and s.status is not TandemStatus.ACTIVE:
        raise Refused("check-ins are not running now")
    if intent is Intent.MET and s.status not in MATCHED:
        raise Refused("no tandem to meet in yet")
