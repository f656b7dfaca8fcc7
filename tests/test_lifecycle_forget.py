"""``ForgetPerson`` in the pure lifecycle: who is written to, what the state keeps. The way
through the real parts is ``tests/test_forget.py``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tandem.lifecycle import ForgetPerson, ReleaseSeat, Rules, SendMail, decide
from tandem.lifecycle.effects import Template
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
        "excluded_mentor_ids": ["M0"],
        "rematches": 1,
    }
    data.update(kw)
    return TandemState.model_validate(data)


def mails(effects: list[object]) -> list[tuple[Template, Role]]:
    return [(e.template, e.to) for e in effects if isinstance(e, SendMail)]


def test_forgetting_the_mentee_ends_the_tandem_without_writing_to_them() -> None:
    t = decide(active(), RULES, NOW, ForgetPerson(person_id="S1"))
    assert t.state.status is TandemStatus.ENDED
    sent = mails(list(t.effects))
    assert (Template.TANDEM_ENDED, Role.MENTOR) in sent
    assert all(role is not Role.MENTEE for _, role in sent)
    assert ReleaseSeat(mentee_id="S1", mentor_id="M1") in t.effects


def test_forgetting_the_mentor_tells_the_mentee_and_looks_for_another() -> None:
    t = decide(active(), RULES, NOW, ForgetPerson(person_id="M1"))
    s = t.state
    assert s.status is TandemStatus.MATCHING and s.mentor_id is None
    assert s.next_match_at == NOW
    assert mails(list(t.effects)) == [(Template.MENTOR_LEFT, Role.MENTEE)]
    assert "M1" not in s.excluded_mentor_ids and s.excluded_mentor_ids == ["M0"]
    assert s.rematches == 1, "a mentor who left is not a rematch the pair used up"


def test_forgetting_an_earlier_mentor_only_takes_the_id_out() -> None:
    t = decide(active(), RULES, NOW, ForgetPerson(person_id="M0"))
    assert t.state.excluded_mentor_ids == [] and t.state.mentor_id == "M1"
    assert t.state.status is TandemStatus.ACTIVE and mails(list(t.effects)) == []
