"""Shared models: the people on file and the tandem's state as workflows and the CLI see it."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class Language(StrEnum):
    DE = "de"
    EN = "en"


class Role(StrEnum):
    MENTOR = "mentor"
    MENTEE = "mentee"
    COORDINATOR = "coordinator"


class TandemStatus(StrEnum):
    MATCHING = "matching"
    WAITING_FOR_MENTOR = "waiting_for_mentor"
    INTRODUCED = "introduced"
    DECIDING = "deciding"
    ACTIVE = "active"
    PAUSED = "paused"
    NEEDS_COORDINATOR = "needs_coordinator"
    COMPLETED = "completed"
    ENDED = "ended"


FINAL_STATUSES = frozenset({TandemStatus.COMPLETED, TandemStatus.ENDED})


class Mentor(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    email: EmailStr
    programs: list[str] = Field(min_length=1)
    region: str = ""
    specialty: str = ""
    capacity: int = Field(ge=0, le=50)
    language: Language = Language.DE


class Mentee(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    email: EmailStr
    program: str = Field(min_length=1)
    phase: str = Field(min_length=1)
    region: str = ""
    specialty: str = ""
    expected_phase_end: date | None = None
    language: Language = Language.DE


class TandemState(BaseModel):
    """The whole tandem, as carried by the workflow and returned by its ``state`` query.

    Ids and status only: names and addresses stay in Postgres.
    """

    mentee_id: str
    program: str
    phase: str
    status: TandemStatus = TandemStatus.MATCHING
    mentor_id: str | None = None
    cadence_days: float
    next_nudge_at: datetime | None = None
    last_contact_at: datetime | None = None
    rematches: int = 0
    excluded_mentor_ids: list[str] = Field(default_factory=list)
    coordinator_told_no_mentor: bool = False
    match_score: float | None = None
    match_reasons: list[str] = Field(default_factory=list)
    event_seq: int = 0
    enrolled_at: datetime | None = None
    updated_at: datetime | None = None
