"""Shared models: the people on file and the tandem's state as workflows and the CLI see it."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

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
    #: A match waits for the coordinator's "ok" (programme ``approval: coordinator``, or a
    #: score below ``min_score``); the mentor's seat is held, nobody has been told.
    PROPOSED = "proposed"
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
    #: How mails address them (``tandem/salutation.py``): ``Frau``, ``Herr`` or none.
    salutation: Literal["", "Frau", "Herr"] = ""
    #: As the office writes it (``Dr. med.``, ``Prof. Dr.``); empty for none.
    title: str = Field(default="", max_length=40)


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
    #: How mails address them (``tandem/salutation.py``): ``Frau``, ``Herr`` or none.
    salutation: Literal["", "Frau", "Herr"] = ""
    #: As the office writes it (``Dr. med.``, ``Prof. Dr.``); empty for none.
    title: str = Field(default="", max_length=40)


class DecisionState(BaseModel):
    """The "continue?" answers of one matching round, keyed by role."""

    answers: dict[Role, str] = Field(default_factory=dict)  # role -> "continue" / "decline"
    #: "continue" or "decline" once decided: a decision settles once.
    outcome: str | None = None


class OpenRequest(BaseModel):
    """A question the tandem asked and still waits for: who may answer, when it was asked,
    whether it was followed up. Its id (``<kind>:<n>``) is its key in ``TandemState.requests``."""

    kind: str
    #: The matching round (``TandemState.rematches``) it belongs to.
    round: int
    #: Role -> person id of everyone who may answer it.
    who: dict[Role, str]
    asked_at: datetime | None = None
    asks: int = 0
    reminded: bool = False
    escalated: bool = False
    reask_at: datetime | None = None


class TandemState(BaseModel):
    """The whole tandem, as carried by the workflow and returned by its ``state`` query.

    Ids and status only: names and addresses stay in Postgres.
    """

    mentee_id: str
    program: str
    phase: str
    status: TandemStatus = TandemStatus.MATCHING
    mentor_id: str | None = None
    #: 1 for the first tandem of this mentee, 2 for a returning mentee's second, ...
    enrolment: int = 1
    #: The rhythm in force: the pair's own (``own_cadence_days``) or the phase's.
    cadence_days: float
    own_cadence_days: float | None = None
    next_nudge_at: datetime | None = None
    last_contact_at: datetime | None = None
    rematches: int = 0
    excluded_mentor_ids: list[str] = Field(default_factory=list)
    coordinator_told_no_mentor: bool = False
    next_match_at: datetime | None = None
    match_score: float | None = None
    match_reasons: list[str] = Field(default_factory=list)
    event_seq: int = 0
    enrolled_at: datetime | None = None
    updated_at: datetime | None = None

    expected_phase_end: date | None = None
    introduced_at: datetime | None = None
    decision: DecisionState = Field(default_factory=DecisionState)
    active_since: datetime | None = None
    phase_started_at: datetime | None = None
    nudges_sent: int = 0
    #: The first check-in of the current pairing (after a rematch, older ones are another's).
    first_nudge_of_pairing: int = 0
    last_nudge_at: datetime | None = None
    missed_periods: int = 0
    at_risk: bool = False
    paused_until: datetime | None = None
    #: Per person: the check-in they asked to be reminded of later ("später").
    snoozed_until: dict[Role, datetime] = Field(default_factory=dict)
    shadowing_requests: int = 0
    #: Open requests by id (``decision:0``, ``nudge:7``, ``phase_check:study``, ...).
    requests: dict[str, OpenRequest] = Field(default_factory=dict)
    #: Ids of answers already applied (the update is idempotent on them); the last 200.
    answer_ids: list[str] = Field(default_factory=list)
    end_reason: str | None = None
    #: Idempotency keys of mails the relay refused for good (SMTP 5xx); sent again by
    #: ``tandem retry`` (or a re-import with a corrected address).
    failed_mails: list[str] = Field(default_factory=list)
    #: Why the tandem stopped: an activity's final error (its type, e.g. ``UnknownProgram``).
    #: Nothing fires and nothing is answered until ``tandem retry`` (or ``tandem end``).
    attention: str | None = None
    attention_since: datetime | None = None
