"""Who mentors whom: a weighted, explainable score. The programme is a hard rule; the rest weighs.

Change the weights here; every reason a match was made is kept as a short, id-free phrase.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tandem.models import Language, Mentee

#: What a shared trait is worth. Region matters most: mentees should be able to shadow.
WEIGHTS = {
    "region": 4.0,
    "specialty": 3.0,
    "language": 2.0,
    "free_seat": 0.5,  # per free seat, so load spreads over mentors
}
MAX_FREE_SEAT_BONUS = 3


class MentorTraits(Protocol):
    """What ranking reads of a mentor: a ``Mentor`` has it, and so has ``MentorRow``."""

    @property
    def id(self) -> str: ...
    @property
    def programs(self) -> Sequence[str]: ...
    @property
    def region(self) -> str: ...
    @property
    def specialty(self) -> str: ...
    @property
    def language(self) -> Language: ...


@dataclass(frozen=True, slots=True)
class MentorRow:
    """A mentor as ranking sees it, read straight from the database's row: no name, no
    address, nothing to validate again (the import validated it), so every candidate of
    every match costs a tuple, not a model."""

    id: str
    programs: tuple[str, ...]
    region: str
    specialty: str
    language: Language


@dataclass(frozen=True)
class Candidate:
    mentor: MentorTraits
    free_seats: int


@dataclass(frozen=True)
class MatchScore:
    mentor_id: str
    total: float
    reasons: list[str] = field(default_factory=list)


def _same(a: str, b: str) -> bool:
    return bool(a) and a.strip().casefold() == b.strip().casefold()


def score(mentee: Mentee, candidate: Candidate) -> MatchScore:
    """Score one mentor for one mentee; the reasons say which weights applied."""
    mentor = candidate.mentor
    total = 0.0
    reasons = [f"programme {mentee.program}"]
    if _same(mentor.region, mentee.region):
        total += WEIGHTS["region"]
        reasons.append("same region")
    if _same(mentor.specialty, mentee.specialty):
        total += WEIGHTS["specialty"]
        reasons.append("same specialty")
    if mentor.language == mentee.language:
        total += WEIGHTS["language"]
        reasons.append(f"same language ({mentee.language.value})")
    seats = min(candidate.free_seats, MAX_FREE_SEAT_BONUS)
    total += WEIGHTS["free_seat"] * seats
    reasons.append(f"{candidate.free_seats} free seat(s)")
    return MatchScore(mentor_id=mentor.id, total=total, reasons=reasons)


def eligible(mentee: Mentee, candidate: Candidate, excluded: Iterable[str] = ()) -> bool:
    """Hard rules: same programme, a free seat, not excluded (e.g. declined before)."""
    return (
        mentee.program in candidate.mentor.programs
        and candidate.free_seats > 0
        and candidate.mentor.id not in set(excluded)
    )


def rank(
    mentee: Mentee, candidates: Sequence[Candidate], excluded: Iterable[str] = ()
) -> list[MatchScore]:
    """Best first; ties broken by mentor id so the same data always gives the same order."""
    excluded = set(excluded)
    scores = [score(mentee, c) for c in candidates if eligible(mentee, c, excluded)]
    return sorted(scores, key=lambda s: (-s.total, s.mentor_id))
