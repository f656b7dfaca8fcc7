"""Property-based tests of the pure lifecycle core (``tandem/lifecycle``): random sequences of
answers from the right and the wrong people, operator commands, mentors coming and going, and
time passing. The invariants are the promises the product makes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tandem.answers import Answer, AnswerDetails, Intent
from tandem.lifecycle import (
    AdvancePhase,
    AnswerGiven,
    ChangeCadence,
    EndTandem,
    Enrolled,
    Event,
    FindMentor,
    MatchFound,
    MentorsChanged,
    PauseTandem,
    Refused,
    ReleaseSeat,
    Rematch,
    ResumeTandem,
    RevokeTokens,
    Rules,
    SendMail,
    Tick,
    decide,
    due_items,
    next_deadline,
)
from tandem.lifecycle.answer_rules import MATCHED
from tandem.lifecycle.effects import EffectBatch
from tandem.models import FINAL_STATUSES, Role, TandemState
from tandem.programs import load_programs

PROGRAMS = load_programs(Path(__file__).parent.parent / "programs")
RULES = {name: Rules.of(p) for name, p in PROGRAMS.items()}
MENTORS = ["M1", "M2", "M3", "M4"]
START = datetime(2027, 1, 1, 8, 0, tzinfo=UTC)

durations = st.sampled_from(
    [
        timedelta(minutes=5),
        timedelta(hours=6),
        *(timedelta(days=d) for d in (1, 8, 22, 31, 92, 400)),
    ]
)


class Lifecycle(RuleBasedStateMachine):
    """One tandem driven the way the workflow drives it, with a model of the seats table."""

    def __init__(self) -> None:
        super().__init__()
        self.program = "stipendium-hausarzt"
        self.rules = RULES[self.program]
        self.now = START
        self.state = TandemState(
            mentee_id="S1", program=self.program, phase="study", cadence_days=91
        )
        self.seat: str | None = None  # the seats table: which mentor holds this mentee
        self.free = set(MENTORS)  # mentors with a free seat (the matching's view)
        self.mail_keys: set[str] = set()
        self.former_mentors: set[str] = set()
        self.outcomes: dict[int, str] = {}  # round -> decision outcome
        self.answer_ids = 0
        self.apply(Enrolled())
        self.run_due()

    # -- the interpreter (what the workflow does) -----------------------------------------

    def apply(self, event: Event) -> str:
        before = self.state
        snapshot = before.model_dump_json()
        try:
            t = decide(before, self.rules, self.now, event)
        except Refused as err:
            assert before.model_dump_json() == snapshot, "a refusal changes nothing"
            return err.message
        assert before.model_dump_json() == snapshot, "decide never mutates its input"
        if before.status in FINAL_STATUSES:
            assert t.state.status is before.status, "a final status is never left"
        self.state = t.state
        closed = set(before.requests) - set(t.state.requests)
        revokes = [e for e in t.effects if isinstance(e, RevokeTokens)]
        if not any(e.person_id is None and not e.request_ids for e in revokes):
            named = {rid for e in revokes for rid in e.request_ids}
            assert closed <= named, "a closed request's reply tokens stop working"
        for effect in t.effects:
            if isinstance(effect, SendMail):
                assert t.tandem is not None
                mail = EffectBatch(tandem=t.tandem, effects=t.effects).mail_request(effect)
                assert mail.idempotency_key not in self.mail_keys, "a mail is sent once"
                self.mail_keys.add(mail.idempotency_key)
                assert mail.mentee_id == "S1"
                if mail.to is Role.MENTOR:
                    assert mail.mentor_id in {before.mentor_id, t.state.mentor_id} - {None}
            elif isinstance(effect, ReleaseSeat):
                if self.seat == effect.mentor_id:
                    self.seat = None
                    self.free.add(effect.mentor_id)
                    self.former_mentors.add(effect.mentor_id)
            elif isinstance(effect, FindMentor):
                candidates = [
                    m
                    for m in MENTORS
                    if m in self.free and m not in effect.request.excluded_mentor_ids
                ]
                chosen = candidates[0] if candidates else None
                if chosen is not None:
                    assert self.seat is None, "at most one seat"
                    self.seat = chosen
                    self.free.discard(chosen)
                self.apply(MatchFound(mentor_id=chosen, score=1.0))
        decision = self.state.decision.outcome
        if decision is not None:
            settled = self.outcomes.setdefault(self.state.rematches, decision)
            assert settled == decision, "a decision settles once"
        return t.message

    def run_due(self) -> None:
        for _ in range(200):
            items = due_items(self.state, self.rules)
            if not items or items[0].at > self.now:
                return
            self.apply(Tick())
        raise AssertionError("due items do not settle")

    # -- what happens ---------------------------------------------------------------------

    @rule(delta=durations)
    def time_passes(self, delta: timedelta) -> None:
        self.now += delta
        self.run_due()

    @rule(
        role=st.sampled_from([Role.MENTEE, Role.MENTOR, Role.COORDINATOR]),
        who=st.sampled_from(["current", "office", "former", "stranger"]),
        intent=st.sampled_from(list(Intent)),
        request=st.integers(min_value=0, max_value=20),
        repeat=st.booleans(),
        weeks=st.one_of(st.none(), st.integers(min_value=1, max_value=52)),
    )
    def someone_answers(
        self, role: Role, who: str, intent: Intent, request: int, repeat: bool, weeks: int | None
    ) -> None:
        s = self.state
        person = {
            "current": s.mentee_id if role is Role.MENTEE else s.mentor_id,
            "office": None,
            "former": next(iter(sorted(self.former_mentors)), "M-former"),
            "stranger": "X9",
        }[who]
        known = [
            *sorted(s.requests),
            "decision:0",
            "decision:1",
            "nudge:1",
            "phase_check:study",
            "phase_check:residency",
            "shadowing:1",
            "info:S1/e1/1/x/mentee",
            "office:phone",
            "bogus",
        ]
        if not repeat:
            self.answer_ids += 1
        answer = Answer(
            role=role,
            person_id=person,
            request_id=known[request % len(known)],
            intent=intent,
            details=AnswerDetails(snooze_weeks=weeks if intent is Intent.SNOOZE else None),
            answer_id=f"a{self.answer_ids}",
        )
        former = who == "former" and person != s.mentor_id and role is Role.MENTOR
        before = s.model_dump_json()
        message = self.apply(AnswerGiven(answer=answer))
        if former and not repeat:
            assert self.state.model_dump_json() == before, "a former mentor changes nothing"
            assert message.startswith(("the answer is not from", "the tandem is", "this tandem"))
        self.run_due()

    @rule(phase=st.sampled_from(["study", "residency", "employment", "retirement"]))
    def office_advances(self, phase: str) -> None:
        self.apply(AdvancePhase(phase=phase))
        self.run_due()

    @rule(days=st.one_of(st.none(), st.integers(min_value=-3, max_value=200)))
    def office_pauses(self, days: int | None) -> None:
        until = self.now + timedelta(days=days) if days is not None else None
        self.apply(PauseTandem(until=until))
        self.run_due()

    @rule()
    def office_resumes(self) -> None:
        self.apply(ResumeTandem())
        self.run_due()

    @rule()
    def office_ends(self) -> None:
        self.apply(EndTandem(reason="test"))

    @rule(expected=st.one_of(st.none(), st.integers(min_value=0, max_value=3)))
    def office_rematches(self, expected: int | None) -> None:
        self.apply(Rematch(expected_rematches=expected))
        self.run_due()

    @rule(days=st.sampled_from([7.0, 30.0, 61.0, 91.0]))
    def office_sets_cadence(self, days: float) -> None:
        self.apply(ChangeCadence(days=days))
        self.run_due()

    @precondition(lambda self: len(self.free) < len(MENTORS) or True)
    @rule(mentor=st.sampled_from(MENTORS))
    def a_mentor_gets_a_seat(self, mentor: str) -> None:
        if mentor != self.seat:
            self.free.add(mentor)
        self.apply(MentorsChanged())
        self.run_due()

    # -- the promises ---------------------------------------------------------------------

    @invariant()
    def a_seat_is_held_only_while_matched(self) -> None:
        s = self.state
        if s.status in MATCHED:
            assert self.seat == s.mentor_id is not None
        else:
            assert (self.seat is None and s.mentor_id is None) or s.status in FINAL_STATUSES
        if s.status in FINAL_STATUSES:
            assert self.seat is None, "a closed tandem holds no seat"

    @invariant()
    def every_open_request_belongs_to_the_current_round_and_pair(self) -> None:
        s = self.state
        for request in s.requests.values():
            assert request.round == s.rematches
            for role, person in request.who.items():
                assert person == (s.mentee_id if role is Role.MENTEE else s.mentor_id)

    @invariant()
    def the_next_deadline_is_never_in_the_past(self) -> None:
        deadline = next_deadline(self.state, self.rules)
        assert deadline is None or deadline > self.now

    @invariant()
    def the_pairs_cadence_survives(self) -> None:
        s = self.state
        if s.own_cadence_days is not None:
            assert s.cadence_days == s.own_cadence_days

    @invariant()
    def a_replaced_mentor_is_never_matched_again(self) -> None:
        s = self.state
        assert s.mentor_id is None or s.mentor_id not in s.excluded_mentor_ids


Lifecycle.TestCase.settings = settings(
    max_examples=2000,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_lifecycle_keeps_its_promises = Lifecycle.TestCase
