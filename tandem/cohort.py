"""Cohort matching: the mentees enrolled together get ONE optimal assignment of mentors.

Matching mentees one by one in arrival order is greedy: an early mentee can take the one
mentor a later mentee needed. Here every mentee is a row, every free seat a column (a mentor
with k free seats is k columns), each cell the score of ``tandem.matching`` (programme as the
hard rule, excluded mentors never), and SciPy's ``linear_sum_assignment`` picks the pairs with
the largest total. Pure: no I/O, the caller reserves the seats.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from tandem.matching import Candidate, MatchScore, eligible, score
from tandem.models import Mentee

#: What a pair that may not be made (another programme, an excluded mentor) is worth. Real
#: pairs are worth more than nothing (a free seat alone scores), so a forbidden pair never
#: raises the total: the solver only uses one to fill its rectangle, and it is dropped.
FORBIDDEN = 0.0

#: Totals closer than this count as equal (the weights are in halves): the tie-break on
#: waiting time, all of it together, stays below half of it.
SCORE_RESOLUTION = 0.01


@dataclass(frozen=True)
class Pairing:
    """One planned pair; ``reasons`` are the score's short, id-free phrases."""

    mentee_id: str
    mentor_id: str
    score: float
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CohortPlan:
    """The pairs (in waiting order) and who waits: the mentees no seat was left for."""

    pairs: list[Pairing]
    unmatched: list[str]

    @property
    def total(self) -> float:
        return sum(p.score for p in self.pairs)

    def mentor_of(self, mentee_id: str) -> str | None:
        return next((p.mentor_id for p in self.pairs if p.mentee_id == mentee_id), None)


@dataclass(frozen=True)
class _Slot:
    """One free seat of a mentor: the t-th of k is scored with k - t seats free, as the
    mentee taking it would have found them had the seats been taken one after another."""

    candidate: Candidate
    free_then: int


def assign(
    mentees: Sequence[Mentee],
    candidates: Sequence[Candidate],
    excluded: Mapping[str, Collection[str]] | None = None,
) -> CohortPlan:
    """The assignment with the largest total score over the mentors' free seats.

    ``mentees`` come in waiting order, longest first: when totals tie, the mentee waiting
    longer is served first and gets the better seat (a tiny bonus per waiting rank that
    together never outweighs a real score difference). Mentees that cannot all be served:
    the ones adding least are left unmatched. ``excluded`` maps a mentee id to mentor ids it
    must not get. The same input always gives the same plan.
    """
    excluded = excluded or {}
    if len({m.id for m in mentees}) != len(mentees):
        raise ValueError("the same mentee appears twice in one cohort")
    slots = _slots(mentees, candidates, excluded)
    if not mentees or not slots:
        return CohortPlan(pairs=[], unmatched=[m.id for m in mentees])

    allowed = np.zeros((len(mentees), len(slots)), dtype=bool)
    scores = np.full((len(mentees), len(slots)), FORBIDDEN)
    for i, mentee in enumerate(mentees):
        barred = excluded.get(mentee.id, ())
        for j, slot in enumerate(slots):
            if eligible(mentee, slot.candidate, barred):
                allowed[i, j] = True
                scores[i, j] = _slot_score(mentee, slot).total
    value = scores + _waiting_bonus(scores, allowed)
    rows, cols = linear_sum_assignment(np.where(allowed, value, FORBIDDEN), maximize=True)

    chosen = {int(i): int(j) for i, j in zip(rows, cols, strict=True) if allowed[i, j]}
    pairs = []
    for i, mentee in enumerate(mentees):
        if i in chosen:
            found = _slot_score(mentee, slots[chosen[i]])
            reasons = list(found.reasons)
            if len(mentees) > 1:
                reasons.append(f"best total for a cohort of {len(mentees)}")
            pairs.append(Pairing(mentee.id, found.mentor_id, found.total, reasons))
    unmatched = [m.id for i, m in enumerate(mentees) if i not in chosen]
    return CohortPlan(pairs=pairs, unmatched=unmatched)


def _slots(
    mentees: Sequence[Mentee],
    candidates: Sequence[Candidate],
    excluded: Mapping[str, Collection[str]],
) -> list[_Slot]:
    """The columns: per mentor (by id, so the order is repeatable), one per free seat, but
    no more than the cohort's mentees who may take one (a big mentor makes no big matrix)."""
    slots: list[_Slot] = []
    for candidate in sorted(candidates, key=lambda c: c.mentor.id):
        takers = sum(1 for m in mentees if eligible(m, candidate, excluded.get(m.id, ())))
        for t in range(min(candidate.free_seats, takers)):
            slots.append(_Slot(candidate, candidate.free_seats - t))
    return slots


def _slot_score(mentee: Mentee, slot: _Slot) -> MatchScore:
    return score(mentee, Candidate(slot.candidate.mentor, slot.free_then))


def _waiting_bonus(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Row i (waiting rank i, 0 = longest) gets ``eps * (n - i) * (1 + score / top)``: more
    for being served at all, a little more for a better seat. Over any assignment it sums to
    at most ``2 * eps * n**2``, kept below half of ``SCORE_RESOLUTION``."""
    n = scores.shape[0]
    top = float(scores[allowed].max()) if allowed.any() else 0.0
    top = top if top > 0 else 1.0
    eps = SCORE_RESOLUTION / (4.0 * n * n + 1.0)
    weight = (n - np.arange(n, dtype=float))[:, None]
    return np.where(allowed, eps * weight * (1.0 + scores / top), 0.0)
