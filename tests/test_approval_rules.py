"""Matches the office approves (programme ``approval: coordinator`` or ``min_score``), in the
pure lifecycle: who is told what, when, and what "ok" and "nein" do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tandem.answers import Answer, Intent
from tandem.lifecycle import (
    AnswerGiven,
    EndTandem,
    MatchFound,
    Refused,
    ReleaseSeat,
    Rematch,
    Rules,
    SendMail,
    Tick,
    decide,
    next_deadline,
)
from tandem.lifecycle.effects import FindMentor, Template
from tandem.models import Role, TandemState, TandemStatus
from tandem.programs import load_programs

PROGRAM = load_programs(Path(__file__).parent.parent / "programs")["stipendium-hausarzt"]
NOW = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)


def rules(**kw: object) -> Rules:
    return Rules.of(PROGRAM.model_copy(update=kw))


def matching() -> TandemState:
    return TandemState(
        mentee_id="S1",
        program=PROGRAM.id,
        phase="study",
        cadence_days=91,
        status=TandemStatus.MATCHING,
        enrolled_at=NOW,
    )


def mails(effects: list[object]) -> list[tuple[Template, Role]]:
    return [(e.template, e.to) for e in effects if isinstance(e, SendMail)]


def office(intent: Intent, state: TandemState, n: int = 1) -> AnswerGiven:
    return AnswerGiven(
        answer=Answer(
            role=Role.COORDINATOR,
            person_id="office:stipendium-hausarzt",
            request_id=f"proposal:{state.rematches}",
            intent=intent,
            answer_id=f"a{n}",
        )
    )


FOUND = MatchFound(mentor_id="M1", score=4.5, reasons=["same region", "1 free seat(s)"])


def test_with_approval_a_match_waits_and_only_the_office_hears_of_it() -> None:
    r = rules(approval="coordinator")
    t = decide(matching(), r, NOW, FOUND)
    assert t.state.status is TandemStatus.PROPOSED and t.state.mentor_id == "M1"
    assert mails(list(t.effects)) == [(Template.PROPOSAL_COORDINATOR, Role.COORDINATOR)]
    [mail] = [e for e in t.effects if isinstance(e, SendMail)]
    assert mail.request_id == "proposal:0"
    assert mail.facts["score"] == "4.5" and "same region" in mail.facts["reasons"]


def test_ok_introduces_the_pair_and_nein_brings_the_next_proposal() -> None:
    r = rules(approval="coordinator")
    proposed = decide(matching(), r, NOW, FOUND).state
    ok = decide(proposed, r, NOW, office(Intent.CONTINUE, proposed))
    assert ok.state.status is TandemStatus.INTRODUCED
    assert sorted(mails(list(ok.effects))) == sorted(
        [(Template.INTRODUCTION_MENTEE, Role.MENTEE), (Template.INTRODUCTION_MENTOR, Role.MENTOR)]
    )
    no = decide(proposed, r, NOW, office(Intent.DECLINE, proposed))
    s = no.state
    assert s.status is TandemStatus.MATCHING and s.mentor_id is None
    assert s.excluded_mentor_ids == ["M1"] and s.rematches == 0, "not the pair's rematch"
    assert ReleaseSeat(mentee_id="S1", mentor_id="M1") in no.effects
    assert mails(list(no.effects)) == [], "nobody had been told"
    nxt = decide(s, r, NOW, Tick())
    [find] = [e for e in nxt.effects if isinstance(e, FindMentor)]
    assert find.request.excluded_mentor_ids == ["M1"]


def test_an_answer_twice_or_to_an_old_proposal_is_not_taken_again() -> None:
    r = rules(approval="coordinator")
    proposed = decide(matching(), r, NOW, FOUND).state
    introduced = decide(proposed, r, NOW, office(Intent.CONTINUE, proposed)).state
    assert decide(introduced, r, NOW, office(Intent.CONTINUE, proposed)).duplicate
    with pytest.raises(Refused, match="no match waits for approval"):
        decide(introduced, r, NOW, office(Intent.DECLINE, proposed, n=2))


def test_below_min_score_the_office_is_asked_above_it_not() -> None:
    r = rules(min_score=5.0)
    low = decide(matching(), r, NOW, FOUND)
    assert low.state.status is TandemStatus.PROPOSED
    [mail] = [e for e in low.effects if isinstance(e, SendMail)]
    assert mail.facts["min_score"] == "5"
    high = decide(matching(), r, NOW, FOUND.model_copy(update={"score": 9.5}))
    assert high.state.status is TandemStatus.INTRODUCED
    plain = decide(matching(), rules(), NOW, FOUND)
    assert plain.state.status is TandemStatus.INTRODUCED, "no approval: as before"


def test_an_unanswered_proposal_is_reminded_then_escalated_once_each() -> None:
    r = rules(approval="coordinator")
    s = decide(matching(), r, NOW, FOUND).state
    assert next_deadline(s, r) == NOW + PROGRAM.decision_reminder_after
    at = NOW + PROGRAM.decision_reminder_after
    reminded = decide(s, r, at, Tick())
    [mail] = [e for e in reminded.effects if isinstance(e, SendMail)]
    assert mail.template == Template.PROPOSAL_COORDINATOR and mail.facts["reminder"] == "1"
    s = reminded.state
    assert next_deadline(s, r) == NOW + PROGRAM.decision_escalation_after
    escalated = decide(s, r, NOW + PROGRAM.decision_escalation_after, Tick())
    [mail] = [e for e in escalated.effects if isinstance(e, SendMail)]
    assert mail.facts["escalated"] == "1"
    assert next_deadline(escalated.state, r) is None, "then it waits for the office"
    assert escalated.state.status is TandemStatus.PROPOSED


def test_rematch_or_end_of_a_proposal_tells_no_one_but_the_office() -> None:
    r = rules(approval="coordinator")
    s = decide(matching(), r, NOW, FOUND).state
    rematched = decide(s, r, NOW, Rematch())
    assert rematched.state.status is TandemStatus.MATCHING and mails(list(rematched.effects)) == []
    ended = decide(s, r, NOW + timedelta(days=1), EndTandem(reason="moved_away"))
    assert ended.state.status is TandemStatus.ENDED
    assert all(role is not Role.MENTOR for _, role in mails(list(ended.effects)))
    assert ReleaseSeat(mentee_id="S1", mentor_id="M1") in ended.effects


def test_only_the_office_answers_a_proposal() -> None:
    r = rules(approval="coordinator")
    s = decide(matching(), r, NOW, FOUND).state
    mentee = Answer(
        role=Role.MENTEE, request_id="proposal:0", intent=Intent.CONTINUE, answer_id="m1"
    )
    with pytest.raises(Refused):
        decide(s, r, NOW, AnswerGiven(answer=mentee))
