"""Cohort matching: the mentees enrolled together get one assignment with the best total.

Pure first (``tandem.cohort.assign`` against today's one-by-one matching and a brute force),
then through the real parts: ``tandem enroll --all`` / ``--cohort`` as processes, a worker,
PostgreSQL, the dev server and the SMTP sink.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.matching import MatchingActivities, reserve_cohort, take_seat
from starter.mailsink import MailSink
from starter.tandem_cmds import enroll_mentees
from tandem.cohort import assign
from tandem.matching import Candidate, rank, score
from tandem.messages import MatchRequest
from tandem.models import Language, Mentee, TandemStatus
from tandem.settings import Settings
from tests.support import (
    mails_to,
    mentee,
    mentor,
    put_people,
    query_state,
    running_worker,
    tandem_cli,
    wait_status,
)
from workflows.client import TandemClient

HAUSARZT, FACHARZT = "stipendium-hausarzt", "stipendium-facharzt"


def one_by_one(
    mentees: Sequence[Mentee], candidates: Sequence[Candidate]
) -> tuple[dict[str, str | None], float]:
    """Today's matching: each mentee in arrival order takes its best free mentor."""
    free = {c.mentor.id: c.free_seats for c in candidates}
    by_id = {c.mentor.id: c.mentor for c in candidates}
    got: dict[str, str | None] = {}
    total = 0.0
    for m in mentees:
        ranked = rank(m, [Candidate(by_id[i], free[i]) for i in by_id])
        got[m.id] = ranked[0].mentor_id if ranked else None
        if ranked:
            free[ranked[0].mentor_id] -= 1
            total += ranked[0].total
    return got, total


def trap() -> tuple[list[Mentee], list[Candidate]]:
    """A (Hausarzt, waiting longer) fits X very well and Y fairly; B (Facharzt) fits only X,
    the one mentor who mentors in both programmes."""
    a = mentee("S-A", region="Nordstadt", specialty="Allgemeinmedizin")
    b = mentee("S-B", program=FACHARZT, region="Nordstadt", specialty="Innere Medizin")
    x = mentor("M-X", programs=[HAUSARZT, FACHARZT], region="Nordstadt")
    y = mentor("M-Y", programs=[HAUSARZT], region="Südstadt")
    return [a, b], [Candidate(x, free_seats=1), Candidate(y, free_seats=1)]


# -- pure ---------------------------------------------------------------------------------


def test_the_assignment_beats_arrival_order_where_the_first_mentee_takes_the_only_fit() -> None:
    mentees, candidates = trap()
    greedy, greedy_total = one_by_one(mentees, candidates)
    assert greedy == {"S-A": "M-X", "S-B": None}

    plan = assign(mentees, candidates)
    assert {p.mentee_id: p.mentor_id for p in plan.pairs} == {"S-A": "M-Y", "S-B": "M-X"}
    assert plan.unmatched == []
    assert plan.total > greedy_total
    assert plan.total == pytest.approx(5.5 + 6.5)
    [for_a] = [p for p in plan.pairs if p.mentee_id == "S-A"]
    assert for_a.score == score(mentees[0], candidates[1]).total
    assert "same specialty" in for_a.reasons and "same region" not in for_a.reasons
    assert for_a.reasons[-1] == "best total for a cohort of 2"


def test_a_mentor_with_two_free_seats_takes_two_mentees_and_no_third() -> None:
    big = Candidate(mentor("M-big", capacity=2), free_seats=2)
    small = Candidate(mentor("M-small", region="Südstadt", specialty="Pädiatrie"), free_seats=1)
    mentees = [mentee(f"S-{i}") for i in range(1, 5)]
    plan = assign(mentees, [big, small])
    taken = [p.mentor_id for p in plan.pairs]
    assert taken.count("M-big") == 2 and taken.count("M-small") == 1
    assert len(plan.unmatched) == 1
    big_seats = sorted(
        next(r for r in p.reasons if "free seat" in r) for p in plan.pairs if p.mentor_id == "M-big"
    )
    assert big_seats == ["1 free seat(s)", "2 free seat(s)"], "the second seat is scored as such"


def test_no_mentee_gets_a_mentor_of_another_programme_or_one_it_is_barred_from() -> None:
    other = Candidate(mentor("M-uni", programs=["uni-mentoring"]), free_seats=3)
    declined = Candidate(mentor("M-declined"), free_seats=1)
    fallback = Candidate(mentor("M-far", region="Südkreis", specialty="Chirurgie"), free_seats=1)
    plan = assign(
        [mentee("S-1"), mentee("S-2")],
        [other, declined, fallback],
        excluded={"S-1": ["M-declined"]},
    )
    assert {p.mentee_id: p.mentor_id for p in plan.pairs} == {"S-1": "M-far", "S-2": "M-declined"}
    alone = assign([mentee("S-3")], [other])
    assert alone.pairs == [] and alone.unmatched == ["S-3"]


def test_when_totals_tie_the_mentee_waiting_longest_is_served_and_gets_the_better_seat() -> None:
    one_seat = [Candidate(mentor("M-1"), free_seats=1)]
    first, second = mentee("S-zz"), mentee("S-aa")  # ids sort against the waiting order
    assert [p.mentee_id for p in assign([first, second], one_seat).pairs] == ["S-zz"]
    assert [p.mentee_id for p in assign([second, first], one_seat).pairs] == ["S-aa"]

    better = Candidate(mentor("M-near"), free_seats=1)
    worse = Candidate(mentor("M-far", region="Südkreis"), free_seats=1)
    plan = assign([first, second], [worse, better])
    assert {p.mentee_id: p.mentor_id for p in plan.pairs} == {"S-zz": "M-near", "S-aa": "M-far"}
    plan = assign([second, first], [worse, better])
    assert {p.mentee_id: p.mentor_id for p in plan.pairs} == {"S-aa": "M-near", "S-zz": "M-far"}
    assert assign([second, first], [worse, better]) == plan, "the same input, the same plan"


def test_the_tie_break_holds_where_the_solver_alone_would_favour_a_later_mentee() -> None:
    """Three programmes and mentors across them: two assignments reach 20.5; in one the
    mentee waiting longest gets 9.5, in the other 5.5 (SciPy, left alone, picks that one)."""
    near, far = {"region": "Nordstadt"}, {"region": "Südstadt"}
    uni = "uni-mentoring"
    mentors = [
        Candidate(mentor("M-a", programs=[HAUSARZT, uni], **far), free_seats=1),
        Candidate(mentor("M-b", programs=[HAUSARZT, FACHARZT, uni], **near), free_seats=1),
        Candidate(mentor("M-c", programs=[HAUSARZT], **far), free_seats=1),
        Candidate(mentor("M-d", programs=[FACHARZT, uni], **near), free_seats=1),
    ]
    longest = mentee("S-1", **near)
    middle = mentee("S-2", program=FACHARZT, **far)
    latest = mentee("S-3", program=uni, **near)
    plan = assign([longest, middle, latest], mentors)
    assert plan.total == pytest.approx(20.5)
    got = {p.mentee_id: (p.mentor_id, p.score) for p in plan.pairs}
    assert got["S-1"] == ("M-b", 9.5)


def test_waiting_longer_never_outweighs_a_real_difference_even_in_a_large_cohort() -> None:
    # The first mentee gains 3 (specialty) from X, the second gains 4 (region): X goes to
    # the second, a total 1 higher, though the first has waited longest of 300.
    x = Candidate(mentor("M-X", region="Nordstadt", specialty="Allgemeinmedizin"), free_seats=1)
    y = Candidate(mentor("M-Y", region="Südstadt", specialty="Pädiatrie"), free_seats=1)
    first = mentee("S-first", region="Südstadt", specialty="Allgemeinmedizin")
    second = mentee("S-second", region="Nordstadt", specialty="Pädiatrie")
    others = [mentee(f"S-{i:03}", program="uni-mentoring") for i in range(298)]
    plan = assign([first, second, *others], [x, y])
    assert {p.mentee_id: p.mentor_id for p in plan.pairs} == {
        "S-first": "M-Y",
        "S-second": "M-X",
    }
    assert len(plan.unmatched) == 298


def test_with_more_mentees_than_seats_the_ones_adding_least_wait() -> None:
    seats = [
        Candidate(mentor("M-1", region="Nordkreis", specialty="Allgemeinmedizin"), free_seats=1),
        Candidate(mentor("M-2", region="Südkreis", specialty="Pädiatrie"), free_seats=1),
    ]
    mentees = [
        mentee("S-1", region="Westkreis", specialty="Chirurgie", language=Language.EN),
        mentee("S-2", region="Nordkreis", specialty="Allgemeinmedizin"),
        mentee("S-3", region="Ostkreis", specialty="Orthopädie"),
        mentee("S-4", region="Südkreis", specialty="Pädiatrie"),
    ]
    plan = assign(mentees, seats)
    assert {p.mentee_id: p.mentor_id for p in plan.pairs} == {"S-2": "M-1", "S-4": "M-2"}
    assert plan.unmatched == ["S-1", "S-3"], "in waiting order"


REGIONS = ["Nordkreis", "Südkreis", ""]
SPECIALTIES = ["Allgemeinmedizin", "Pädiatrie", "Innere Medizin"]


@st.composite
def cohorts(draw: st.DrawFn) -> tuple[list[Mentee], list[Candidate]]:
    def person() -> dict[str, object]:
        return {
            "region": draw(st.sampled_from(REGIONS)),
            "specialty": draw(st.sampled_from(SPECIALTIES)),
            "language": draw(st.sampled_from(list(Language))),
        }

    mentees = [
        mentee(f"S-{i}", program=draw(st.sampled_from([HAUSARZT, FACHARZT])), **person())
        for i in range(draw(st.integers(0, 5)))
    ]
    candidates = [
        Candidate(
            mentor(
                f"M-{i}",
                programs=draw(st.sampled_from([[HAUSARZT], [FACHARZT], [HAUSARZT, FACHARZT]])),
                **person(),
            ),
            free_seats=draw(st.integers(0, 2)),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    return mentees, candidates


def best_total(mentees: Sequence[Mentee], candidates: Sequence[Candidate]) -> float:
    """Every way to give each mentee a mentor or none, seats respected: the best total."""
    best = 0.0
    for choice in itertools.product([None, *candidates], repeat=len(mentees)):
        total, used = 0.0, dict.fromkeys((c.mentor.id for c in candidates), 0)
        for m, c in zip(mentees, choice, strict=True):
            if c is None:
                continue
            if m.program not in c.mentor.programs or used[c.mentor.id] >= c.free_seats:
                break
            total += score(m, Candidate(c.mentor, c.free_seats - used[c.mentor.id])).total
            used[c.mentor.id] += 1
        else:
            best = max(best, total)
    return best


@hsettings(max_examples=150, deadline=None)
@given(cohorts())
def test_the_assignment_is_the_best_total_any_assignment_can_reach(
    cohort: tuple[list[Mentee], list[Candidate]],
) -> None:
    mentees, candidates = cohort
    plan = assign(mentees, candidates)
    assert plan.total == pytest.approx(best_total(mentees, candidates))
    seats = {c.mentor.id: c for c in candidates}
    for p in plan.pairs:
        assert (
            next(m for m in mentees if m.id == p.mentee_id).program
            in seats[p.mentor_id].mentor.programs
        )
    for mentor_id, c in seats.items():
        assert sum(p.mentor_id == mentor_id for p in plan.pairs) <= c.free_seats
    assert sorted([p.mentee_id for p in plan.pairs] + plan.unmatched) == sorted(
        m.id for m in mentees
    )
    assert plan.total >= one_by_one(mentees, candidates)[1] - 1e-9


# -- the database part --------------------------------------------------------------------


async def test_the_mentee_on_file_longest_gets_the_seat_when_scores_tie(db: asyncpg.Pool) -> None:
    early, late = mentee("S-b-early"), mentee("S-a-late")  # ids sort the other way
    await put_people(db, [mentor("M-1")], [early])
    await put_people(db, [], [late])
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE mentees SET created_at = created_at - interval '400 days' WHERE id = $1",
            early.id,
        )
        done = await reserve_cohort(conn, [late.id, early.id])
        seats = await conn.fetch("SELECT mentee_id, mentor_id, score, reasons FROM seats")
    assert [p.mentee_id for p in done.reserved] == [early.id]
    assert done.plan.unmatched == [late.id]
    [seat] = seats
    assert (seat["mentee_id"], seat["mentor_id"]) == (early.id, "M-1")
    assert seat["score"] == done.reserved[0].score
    assert list(seat["reasons"]) == done.reserved[0].reasons


async def test_find_mentor_returns_the_plan_for_a_planned_seat_and_says_so_for_another(
    db: asyncpg.Pool,
) -> None:
    planned, taken = mentee("S-planned"), mentee("S-taken")
    await put_people(db, [mentor("M-1", capacity=2)], [planned, taken])
    async with db.acquire() as conn:
        [pair] = (await reserve_cohort(conn, [planned.id])).reserved
        assert await take_seat(conn, taken.id, "M-1")  # as a workflow's own matching does
    matching = MatchingActivities(db)
    got = await matching.find_mentor(MatchRequest(mentee_id=planned.id, program=HAUSARZT))
    assert (got.mentor_id, got.score, got.reasons) == ("M-1", pair.score, pair.reasons)
    assert "seat already reserved" not in got.reasons and got.score is not None
    other = await matching.find_mentor(MatchRequest(mentee_id=taken.id, program=HAUSARZT))
    assert (other.mentor_id, other.reasons) == ("M-1", ["seat already reserved"])


# -- through the real parts ---------------------------------------------------------------

MENTORS_CSV = (
    "\ufeffid;first_name;last_name;email;programs;region;specialty;capacity;language\n"
    "{p}-M-X;Henrike;Albrechtsen;{p}.albrechtsen@praxis-nord.example.org;"
    "stipendium-hausarzt|stipendium-facharzt;Nordstadt;Allgemeinmedizin;1;de\n"
    "{p}-M-Y;Konstantin;Weiß;{p}.weiss@praxis-sued.example.org;stipendium-hausarzt;"
    "Südstadt ;allgemeinmedizin;1;de\n"
)
MENTEES_CSV = (
    "id,first_name,last_name,email,program,phase,region,specialty,expected_phase_end,language\n"
    "{p}-S1,Jonas,Feldhausen,{p}.j.feldhausen@studium.example.org,stipendium-hausarzt,study,"
    "Nordstadt,Allgemeinmedizin,2029-09-30,de\n"
    "{p}-S2,Lea,Brunnhuber,{p}.l.brunnhuber@studium.example.org,stipendium-facharzt,study,"
    "nordstadt,Innere Medizin,2029-09-30,de\n"
)


def cli_env(db_dsn: str, dev_env: WorkflowEnvironment, settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "TANDEM_HOME": str(settings.home),
        "TANDEM_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TANDEM_TASK_QUEUE": settings.task_queue,
        "TANDEM_SMTP_PORT": str(settings.smtp_port),
    }


async def import_trap(env: dict[str, str], tmp_path: Path) -> str:
    """The greedy trap as the office's files: S1 fits X best and Y too, S2 fits only X."""
    p = f"c{uuid.uuid4().hex[:6]}"
    (tmp_path / "mentors.csv").write_text(MENTORS_CSV.format(p=p), encoding="utf-8")
    (tmp_path / "mentees.csv").write_text(MENTEES_CSV.format(p=p), encoding="utf-8")
    for kind in ("mentees", "mentors"):
        code, _, err = await tandem_cli(env, "import", kind, str(tmp_path / f"{kind}.csv"))
        assert code == 0, err
    return p


async def introduced_to(sink: MailSink, mentee_address: str, mentor_address: str) -> None:
    """The mentee's introduction names the mentor's address, and the mentor got one too."""
    [intro] = await mails_to(sink, mentee_address)
    body = intro.get_body(preferencelist=("plain",))
    assert body is not None and mentor_address in str(body.get_content())
    await mails_to(sink, mentor_address)


async def test_enroll_all_gives_the_cohort_the_best_total_not_arrival_order(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
    tmp_path: Path,
) -> None:
    env = cli_env(db_dsn, dev_env, settings)
    p = await import_trap(env, tmp_path)
    async with running_worker(dev_env.client, settings, db):
        code, out, err = await tandem_cli(env, "enroll", "--all")
        assert code == 0, err
        s1 = await wait_status(dev_env.client, f"{p}-S1", TandemStatus.INTRODUCED)
        s2 = await wait_status(dev_env.client, f"{p}-S2", TandemStatus.INTRODUCED)
        assert (s1.mentor_id, s2.mentor_id) == (f"{p}-M-Y", f"{p}-M-X")
        await introduced_to(
            sink, f"{p}.j.feldhausen@studium.example.org", f"{p}.weiss@praxis-sued.example.org"
        )
        await introduced_to(
            sink,
            f"{p}.l.brunnhuber@studium.example.org",
            f"{p}.albrechtsen@praxis-nord.example.org",
        )
        code, shown, err = await tandem_cli(env, "status", f"{p}-S1")
    assert f"{p}-S1: enrolled (matching, mentor {p}-M-Y planned (score 5.5))" in out
    assert f"{p}-S2: enrolled (matching, mentor {p}-M-X planned (score 6.5))" in out
    assert "cohort: 2 mentee(s) matched together, 2 seat(s) planned, 0 waiting" in out
    assert s1.match_score + s2.match_score == pytest.approx(12.0)  # type: ignore[operator]
    assert s1.match_reasons == [
        f"programme {HAUSARZT}",
        "same specialty",
        "same language (de)",
        "1 free seat(s)",
        "best total for a cohort of 2",
    ]
    assert "seat already reserved" not in s2.match_reasons and "same region" in s2.match_reasons
    assert len(sink.messages()) == 4, "two introductions each, nothing else"
    assert code == 0, err
    assert (
        f"matched with {p}-M-Y because: programme {HAUSARZT}, same specialty, same language"
        " (de), 1 free seat(s), best total for a cohort of 2 (score 5.5)"
    ) in " ".join(shown.split()), "the reasons in words (wrapped to the terminal)"


async def test_one_by_one_in_arrival_order_the_first_takes_the_mentor_the_second_needed(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
    tmp_path: Path,
) -> None:
    """The same files without a cohort: what the test above would see if it were greedy."""
    env = cli_env(db_dsn, dev_env, settings)
    p = await import_trap(env, tmp_path)
    async with running_worker(dev_env.client, settings, db):
        code, _, err = await tandem_cli(env, "enroll", f"{p}-S1")
        assert code == 0, err
        s1 = await wait_status(dev_env.client, f"{p}-S1", TandemStatus.INTRODUCED)
        code, _, err = await tandem_cli(env, "enroll", f"{p}-S2")
        assert code == 0, err
        s2 = await wait_status(dev_env.client, f"{p}-S2", TandemStatus.WAITING_FOR_MENTOR)
        await introduced_to(
            sink,
            f"{p}.j.feldhausen@studium.example.org",
            f"{p}.albrechtsen@praxis-nord.example.org",
        )
    assert s1.mentor_id == f"{p}-M-X" and s2.mentor_id is None
    assert s1.match_score == pytest.approx(9.5), "a worse total than the cohort's 12"
    assert not [m for m in sink.messages() if m["To"] == f"{p}.weiss@praxis-sued.example.org"]


async def test_a_seat_planned_for_a_tandem_that_fails_to_start_is_given_back_and_a_rerun_matches(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = cli_env(db_dsn, dev_env, settings)
    p = await import_trap(env, tmp_path)
    start = TandemClient.start

    async def temporal_refuses_s2(
        self: TandemClient, mentee: Mentee, *a: object, **kw: object
    ) -> object:
        if mentee.id == f"{p}-S2":
            raise RPCError("frontend unavailable", RPCStatusCode.UNAVAILABLE, b"")
        return await start(self, mentee, *a, **kw)

    async with running_worker(dev_env.client, settings, db):
        monkeypatch.setattr(TandemClient, "start", temporal_refuses_s2)
        with pytest.raises(RPCError, match="unavailable"):
            await enroll_mentees(
                dev_env.client, db_dsn, [f"{p}-S1", f"{p}-S2"], settings, cohort=True
            )
        monkeypatch.undo()
        seats = {r["mentee_id"]: r["mentor_id"] for r in await db.fetch("SELECT * FROM seats")}
        assert seats == {f"{p}-S1": f"{p}-M-Y"}, "S2's planned seat at X is free again"
        s1 = await wait_status(dev_env.client, f"{p}-S1", TandemStatus.INTRODUCED)
        assert s1.mentor_id == f"{p}-M-Y" and "seat already reserved" not in s1.match_reasons

        code, out, err = await tandem_cli(env, "enroll", "--cohort", f"{p}-S1", f"{p}-S2")
        assert code == 0, err
        assert f"{p}-S1: already enrolled (status introduced)" in out
        assert f"{p}-S2: enrolled (matching, mentor {p}-M-X planned (score 6.5))" in out
        s2 = await wait_status(dev_env.client, f"{p}-S2", TandemStatus.INTRODUCED)
        assert s2.mentor_id == f"{p}-M-X"
        assert s2.match_score == 6.5 and s2.match_reasons == [
            f"programme {FACHARZT}",
            "same region",
            "same language (de)",
            "1 free seat(s)",
        ], "the plan of the rerun's cohort: S2 alone, S1 runs"
    seats = {r["mentee_id"]: r["mentor_id"] for r in await db.fetch("SELECT * FROM seats")}
    assert seats == {f"{p}-S1": f"{p}-M-Y", f"{p}-S2": f"{p}-M-X"}


async def test_a_mentee_with_a_running_tandem_or_a_held_seat_is_left_out_of_the_cohort(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
) -> None:
    p = f"c{uuid.uuid4().hex[:6]}"
    env = cli_env(db_dsn, dev_env, settings)
    waiting = mentee(f"{p}-S-waits", program=FACHARZT)
    held = mentee(f"{p}-S-held")
    fresh = mentee(f"{p}-S-new")
    await put_people(db, [], [waiting, held, fresh])
    async with running_worker(dev_env.client, settings, db):
        code, _, err = await tandem_cli(env, "enroll", waiting.id)  # no mentor on file yet
        assert code == 0, err
        await wait_status(dev_env.client, waiting.id, TandemStatus.WAITING_FOR_MENTOR)
        # A seat left from an enrolment that died before starting the workflow.
        await put_people(
            db,
            [
                mentor(f"{p}-M-1", programs=[HAUSARZT, FACHARZT], capacity=2),
                mentor(f"{p}-M-2", programs=[FACHARZT]),
            ],
        )
        await db.execute(
            "INSERT INTO seats (mentee_id, mentor_id) VALUES ($1, $2)", held.id, f"{p}-M-1"
        )
        code, out, err = await tandem_cli(
            env, "enroll", "--cohort", waiting.id, held.id, fresh.id, "--json"
        )
        assert code == 0, err
        rows = {r["mentee_id"]: r for r in json.loads(out)}
        assert (
            rows[waiting.id]["started"] is False and rows[waiting.id]["planned_mentor_id"] is None
        )
        assert rows[held.id]["started"] is True and rows[held.id]["planned_mentor_id"] is None
        assert rows[fresh.id]["planned_mentor_id"] == f"{p}-M-1"
        held_state = await wait_status(dev_env.client, held.id, TandemStatus.INTRODUCED)
        fresh_state = await wait_status(dev_env.client, fresh.id, TandemStatus.INTRODUCED)
        still = await query_state(dev_env.client, waiting.id)
    assert held_state.mentor_id == f"{p}-M-1" and held_state.match_reasons == [
        "seat already reserved"
    ]
    assert fresh_state.mentor_id == f"{p}-M-1"
    assert still.status is TandemStatus.WAITING_FOR_MENTOR and still.mentor_id is None
    seat = await db.fetchval("SELECT mentor_id FROM seats WHERE mentee_id = $1", waiting.id)
    assert seat is None, "the running tandem was planned nothing: it looks for itself"
