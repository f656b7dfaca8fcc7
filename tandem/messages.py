"""What workflows and activities pass each other: ids, status and keys, never contact data."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from tandem.models import Role, TandemState, TandemStatus
from tandem.programs import Program


class TandemInput(BaseModel):
    """Start (or continue-as-new) input of ``TandemWorkflow``."""

    rules: Program
    state: TandemState


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


class MailReceipt(BaseModel):
    message_id: str
    newly_sent: bool


class StatusEvent(BaseModel):
    """A row of the event log plus the projection it updates. No message content."""

    seq: int
    at: datetime
    kind: str
    state: TandemState


class SeatRelease(BaseModel):
    mentee_id: str


__all__ = [
    "MailReceipt",
    "MailRequest",
    "MatchRequest",
    "MatchResult",
    "SeatRelease",
    "StatusEvent",
    "TandemInput",
    "TandemStatus",
]
