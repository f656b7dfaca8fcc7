"""What drives the lifecycle: time, the matching's result, answers and the office's commands."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from tandem.answers import Answer
from tandem.lifecycle.rules import Rules
from tandem.messages import FailedMail
from tandem.models import TandemState


class TandemInput(BaseModel):
    """Start (and continue-as-new) input of ``TandemWorkflow``: the lifecycle's rules and the
    state so far. Only ids, status and durations."""

    rules: Rules
    state: TandemState


class Enrolled(BaseModel):
    """The first run of a tandem starts."""

    #: Look for a mentor in this same step, right after the enrolment is recorded (runs
    #: started before the patch ``match-on-enrolment`` looked after a timer of 1 ms).
    match_at_once: bool = False


class Tick(BaseModel):
    """Time passed: fire the earliest item that is due (see ``due.py``)."""


class MatchFound(BaseModel):
    """The result of a ``FindMentor`` effect (``mentor_id`` None: no mentor free)."""

    mentor_id: str | None = None
    score: float | None = None
    reasons: list[str] = Field(default_factory=list)


class MentorsChanged(BaseModel):
    """An import added mentors or seats: a waiting tandem looks again at once."""


class AnswerGiven(BaseModel):
    answer: Answer


class AdvancePhase(BaseModel):
    phase: str


class PauseTandem(BaseModel):
    until: datetime | None = None


class ResumeTandem(BaseModel):
    pass


class EndTandem(BaseModel):
    reason: str


class Rematch(BaseModel):
    #: When given: refused unless the tandem has been rematched exactly this often (so a
    #: retried command does not rematch twice).
    expected_rematches: int | None = None


class ChangeCadence(BaseModel):
    days: float


class ForgetPerson(BaseModel):
    """``tandem forget`` (GDPR Art. 17): the person leaves the tandem and its state.

    The mentee: the tandem ends; the mentor and the office are told, the mentee is not. The
    mentor: the mentee is told neutrally and gets a new one. Either way the person's id
    leaves the state, and the run continues as new, so that only runs about to be deleted
    still hold it.
    """

    person_id: str


class MailFailed(BaseModel):
    """The relay refused one of the tandem's mails for good (SMTP 5xx)."""

    mail: FailedMail


class MailsResent(BaseModel):
    """Mails that had failed were sent after all (a corrected address)."""

    keys: list[str]


class EffectsFailed(BaseModel):
    """An activity failed for good: the tandem waits for the office instead of failing."""

    cause: str


class RetryRequested(BaseModel):
    """``tandem retry``: carry out again what failed, once its cause is fixed."""


Event = (
    Enrolled
    | Tick
    | MatchFound
    | MentorsChanged
    | AnswerGiven
    | AdvancePhase
    | PauseTandem
    | ResumeTandem
    | EndTandem
    | Rematch
    | ChangeCadence
    | ForgetPerson
    | MailFailed
    | MailsResent
    | EffectsFailed
    | RetryRequested
)
