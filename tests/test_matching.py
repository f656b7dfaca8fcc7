"""The matching score: programme is a hard rule, the rest weighs and is explained."""

from __future__ import annotations

from tandem.matching import Candidate, rank, score
from tandem.models import Language
from tests.support import mentee, mentor


def test_programme_is_a_hard_rule() -> None:
    other = Candidate(mentor("M-1", programs=["uni-mentoring"]), free_seats=3)
    assert rank(mentee("S-1"), [other]) == []


def test_full_and_excluded_mentors_are_skipped() -> None:
    full = Candidate(mentor("M-1"), free_seats=0)
    declined = Candidate(mentor("M-2"), free_seats=2)
    ranked = rank(mentee("S-1"), [full, declined], excluded=["M-2"])
    assert ranked == []


def test_region_specialty_and_language_weigh_and_are_explained() -> None:
    near = Candidate(mentor("M-near"), free_seats=1)
    far = Candidate(
        mentor("M-far", region="Südstadt", specialty="Chirurgie", language=Language.EN),
        free_seats=3,
    )
    ranked = rank(mentee("S-1"), [far, near])
    assert [s.mentor_id for s in ranked] == ["M-near", "M-far"]
    assert "same region" in ranked[0].reasons
    assert "same specialty" in ranked[0].reasons
    assert "same region" not in ranked[1].reasons


def test_ties_are_broken_by_id_so_matching_is_repeatable() -> None:
    a = Candidate(mentor("M-b"), free_seats=1)
    b = Candidate(mentor("M-a"), free_seats=1)
    assert [s.mentor_id for s in rank(mentee("S-1"), [a, b])] == ["M-a", "M-b"]


def test_free_seats_spread_the_load() -> None:
    busy = score(mentee("S-1"), Candidate(mentor("M-1"), free_seats=1))
    free = score(mentee("S-1"), Candidate(mentor("M-2"), free_seats=3))
    assert free.total > busy.total


def test_reasons_hold_no_names() -> None:
    m = mentor("M-1")
    s = score(mentee("S-1"), Candidate(m, free_seats=1))
    assert not any(m.last_name in r or m.email in r for r in s.reasons)
