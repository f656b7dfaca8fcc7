"""Programme rules are data: one YAML file per programme in ``programs/``, validated here."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, model_validator

from tandem.models import Language

_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds", "w": "weeks"}


def _parse_duration(value: Any) -> Any:
    """Accept ``91d``, ``12h``, ``3m``, ``2w`` (or a plain number of days) in programme files."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(days=value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhmsw])\s*", value)
        if match:
            return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]


class Phase(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    #: What mails call the phase, per language (falls back to ``name``).
    labels: dict[str, str] = Field(default_factory=dict)
    #: How often both are nudged to check in while the tandem is active.
    cadence: Duration
    #: Expected length of the phase; the last phase's duration ends the tandem.
    duration: Duration | None = None


class Program(BaseModel):
    """The rules of one mentoring programme."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    name: str
    language: Language = Language.DE
    coordinator_email: EmailStr
    phases: list[Phase] = Field(min_length=1)
    first_meeting_window: Duration
    decision_reminder_after: Duration = timedelta(days=7)
    decision_escalation_after: Duration = timedelta(days=21)
    max_rematches: int = Field(default=2, ge=0)
    waiting_retry_every: Duration = timedelta(days=1)
    phase_check_lead: Duration = timedelta(days=30)
    reply_token_valid_for: Duration = timedelta(days=60)
    #: How long a closed tandem's mentee stays on file (name, address, the tandem's mail
    #: texts); then the retention sweep erases them as ``tandem forget`` does, counts stay.
    closed_tandem_retention: Duration = timedelta(days=730)

    @model_validator(mode="after")
    def _check(self) -> Program:
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError("phase names must be unique")
        if self.phases[-1].duration is None:
            raise ValueError("the last phase needs a duration")
        if self.decision_escalation_after <= self.decision_reminder_after:
            raise ValueError("decision_escalation_after must be later than decision_reminder_after")
        return self

    def phase(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(f"programme {self.id} has no phase {name!r}")

    def has_phase(self, name: str) -> bool:
        return any(p.name == name for p in self.phases)

    def cadence(self, phase: str) -> timedelta:
        return self.phase(phase).cadence


def phase_label(program: Program, phase: str, language: str) -> str:
    if not program.has_phase(phase):
        return phase
    return program.phase(phase).labels.get(language, phase)


class ProgramError(ValueError):
    """A programme file is missing or breaks the rules."""


def load_program(directory: Path, program_id: str) -> Program:
    path = directory / f"{program_id}.yaml"
    if not path.is_file():
        raise ProgramError(f"unknown programme {program_id!r}")
    return _parse(path)


class ProgramCatalog:
    """The programme files, read on demand: a file added (or changed) while the workers run
    is used from its next mail on, with no restart."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._cache: dict[str, tuple[float, Program]] = {}

    def get(self, program_id: str, /) -> Program | None:
        """The programme, or ``None`` if no such file; ``ProgramError`` if the file is bad."""
        if not _PROGRAM_ID.fullmatch(program_id):
            return None
        path = self._directory / f"{program_id}.yaml"
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            self._cache.pop(program_id, None)
            return None
        cached = self._cache.get(program_id)
        if cached is None or cached[0] != mtime:
            cached = (mtime, _parse(path))
            self._cache[program_id] = cached
        return cached[1]


_PROGRAM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def load_programs(directory: Path) -> dict[str, Program]:
    programs = {}
    for path in sorted(directory.glob("*.yaml")):
        program = _parse(path)
        programs[program.id] = program
    return programs


def _parse(path: Path) -> Program:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        program = Program.model_validate(data)
    except (yaml.YAMLError, ValueError) as err:
        raise ProgramError(f"{path.name}: {err}") from err
    if program.id != path.stem:
        raise ProgramError(f"{path.name}: id {program.id!r} must match the file name")
    return program
