"""Answers mentors and mentees give (by reply mail or by phone to the office), and the requests
they answer. Which intents a request allows lives here, in one table."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, Field

from tandem.models import Role, TandemStatus


class Intent(StrEnum):
    CONTINUE = "continue"  # yes: go on with the tandem / yes to a shadowing request
    DECLINE = "decline"  # no
    UNDECIDED = "undecided"  # ask again after the next period
    MET = "met"  # we met (optionally on a date)
    SNOOZE = "snooze"  # later (optionally in N weeks)
    HELP = "help"  # please have the office contact me
    STOP = "stop"  # end the tandem
    SHADOWING = "shadowing"  # mentee asks to accompany the mentor at work
    PHASE_DONE = "phase_done"  # mentee: the next phase has begun


class RequestKind(StrEnum):
    """What a mail asks; its reply token is bound to one request of one person."""

    INTRODUCTION = "introduction"
    DECISION = "decision"
    NUDGE = "nudge"
    PHASE_CHECK = "phase_check"
    SHADOWING = "shadowing"
    INFO = "info"  # a mail that asks nothing (confirmations, phase news): help/stop still work
    OFFICE = "office"  # answers the programme office records (`tandem answer`)
    PROPOSAL = "proposal"  # a match the coordinator approves ("ok") or rejects ("nein")


_ALWAYS = {Intent.HELP, Intent.STOP}

#: The answers each request allows. Anything else is refused with a list of these.
ALLOWED: dict[RequestKind, frozenset[Intent]] = {
    RequestKind.INTRODUCTION: frozenset({Intent.MET, *_ALWAYS}),
    RequestKind.DECISION: frozenset(
        {Intent.CONTINUE, Intent.DECLINE, Intent.UNDECIDED, Intent.MET, *_ALWAYS}
    ),
    RequestKind.NUDGE: frozenset({Intent.MET, Intent.SNOOZE, Intent.SHADOWING, *_ALWAYS}),
    RequestKind.PHASE_CHECK: frozenset({Intent.PHASE_DONE, Intent.SNOOZE, *_ALWAYS}),
    RequestKind.SHADOWING: frozenset({Intent.CONTINUE, Intent.DECLINE, *_ALWAYS}),
    RequestKind.INFO: frozenset({Intent.MET, *_ALWAYS}),
    RequestKind.OFFICE: frozenset(Intent),
    RequestKind.PROPOSAL: frozenset({Intent.CONTINUE, Intent.DECLINE}),
}


def request_id(kind: RequestKind, number: int | str) -> str:
    """Request ids read ``<kind>:<n>``, e.g. ``nudge:7``; unique within one tandem."""
    return f"{kind.value}:{number}"


#: Requests any answer may name without being "open" in the tandem (no one closes them).
STANDING = frozenset({RequestKind.INFO, RequestKind.OFFICE})


def request_kind(request_id: str) -> RequestKind:
    """The kind of a request id; ValueError for anything malformed."""
    kind, sep, _ = request_id.partition(":")
    if not sep:
        raise ValueError(f"malformed request id {request_id!r}")
    return RequestKind(kind)


class AnswerDetails(BaseModel):
    """What an answer may carry into the workflow. (An anonymous 1-5 rating never does: the
    gateway adds it straight to the programme's aggregate, see ``activities/ratings.py``.)"""

    met_on: date | None = None
    snooze_weeks: int | None = Field(default=None, ge=1, le=52)


class Answer(BaseModel):
    """The argument of the workflow's ``answer`` update."""

    role: Role
    #: Who answered: the person the reply token was made for. ``None`` only for answers the
    #: programme office records (``tandem answer``): they speak for whoever holds the role now.
    person_id: str | None = Field(default=None, max_length=64)
    request_id: str
    intent: Intent
    details: AnswerDetails = Field(default_factory=AnswerDetails)
    #: Makes the update idempotent: the reply's Message-ID hash, or an id the CLI makes.
    answer_id: str = Field(min_length=1, max_length=200)


class AnswerResult(BaseModel):
    accepted: bool = True
    duplicate: bool = False
    status: TandemStatus
    message: str = ""
