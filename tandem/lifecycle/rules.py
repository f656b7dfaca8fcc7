"""The part of a programme the lifecycle needs, small enough to ride in every run's input.

Names, labels and the office's address stay in the programme file; activities read those.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tandem.programs import Program


class PhaseRules(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    cadence: timedelta
    duration: timedelta | None = None


class Rules(BaseModel):
    model_config = ConfigDict(frozen=True)

    program: str
    phases: tuple[PhaseRules, ...]
    first_meeting_window: timedelta
    decision_reminder_after: timedelta
    decision_escalation_after: timedelta
    max_rematches: int
    waiting_retry_every: timedelta
    phase_check_lead: timedelta
    #: Matches the coordinator approves first (defaults: none, as before these existed).
    approval: Literal["none", "coordinator"] = "none"
    min_score: float | None = None

    def needs_approval(self, score: float | None) -> bool:
        """Whether a match with this score waits for the coordinator's "ok"."""
        if self.approval == "coordinator":
            return True
        return self.min_score is not None and (score is None or score < self.min_score)

    @classmethod
    def of(cls, program: Program) -> Rules:
        return cls(
            program=program.id,
            phases=tuple(
                PhaseRules(name=p.name, cadence=p.cadence, duration=p.duration)
                for p in program.phases
            ),
            first_meeting_window=program.first_meeting_window,
            decision_reminder_after=program.decision_reminder_after,
            decision_escalation_after=program.decision_escalation_after,
            max_rematches=program.max_rematches,
            waiting_retry_every=program.waiting_retry_every,
            phase_check_lead=program.phase_check_lead,
            approval=program.approval,
            min_score=program.min_score,
        )

    @property
    def phase_names(self) -> list[str]:
        return [p.name for p in self.phases]

    def has_phase(self, name: str) -> bool:
        return name in self.phase_names

    def phase(self, name: str) -> PhaseRules:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)

    def next_phase(self, name: str) -> str | None:
        names = self.phase_names
        if name not in names:
            return None
        i = names.index(name)
        return names[i + 1] if i + 1 < len(names) else None

    def cadence(self, phase: str) -> timedelta:
        return self.phase(phase).cadence if self.has_phase(phase) else self.phases[0].cadence
