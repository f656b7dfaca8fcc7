"""What makes a digest line, and when a digest is due (pure: tandem/digest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tandem.digest import (
    DigestFrequency,
    EventRow,
    FailedMailRow,
    Section,
    TandemRow,
    failed_mail_lines,
    lines_for,
    period_key,
)

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def ev(kind: str, status: str, day: int) -> EventRow:
    return EventRow(kind, status, T0 + timedelta(days=day))


def sections(status: str, events: list[EventRow]) -> list[tuple[Section, datetime | None, str]]:
    return [
        (line.section, line.since, line.command)
        for line in lines_for(TandemRow("S-7", status, "study", None), events)
    ]


def test_a_mentee_waiting_since_the_first_of_an_unbroken_wait() -> None:
    events = [
        ev("enrolled", "matching", 0),
        ev("no_mentor_free", "waiting_for_mentor", 0),
        ev("coordinator_told_no_mentor", "waiting_for_mentor", 3),
    ]
    assert sections("waiting_for_mentor", events) == [(Section.WAITING, T0, "tandem status S-7")]
    # After a rematch the wait starts again: since the rematch, not the first enrolment.
    events = [
        ev("enrolled", "matching", 0),
        ev("introduced", "introduced", 0),
        ev("activated", "active", 10),
        ev("rematch_by_office", "matching", 40),
        ev("no_mentor_free", "waiting_for_mentor", 40),
    ]
    assert sections("waiting_for_mentor", events)[0][1] == T0 + timedelta(days=40)


def test_an_escalated_decision_is_a_line_until_a_new_introduction() -> None:
    escalated = [
        ev("introduced", "introduced", 0),
        ev("decision_reminded", "deciding", 37),
        ev("decision_escalated", "deciding", 51),
    ]
    [(section, since, command)] = sections("deciding", escalated)
    assert section is Section.DECISION and since == T0 + timedelta(days=51)
    assert "tandem rematch S-7" in command
    reintroduced = [*escalated, ev("introduced", "introduced", 60)]
    assert sections("introduced", reintroduced) == []
    assert sections("deciding", escalated[:2]) == [], "reminded only: not yet the office's"


def test_at_risk_until_contact_and_nothing_for_a_closed_tandem() -> None:
    risky = [ev("activated", "active", 0), ev("at_risk", "active", 200)]
    assert [s for s, *_ in sections("active", risky)] == [Section.AT_RISK]
    assert sections("active", [*risky, ev("contact", "active", 210)]) == []
    assert sections("ended", risky) == []


def test_help_asked_and_a_stalled_tandem_need_the_office() -> None:
    [(section, _, command)] = sections(
        "needs_coordinator", [ev("help_mentee", "needs_coordinator", 5)]
    )
    assert section is Section.ATTENTION and command.startswith("tandem status S-7")
    stalled = [ev("activated", "active", 0), ev("needs_attention", "active", 9)]
    assert sections("active", stalled) == [
        (Section.ATTENTION, T0 + timedelta(days=9), "tandem retry S-7")
    ]
    assert sections("active", [*stalled, ev("retried", "active", 10)]) == []


def test_an_unanswered_phase_check_until_anything_happens_after_it() -> None:
    events = [ev("activated", "active", 0), ev("phase_check_unanswered", "active", 300)]
    assert [s for s, *_ in sections("active", events)] == [Section.PHASE_CHECK]
    assert sections("active", [*events, ev("nudged", "active", 301)]) == []


def test_a_refused_mail_names_whom_and_the_code() -> None:
    row = FailedMailRow("S-7", "mentor", "M-2", "nudge", "550 5.1.1", T0)
    [line] = failed_mail_lines([row])
    assert line.section is Section.FAILED_MAIL and "mentor M-2" in line.detail
    assert "550 5.1.1" in line.detail and "tandem retry S-7" in line.command


def test_weekly_every_week_monthly_in_the_first_week_off_never() -> None:
    monday = datetime(2027, 3, 1, 6, tzinfo=UTC)  # the first Monday of March 2027
    assert period_key(DigestFrequency.WEEKLY, monday) == "2027-W09"
    assert period_key(DigestFrequency.WEEKLY, monday + timedelta(days=7)) == "2027-W10"
    assert period_key(DigestFrequency.MONTHLY, monday) == "2027-03"
    assert period_key(DigestFrequency.MONTHLY, monday + timedelta(days=7)) is None
    assert period_key(DigestFrequency.OFF, monday) is None


def test_a_proposed_match_waits_for_the_offices_ok() -> None:
    events = [ev("enrolled", "matching", 0), ev("proposed", "proposed", 1)]
    assert sections("proposed", events) == [
        (Section.PROPOSAL, T0 + timedelta(days=1), "tandem approve S-7 / tandem reject S-7")
    ]
