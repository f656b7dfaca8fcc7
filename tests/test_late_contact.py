"""A late "we met" still says they met: a reply to a check-in that newer check-ins replaced
(the person was away, the mail sat in a queue) is taken as contact — but only for the
pairing it was written in, never for a mentor who came after a rematch."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tandem.answers import Answer, Intent
from tandem.lifecycle import AnswerGiven, Refused, Rules, decide
from tandem.models import Role, TandemState, TandemStatus
from tandem.programs import load_programs

RULES = Rules.of(load_programs(Path(__file__).parent.parent / "programs")["stipendium-hausarzt"])
NOW = datetime(2027, 5, 3, 9, 0, tzinfo=UTC)


def active(**kw: object) -> TandemState:
    data: dict[str, object] = {
        "mentee_id": "S1",
        "program": "stipendium-hausarzt",
        "phase": "study",
        "cadence_days": 91,
        "status": TandemStatus.ACTIVE,
        "mentor_id": "M1",
        "nudges_sent": 5,
        "last_contact_at": datetime(2026, 9, 1, tzinfo=UTC),
        "missed_periods": 2,
    }
    data.update(kw)
    return TandemState.model_validate(data)


def met(request_id: str, n: int = 1) -> AnswerGiven:
    return AnswerGiven(
        answer=Answer(
            role=Role.MENTEE,
            person_id="S1",
            request_id=request_id,
            intent=Intent.MET,
            answer_id=f"late-{n}",
        )
    )


def test_a_late_we_met_to_a_replaced_check_in_is_taken_as_contact() -> None:
    t = decide(active(), RULES, NOW, met("nudge:3"))  # nudge:4 and :5 came since
    assert t.state.last_contact_at == NOW and t.state.missed_periods == 0
    assert t.message == "contact recorded"


def test_a_we_met_from_before_a_rematch_or_never_asked_is_refused() -> None:
    state = active(first_nudge_of_pairing=5, rematches=1)
    for request_id in ("nudge:3", "nudge:9"):
        with pytest.raises(Refused, match="this request is closed"):
            decide(state, RULES, NOW, met(request_id))


def test_only_we_met_is_taken_late() -> None:
    snooze = met("nudge:3").answer.model_copy(update={"intent": Intent.SNOOZE})
    with pytest.raises(Refused, match="this request is closed"):
        decide(active(), RULES, NOW, AnswerGiven(answer=snooze))
