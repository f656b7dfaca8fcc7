"""What workflows and activities pass each other: ids, status and keys, never contact data."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from tandem.models import Role, TandemStatus


class MatchRequest(BaseModel):
    mentee_id: str
    program: str
    excluded_mentor_ids: list[str] = Field(default_factory=list)


class MatchResult(BaseModel):
    mentor_id: str | None = None
    score: float | None = None
    reasons: list[str] = Field(default_factory=list)
    candidates: int = 0


class MailRequest(BaseModel):
    """One mail to send; ``idempotency_key`` makes a retried send a no-op."""

    idempotency_key: str
    template: str
    to: Role
    mentee_id: str
    mentor_id: str | None = None
    program: str
    phase: str
    #: The request this mail asks the recipient to answer, if any (binds its reply token).
    request_id: str | None = None
    #: Ids, dates and codes the text needs (never names or addresses).
    facts: dict[str, str] = Field(default_factory=dict)


class MailReceipt(BaseModel):
    message_id: str
    newly_sent: bool
    #: Set when the relay refused this mail for good: the SMTP code and enhanced status
    #: (``550 5.1.1``), never the relay's text.
    failure: str | None = None


class FailedMail(BaseModel):
    """A mail the relay refused for good: which one, to whom (role and id), and the code."""

    idempotency_key: str
    template: str
    to: Role
    person_id: str | None = None
    failure: str


class EffectOutcome(BaseModel):
    """What ``carry_out`` reports back: mails refused for good, failed mails now sent."""

    failed: list[FailedMail] = Field(default_factory=list)
    resent: list[str] = Field(default_factory=list)


class StatusEvent(BaseModel):
    """A row of the event log plus the projection it updates: ids, status, dates. No content,
    and not the whole state (it is kept in history once per transition)."""

    mentee_id: str
    enrolment: int = 1
    seq: int
    at: datetime
    kind: str
    program: str
    status: TandemStatus
    phase: str
    mentor_id: str | None = None
    cadence_days: float
    next_nudge_at: datetime | None = None
    last_contact_at: datetime | None = None
    rematches: int = 0


__all__ = [
    "AdvanceRequest",
    "CadenceRequest",
    "EndRequest",
    "MailReceipt",
    "MailRequest",
    "MatchRequest",
    "MatchResult",
    "OperatorResult",
    "PauseRequest",
    "RematchRequest",
    "StatusEvent",
]


# -- operator updates -------------------------------------------------------------------------


class AdvanceRequest(BaseModel):
    phase: str


class PauseRequest(BaseModel):
    until: datetime | None = None


class EndRequest(BaseModel):
    #: A short code, not prose: it is kept in the workflow history.
    reason: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")


class ForgetRequest(BaseModel):
    """``tandem forget``: the person (the tandem's mentee or a mentor) whose id must go."""

    person_id: str = Field(min_length=1, max_length=200)


class CadenceRequest(BaseModel):
    days: float = Field(gt=0, le=730)


class OperatorResult(BaseModel):
    status: TandemStatus
    message: str = ""


class RematchRequest(BaseModel):
    #: The ``rematches`` count the office saw: a retried command cannot rematch twice.
    expected_rematches: int | None = None
