"""``tandem report`` on a seeded database, through the real parts: the CLI as a process, the
SQL on PostgreSQL, and the HTML in a headless Chromium.

The seed has two programmes:

* ``uni-mentoring``: five real tandems run by the production worker on the time-skipping
  server (twelve monthly check-ins each, one first mentor says no, one mentee never answers),
  so the report reads what the workflow really writes;
* ``stipendium-hausarzt``: 33 tandems of a 2024 cohort written as the workflow writes them
  (``activities/events.py``'s ``record_event``), one story per tandem (``STORIES``), with
  figures worked out by hand below, a few cells small enough to be suppressed, and one mentee
  who came back for a second tandem.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import jsonschema
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from PIL import Image
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from activities.db import migrate
from activities.events import record_event
from activities.ratings import record_rating
from starter.mailsink import MailSink
from starter.tandem_cmds import start_tandem
from tandem.answers import Intent
from tandem.messages import MailRequest, StatusEvent
from tandem.models import Mentee, Mentor, Role, TandemStatus
from tandem.report import HIDDEN, SMALL, TandemRow, build_report, suppressed_group
from tandem.report import MailRow as Mails
from tandem.settings import Settings
from tests.conftest import _with_database
from tests.support import Tandem, mentee, mentor, put_people, running_worker, tandem_cli, uid
from tests.test_codec_ui import CHROMIUM, CHROMIUM_FLAGS

HAUSARZT = "stipendium-hausarzt"
UNI = "uni-mentoring"


# -- the hand-written cohort -------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    """One tandem of the 2024 cohort.

    ``days``: enrolment to first introduction (0: an hour later; None: never introduced).
    ``path``: ``yes`` (both said yes), ``no`` (the first mentor said no, the second pairing
    went on), ``office`` (active, then the office rematched it), ``deciding`` (no decision
    yet), ``waiting`` (no mentor free). ``checks``: per quarter from 2024-Q2 to 2025-Q1, the
    check-in and its answer: ``m`` "we met", ``s`` "later", ``.`` no answer, ``-`` none.
    ``end``: what happened after the last check-in.
    """

    days: float | None
    path: str
    checks: str
    end: str
    phase: str


S, R, E = "study", "residency", "employment"
#: Index = tandem number i: enrolled 2024-01-08 09:00 UTC + i days (i=32: see RETURNING).
STORIES: list[Story] = [
    Story(0, "yes", "mm.m", "completed", E),  # 0
    Story(0, "no", "ms.m", "active", S),
    Story(0, "yes", "mmmm", "active", E),
    Story(0, "yes", ".m.m", "completed", E),
    Story(0, "yes", "m..m", "active", E),
    Story(0, "no", "mm..", "active", S),  # 5
    Story(1, "yes", "m..m", "paused", S),
    Story(2, "yes", ".mm.", "active", R),
    Story(2, "yes", ".---", "stopped_by_mentee", S),
    Story(3, "no", "mm.-", "active", E),
    Story(3, "yes", "m---", "ended_by_office", S),  # 10
    Story(4, "yes", "m..-", "active", E),
    Story(5, "no", "ms.-", "active", R),
    Story(6, "yes", ".---", "ended_by_office", S),
    Story(8, "yes", "mm--", "completed", E),
    Story(9, "no", "m..-", "active", S),  # 15
    Story(10, "yes", "mm--", "completed", E),
    Story(12, "yes", "..--", "stopped_by_mentee", S),
    Story(14, "yes", "mm.-", "completed", E),
    Story(15, "yes", "m.m-", "completed", E),
    Story(28, "yes", "-.--", "paused", S),  # 20: first check-in in 2024-Q3
    Story(35, "yes", "-m.-", "ended_by_office", E),
    Story(42, "yes", "-..-", "active", S),
    Story(60, "yes", "-..-", "active", R),
    Story(18, "office", "-..-", "active", S),
    Story(21, "office", "-..-", "active", S),  # 25
    Story(25, "no", "-..-", "active", S),
    Story(120, "deciding", "----", "", S),
    Story(95, "deciding", "----", "", S),
    Story(75, "deciding", "----", "", S),
    Story(None, "waiting", "----", "", S),  # 30
    Story(None, "waiting", "----", "", S),
    Story(None, "waiting", "----", "", E),
]
#: Tandem 32 is the second tandem of tandem 16's mentee, enrolled after the first completed.
RETURNING = {32: 16}
RETURNED_AT = datetime(2024, 11, 4, 9, tzinfo=UTC)
COHORT_START = datetime(2024, 1, 8, 9, tzinfo=UTC)
QUARTERS = ["2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1"]
FIRST_NAMES = ["Lea", "Jonas", "Mira", "Emre", "Anna", "Paul", "Zeynep", "Lukas", "Ida", "Can"]
LAST_NAMES = [
    "Hoffmann", "Yilmaz", "Schröder", "Kowalski", "Brandt", "Nguyen", "Lindqvist", "Okafor",
    "Wendler", "Petrović", "Albers", "Demir", "Hartung", "Jankowski", "Seidel", "Marquardt",
    "Ebersbach", "Kuhnert", "Aksoy", "Vogelsang", "Reinholz", "Castellano", "Brückner",
    "Haferkamp", "Özdemir", "Lichtenberg", "Rasmussen", "Tiedemann", "Gottschalk", "Nowak",
    "Sauerbrey", "Winterfeld", "Abendroth",
]  # fmt: skip


def hausarzt_mentee(i: int) -> Mentee:
    n = RETURNING.get(i, i)
    first, last = FIRST_NAMES[n % 10], LAST_NAMES[n]
    return mentee(
        f"HA24-{n:03d}",
        first_name=first,
        last_name=last,
        email=f"{first}.{last}@uni-klinik.example.de".lower(),
        phase=STORIES[i].phase,
    )


def hausarzt_mentor(n: int) -> Mentor:
    return mentor(
        f"MHA-{n:03d}",
        first_name="Dr. Ruth",
        last_name=f"Praxisinhaberin{n:03d}",
        email=f"praxis{n:03d}@hausarzt-land.example.de",
        capacity=2,
    )


class History:
    """A tandem's rows as the workflow writes them (``record_event``): the kinds of one
    transition share its time and get consecutive sequence numbers."""

    def __init__(self, mentee_id: str, phase: str, enrolment: int = 1) -> None:
        self.mentee_id, self.phase, self.enrolment = mentee_id, phase, enrolment
        self.rows: list[StatusEvent] = []
        self.status = TandemStatus.MATCHING
        self.mentor: str | None = None
        self.rematches = 0

    def step(
        self, at: datetime, *kinds: str, status: TandemStatus | None = None, **kw: Any
    ) -> None:
        self.status = status or self.status
        self.mentor = kw.get("mentor", self.mentor)
        for kind in kinds:
            self.rows.append(
                StatusEvent(
                    mentee_id=self.mentee_id,
                    enrolment=self.enrolment,
                    seq=len(self.rows) + 1,
                    at=at,
                    kind=kind,
                    program=HAUSARZT,
                    status=self.status,
                    phase=self.phase,
                    mentor_id=self.mentor,
                    cadence_days=91.0,
                    rematches=self.rematches,
                )
            )


def story_history(i: int, story: Story) -> History:
    """Tandem i's event log. Check-ins come every 91 days from the activation (as the
    programme's cadence makes them), so quarter q's falls on 2024-05-06 + i + 91q days."""
    the_mentee = hausarzt_mentee(i)
    h = History(the_mentee.id, story.phase, enrolment=2 if i in RETURNING else 1)
    enrolled = RETURNED_AT if i in RETURNING else COHORT_START + timedelta(days=i)
    h.step(enrolled, "enrolled", status=TandemStatus.MATCHING)
    if story.days is None:
        h.step(
            enrolled + timedelta(minutes=1),
            "no_mentor_free",
            status=TandemStatus.WAITING_FOR_MENTOR,
        )
        return h
    introduced = enrolled + (timedelta(days=story.days) if story.days else timedelta(hours=1))
    h.step(introduced, "introduced", status=TandemStatus.INTRODUCED, mentor=f"MHA-{i:03d}")
    if story.path == "deciding":
        h.step(introduced + timedelta(days=30), "decision_asked", status=TandemStatus.DECIDING)
        return h
    first_quarter = story.checks.index(next(c for c in story.checks if c != "-"))
    activated = datetime(2024, 2, 5, 9, tzinfo=UTC) + timedelta(days=i % 28 + 91 * first_quarter)
    if story.path == "no":
        h.step(introduced + timedelta(days=4), "decision_asked", status=TandemStatus.DECIDING)
        h.rematches = 1
        h.step(
            introduced + timedelta(days=5),
            "decision_decline_mentor",
            "rematching",
            status=TandemStatus.MATCHING,
            mentor=None,
        )
        introduced += timedelta(days=6)
        h.step(introduced, "introduced", status=TandemStatus.INTRODUCED, mentor=f"MHA-{i + 40:03d}")
    if story.path == "office":
        first = activated - timedelta(days=40)
        h.step(first - timedelta(days=1), "decision_asked", status=TandemStatus.DECIDING)
        h.step(
            first,
            "decision_continue_mentee",
            "decision_continue_mentor",
            "activated",
            status=TandemStatus.ACTIVE,
        )
        h.rematches = 1
        h.step(
            activated - timedelta(days=30),
            "rematch_by_office",
            status=TandemStatus.MATCHING,
            mentor=None,
        )
        introduced = activated - timedelta(days=29)
        h.step(introduced, "introduced", status=TandemStatus.INTRODUCED, mentor=f"MHA-{i + 40:03d}")
    assert introduced < activated, f"story {i} cannot be activated in time"
    h.step(
        introduced + (activated - introduced) / 2, "decision_asked", status=TandemStatus.DECIDING
    )
    h.step(activated - timedelta(hours=5), "decision_continue_mentee")
    h.step(activated, "decision_continue_mentor", "activated", status=TandemStatus.ACTIVE)
    at_risk, previous, last = False, None, activated
    for q, answer in enumerate(story.checks):
        if answer == "-":
            continue
        last = activated + timedelta(days=91 * (q - first_quarter + 1))
        # The machine's rule: the round after a period without contact flags the tandem.
        flags = previous is not None and previous != "m" and not at_risk
        at_risk = at_risk or flags
        h.step(last, "at_risk" if flags else "nudged")
        if answer == "m":
            h.step(last + timedelta(days=2), "contact")
            at_risk = False
        elif answer == "s":
            h.step(last + timedelta(days=3), "snoozed")
            h.step(last + timedelta(days=17), "snooze_over_mentee")
        previous = answer
    final = {
        "completed": TandemStatus.COMPLETED,
        "paused": TandemStatus.PAUSED,
        "ended_by_office": TandemStatus.ENDED,
        "stopped_by_mentee": TandemStatus.ENDED,
    }
    if story.end in final:
        h.step(last + timedelta(days=20), story.end, status=final[story.end])
    return h


#: Anonymous ratings (only count and total are kept): 12 for the GP track, 3 for the uni.
HAUSARZT_RATINGS = [5, 4, 4, 5, 3, 5, 4, 4, 5, 4, 3, 4]
UNI_RATINGS = [5, 4, 5]


async def seed_cohort(pool: asyncpg.Pool) -> list[str]:
    """The GP track's cohort, written as the workflow writes it; returns what must never show."""
    mentors = [hausarzt_mentor(n) for n in sorted({*range(33), *range(40, 67)})]
    mentees = [hausarzt_mentee(i) for i in range(33) if i not in RETURNING]
    await put_people(pool, mentors, mentees)
    async with pool.acquire() as conn:
        for i, story in enumerate(STORIES):
            for row in story_history(i, story).rows:
                await record_event(conn, row)
        for n, rating in enumerate(HAUSARZT_RATINGS):
            await record_rating(conn, HAUSARZT, f"answer-ha-{n}", rating)
        for n, rating in enumerate(UNI_RATINGS):
            await record_rating(conn, UNI, f"answer-uni-{n}", rating)
    return people_secrets(mentors, mentees)


def people_secrets(mentors: Sequence[Mentor], mentees: Sequence[Mentee]) -> list[str]:
    return [
        value
        for p in [*mentors, *mentees]
        for value in (p.id, p.last_name, f"{p.first_name} {p.last_name}", str(p.email))
    ]


# -- the real tandems --------------------------------------------------------------------

UNI_TANDEMS = 5
UNI_CHECK_INS = 12  # monthly for the twelve-month tandem period


async def run_uni_tandems(
    env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> list[str]:
    """Five tandems of the university programme on the production worker, start to end: the
    second mentee's first mentor says no, the fifth mentee never answers a check-in."""
    mentees = [
        mentee(
            uid("UNI"), program=UNI, phase="tandem", first_name="Marit", last_name=f"Studentin{n}"
        )
        for n in range(UNI_TANDEMS)
    ]
    mentors = [
        mentor(uid("DOZ"), programs=[UNI], first_name="Prof. Jakob", last_name=f"Dozent{n}")
        for n in range(UNI_TANDEMS + 1)
    ]
    await put_people(pool, mentors, mentees)
    declining, silent = mentees[1].id, mentees[4].id
    people = {m.id: Tandem(env, m.id) for m in mentees}
    first_mentor: dict[str, str] = {}
    handled: set[str] = set()

    async def answer(mail: MailRequest) -> None:
        if mail.idempotency_key in handled:
            return
        handled.add(mail.idempotency_key)
        t = people[mail.mentee_id]
        if mail.template == "introduction_mentee" and mail.mentor_id:
            first_mentor.setdefault(mail.mentee_id, mail.mentor_id)
        if mail.template == "decision_request":
            if mail.mentee_id == declining and mail.mentor_id == first_mentor[declining]:
                if mail.to is Role.MENTOR:  # "Das passt leider nicht."
                    await t.answer(Role.MENTOR, Intent.DECLINE, mail.request_id)
                return
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "nudge" and mail.to is Role.MENTEE and mail.mentee_id != silent:
            await t.answer(Role.MENTEE, Intent.MET, mail.request_id)

    async with running_worker(env.client, settings, pool, after_accept=answer):
        handles = [await start_tandem(env.client, m, settings) for m in mentees]
        # One result at a time: each wait lets the test server skip time (for every tandem);
        # waits in parallel would unlock and lock its clock out of step.
        finals = [await asyncio.wait_for(h.result(), 240) for h in handles]
        for t in people.values():
            await asyncio.wait_for(t.settle(), 60)
    assert [f.status for f in finals] == [TandemStatus.COMPLETED] * UNI_TANDEMS
    assert [t.refusals for t in people.values()] == [[]] * UNI_TANDEMS
    return people_secrets(mentors, mentees)


@dataclass
class Seed:
    env: dict[str, str]
    #: Ids, names and addresses of everyone seeded: none may appear in a report.
    secrets: list[str]
    #: Mails the real tandems sent (what the SMTP sink received).
    uni_mails: int
    tmp: Path
    outputs: list[str] = field(default_factory=list)


@pytest_asyncio.fixture(scope="module")
async def seeded(
    pg_server_dsn: str, ts_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Seed]:
    """One database for the module: the real tandems first, then the written cohort."""
    tmp = tmp_path_factory.mktemp("report")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = _with_database(pg_server_dsn, name)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
    assert pool is not None
    sink = MailSink(tmp / "home" / "mail", port=0)
    await sink.start()
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        settings = Settings(
            home=tmp / "home",
            smtp_port=sink.port,
            task_queue=f"tq-{uuid.uuid4().hex[:8]}",
            reply_token_secret=SecretStr("test-secret"),
        )
        secrets = await run_uni_tandems(ts_env, pool, settings)
        secrets += await seed_cohort(pool)
        env = {**os.environ, "DATABASE_URL": dsn, "TANDEM_HOME": str(tmp / "cli-home")}
        env.pop("TANDEM_DATABASE_URL", None)
        yield Seed(env=env, secrets=secrets, uni_mails=len(sink.messages()), tmp=tmp)
    finally:
        await sink.stop()
        await pool.close()
        admin = await asyncpg.connect(pg_server_dsn)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def report(seed: Seed, *args: str) -> str:
    code, out, err = await tandem_cli(seed.env, "report", *args)
    assert code == 0, err
    seed.outputs.append(out)
    return out


async def report_json(seed: Seed, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await report(seed, *args, "--format", "json"))
    return data


def shown(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {r["label"]: r["count"]["shown"] for r in rows}


# -- figures -----------------------------------------------------------------------------


async def test_a_programmes_figures_are_the_hand_counted_ones_with_small_cells_suppressed(
    seeded: Seed,
) -> None:
    r = await report_json(seeded, "--program", HAUSARZT)
    assert r["program"] == HAUSARZT and r["since"] is None and r["threshold"] == 5
    assert r["tandems"] == {"value": 33, "shown": "33"}
    assert r["completed"]["shown"] == "6"
    # waiting 3, deciding 3, paused 2: below five. The returning mentee's first tandem counts
    # as completed (from its events), the second as waiting (from the projection).
    assert shown(r["by_status"]) == {
        "waiting_for_mentor": SMALL,
        "deciding": SMALL,
        "active": "14",
        "paused": SMALL,
        "completed": "6",
        "ended": "5",
    }
    assert list(shown(r["by_status"])) == [
        "waiting_for_mentor", "deciding", "active", "paused", "completed", "ended",
    ]  # fmt: skip
    # residency 3 alone is small: with the total shown, employment (12) is hidden too.
    assert shown(r["by_phase"]) == {"study": "18", "residency": SMALL, "employment": HIDDEN}

    ttm = r["time_to_match"]
    # 30 introduced; sorted days: six within the hour, 1 2 2 3 3 4 5 6 | 8 9 10 12 14 15 18 21
    # 25 28 | 35 42 60 75 | 95 120. Median (8+9)/2; 90th percentile 60 + 0.1 * (75 - 60).
    assert ttm["matched"]["shown"] == "30"
    assert ttm["median_days"] == {"value": 8.5, "shown": "8.5", "unit": "days"}
    assert ttm["p90_days"]["value"] == 61.5
    assert shown(ttm["distribution"]) == {
        "under 1 day": "6",
        "1-7 days": "8",
        "7-30 days": "10",
        "30-90 days": SMALL,
        "90 days and more": SMALL,
    }
    declined, rematched = r["decisions"]["declined"], r["decisions"]["rematched"]
    # Six "no" among the 27 that decided (three are still deciding).
    assert (declined["count"]["value"], declined["of"]["value"]) == (6, 27)
    assert declined["rate"]["value"] == 22.2  # 6/27
    # Six after a no, two by the office, of the 30 introduced.
    assert (rematched["count"]["value"], rematched["of"]["value"]) == (8, 30)
    assert rematched["rate"]["value"] == 26.7

    quarters = {q["quarter"]: q for q in r["check_ins"]["quarters"]}
    assert list(quarters) == QUARTERS
    cells = {
        q: (v["sent"]["shown"], v["answered"]["shown"], v["rate"]["shown"])
        for q, v in quarters.items()
    }
    assert cells == {
        "2024-Q2": ("20", "15", "75.0"),
        "2024-Q3": ("24", "12", "50.0"),
        # three answered: small, so its rate goes too; being the only small answered cell,
        # the next smallest (2025-Q1's six) is hidden as well, and its rate with it.
        "2024-Q4": ("20", SMALL, "suppressed"),
        "2025-Q1": ("8", HIDDEN, "suppressed"),
    }
    total = r["check_ins"]["total"]
    assert (total["sent"]["value"], total["answered"]["value"], total["rate"]["value"]) == (
        72,
        36,
        50.0,
    )

    # Flagged: tandems 0 1 3 4 5 6 7 11 12 15 17 19 22-26; still at risk: 5 11 12 15 22-26.
    assert r["at_risk"] == {
        "flagged": {"value": 17, "shown": "17"},
        "now": {"value": 9, "shown": "9"},
    }
    assert r["ratings"]["count"]["value"] == 12
    assert r["ratings"]["mean"]["value"] == 4.2  # 50 / 12
    assert r["mails"]["sent"]["shown"] == SMALL  # the written cohort sent none
    assert any('"<5"' in note for note in r["notes"])


async def test_the_real_tandems_are_reported_as_the_workflow_recorded_them(seeded: Seed) -> None:
    r = await report_json(seeded, "--program", UNI)
    assert r["tandems"]["shown"] == "5" and r["completed"]["shown"] == "5"
    assert shown(r["by_status"]) == {"completed": "5"}
    assert shown(r["by_phase"]) == {"tandem": "5"}
    ttm = r["time_to_match"]  # mentors were free: introduced within seconds
    assert ttm["matched"]["shown"] == "5" and ttm["median_days"]["shown"] == "0.0"
    assert shown(ttm["distribution"])["under 1 day"] == "5"
    # one "no" of five decisions, one rematch of five: below five, so no rate
    declined, rematched = r["decisions"]["declined"], r["decisions"]["rematched"]
    assert (declined["count"]["shown"], declined["of"]["shown"], declined["rate"]["shown"]) == (
        SMALL, "5", "suppressed",
    )  # fmt: skip
    assert (rematched["count"]["shown"], rematched["rate"]["shown"]) == (SMALL, "suppressed")
    total = r["check_ins"]["total"]
    sent, answered = UNI_TANDEMS * UNI_CHECK_INS, (UNI_TANDEMS - 1) * UNI_CHECK_INS
    assert (total["sent"]["value"], total["answered"]["value"]) == (sent, answered)
    assert total["rate"]["value"] == 80.0
    assert r["at_risk"]["flagged"]["shown"] == SMALL  # the silent mentee only
    assert r["ratings"]["count"]["shown"] == SMALL and r["ratings"]["mean"]["shown"] == "suppressed"
    assert r["mails"]["sent"]["value"] == seeded.uni_mails
    assert r["mails"]["refused"]["shown"] == SMALL

    everything = await report_json(seeded)
    assert everything["program"] is None
    assert everything["tandems"]["value"] == 33 + UNI_TANDEMS
    assert everything["completed"]["value"] == 6 + UNI_TANDEMS


async def test_since_reports_only_the_tandems_enrolled_from_that_day(seeded: Seed) -> None:
    r = await report_json(seeded, "--program", HAUSARZT, "--since", "2024-02-01")
    assert r["since"] == "2024-02-01"
    # tandems 24-31 (enrolled 1-8 February) and the returning mentee's second tandem
    assert r["tandems"]["value"] == 9
    assert shown(r["by_status"]) == {
        "waiting_for_mentor": SMALL,
        "deciding": SMALL,
        "active": SMALL,
    }
    ttm = r["time_to_match"]  # 18 21 25 75 95 120
    assert ttm["matched"]["value"] == 6
    assert (ttm["median_days"]["value"], ttm["p90_days"]["value"]) == (50.0, 107.5)
    assert r["decisions"]["declined"]["rate"]["shown"] == "suppressed"  # 1 of 3
    assert r["check_ins"]["total"]["rate"]["shown"] == "suppressed"  # three tandems
    assert r["at_risk"]["flagged"]["shown"] == SMALL


# -- formats -----------------------------------------------------------------------------


def obj(**properties: Any) -> dict[str, Any]:
    """A JSON-schema object with exactly these keys."""
    return {
        "type": "object",
        "required": list(properties),
        "additionalProperties": False,
        "properties": properties,
    }


TEXT: dict[str, Any] = {"type": "string"}
#: A count is shown from five up, or not at all (null, with "<5" or "≥5").
COUNT = obj(value={"type": ["integer", "null"], "minimum": 5}, shown=TEXT)
FIGURE = obj(value={"type": ["number", "null"]}, shown=TEXT, unit=TEXT)
ROWS = {"type": "array", "items": obj(label=TEXT, count=COUNT)}
SHARE = obj(count=COUNT, of=COUNT, rate=FIGURE)
QUARTER = obj(
    quarter={"type": "string", "pattern": r"^(\d{4}-Q[1-4]|all)$"},
    sent=COUNT,
    answered=COUNT,
    rate=FIGURE,
)
SCHEMA = obj(
    program={"type": ["string", "null"]},
    since={"type": ["string", "null"], "pattern": r"^\d{4}-\d{2}-\d{2}$"},
    generated_at=TEXT,
    threshold={"const": 5},
    tandems=COUNT,
    completed=COUNT,
    by_status=ROWS,
    by_phase=ROWS,
    time_to_match=obj(matched=COUNT, median_days=FIGURE, p90_days=FIGURE, distribution=ROWS),
    decisions=obj(declined=SHARE, rematched=SHARE),
    check_ins=obj(quarters={"type": "array", "items": QUARTER}, total=QUARTER),
    at_risk=obj(flagged=COUNT, now=COUNT),
    ratings=obj(count=COUNT, mean=FIGURE),
    mails=obj(sent=COUNT, refused=COUNT, waiting=COUNT),
    notes={"type": "array", "items": TEXT, "minItems": 1},
)


async def test_json_follows_its_schema_for_every_scope(seeded: Seed) -> None:
    for args in ([], ["--program", HAUSARZT], ["--program", UNI, "--since", "2020-01-01"]):
        jsonschema.validate(await report_json(seeded, *args), SCHEMA)


async def test_csv_parses_and_holds_the_same_figures_as_json(seeded: Seed) -> None:
    text = await report(seeded, "--program", HAUSARZT, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["section", "item", "measure", "value"]
    value = {(r["section"], r["item"], r["measure"]): r["value"] for r in rows}
    assert value[("report", "", "programme")] == HAUSARZT
    assert value[("tandems", "", "total")] == "33"
    assert value[("status", "active", "tandems")] == "14"
    assert value[("status", "paused", "tandems")] == SMALL
    assert value[("phase", "employment", "tandems")] == HIDDEN
    assert value[("time_to_match", "", "median_days")] == "8.5"
    assert value[("time_to_match", "", "p90_days")] == "61.5"
    assert value[("declined", "", "rate_percent")] == "22.2"
    assert value[("check_ins", "2024-Q4", "answered")] == SMALL
    assert value[("check_ins", "2024-Q2", "rate_percent")] == "75.0"
    assert value[("check_ins", "all", "sent")] == "72"
    assert value[("ratings", "", "mean")] == "4.2"
    assert any("<5" in r["value"] for r in rows if r["section"] == "notes")
    # every count cell is a number from five up or a suppression mark
    for r in rows:
        if r["measure"] in {"tandems", "sent", "answered", "of", "flagged", "now", "total"}:
            assert r["value"] in {SMALL, HIDDEN} or int(r["value"]) >= 5, r


async def test_table_shows_the_figures_and_says_what_is_suppressed(seeded: Seed) -> None:
    out = await report(seeded, "--program", HAUSARZT)
    assert "Tandem report" in out and f"programme {HAUSARZT}" in out
    lines = out.splitlines()
    assert any("time to match, median" in line and "8.5" in line for line in lines)
    assert any("decline rate" in line and "22.2" in line for line in lines)
    assert any(re.search(r"2024-Q4\W+20\W+<5\W+suppressed", line) for line in lines)
    assert any(re.search(r"employment\W+≥5", line) for line in lines)
    assert 'a count below 5 is shown as "<5"' in " ".join(out.split())


async def test_output_file_takes_its_format_from_the_suffix(seeded: Seed) -> None:
    target = seeded.tmp / "hausarzt-2024.csv"
    code, out, err = await tandem_cli(
        seeded.env, "report", "--program", HAUSARZT, "-o", str(target)
    )
    assert code == 0, err
    assert out == "" and err.strip() == f"written: {target}"
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0] == ["section", "item", "measure", "value"]
    seeded.outputs.append(target.read_text(encoding="utf-8"))


async def test_bad_input_is_one_line_and_writes_nothing(seeded: Seed) -> None:
    target = seeded.tmp / "never.html"
    kept = seeded.tmp / "last-quarter.html"
    kept.write_text("last quarter's report\n", encoding="utf-8")
    cases = [
        (["--program", "stipendium-hausartz", "-o", str(target)], 1, "unknown programme"),
        (["--since", "01.02.2024", "-o", str(target)], 2, "not a date"),
        (["--since", "2024-13-01"], 2, "not a date"),
        (["--format", "pdf"], 2, "pdf"),
        (["--program", HAUSARZT, "-o", str(kept)], 2, "exists already"),
    ]
    for args, expected, reason in cases:
        code, out, err = await tandem_cli(seeded.env, "report", *args)
        assert (code, out) == (expected, ""), (args, code, out, err)
        assert len(err.strip().splitlines()) == 1 and reason in err, (args, err)
        assert "Traceback" not in err
    assert not target.exists()
    assert kept.read_text(encoding="utf-8") == "last quarter's report\n"


# -- the HTML file in a browser ----------------------------------------------------------


def screenshot_path(tmp: Path) -> Path:
    folder = Path(os.environ.get("TANDEM_SCREENSHOT_DIR") or tmp)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "report-html.png"


@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium binary at {CHROMIUM}")
async def test_html_report_is_one_self_contained_file_whose_charts_render(seeded: Seed) -> None:
    from playwright.async_api import Request, Route, async_playwright, expect

    target = seeded.tmp / "hausarzt.html"
    code, _, err = await tandem_cli(seeded.env, "report", "--program", HAUSARZT, "-o", str(target))
    assert code == 0, err
    html = target.read_text(encoding="utf-8")
    seeded.outputs.append(html)
    assert not re.search(r"<(script|link|img|iframe)\b", html, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert "@import" not in html
    assert not re.search(r"""url\(\s*["']?(?!#)""", html), "only local references (#clip-path)"

    attempted: list[str] = []

    async def offline(route: Route) -> None:
        if route.request.url.startswith("file://"):
            await route.continue_()
        else:
            attempted.append(route.request.url)
            await route.abort()

    def seen(request: Request) -> None:
        if not request.url.startswith(("file://", "data:")):
            attempted.append(request.url)

    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(seeded.tmp / f"chromium-{uuid.uuid4().hex[:6]}"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            await context.route("**/*", offline)
            context.on("request", seen)
            page = context.pages[0] if context.pages else await context.new_page()
            await page.goto(target.as_uri(), wait_until="load")
            charts = page.locator("figure.chart svg")
            await expect(charts).to_have_count(3)
            for n in range(3):
                box = await charts.nth(n).bounding_box()
                assert box is not None and box["width"] > 200 and box["height"] > 100, box
            # the status chart draws a bar for each shown count (active, completed, ended)
            # and none for a hidden one; Matplotlib's patch_1/_2 are the backgrounds
            drawn = await page.locator("#chart-status svg").evaluate(
                """svg => [...svg.querySelectorAll("g[id^='patch_'] path")]
                        .map(p => p.getBBox()).filter(b => b.width > 1 && b.height > 1)
                        .length"""
            )
            assert drawn == 2 + 3
            await expect(page.locator(".card").first).to_contain_text("33")
            await expect(page.get_by_role("cell", name=SMALL).first).to_be_visible()
            shot = screenshot_path(seeded.tmp)
            await page.screenshot(path=str(shot), full_page=True)
        finally:
            await context.close()
    assert attempted == [], "the report must load nothing"
    with Image.open(shot) as image:
        assert image.width >= 1000 and image.height >= 900
        colours = image.convert("RGB").getcolors(maxcolors=256)
    assert colours is None or len(colours) > 16, "the screenshot is (nearly) blank"


# -- confidentiality (runs last: it also reads what the tests above printed) --------------


async def test_no_id_name_or_address_of_anyone_appears_in_any_format(seeded: Seed) -> None:
    for fmt in ("table", "csv", "json", "html"):
        for args in ([], ["--program", HAUSARZT], ["--program", UNI]):
            await report(seeded, *args, "--format", fmt)
    assert len(seeded.outputs) >= 12
    assert len(seeded.secrets) > 300
    leaks = {s for s in seeded.secrets for out in seeded.outputs if s in out}
    assert leaks == set()


# -- the pure core -----------------------------------------------------------------------


def test_a_lone_small_cell_hides_the_next_smallest_so_no_subtraction_reveals_it() -> None:
    assert [c.shown for c in suppressed_group([18, 3, 12])] == ["18", SMALL, HIDDEN]
    assert [c.shown for c in suppressed_group([18, 3, 2, 12])] == ["18", SMALL, SMALL, "12"]
    assert [c.shown for c in suppressed_group([3])] == [SMALL]
    assert [c.shown for c in suppressed_group([7, 9])] == ["7", "9"]


KINDS = ["enrolled", "introduced", "activated", "nudged", "at_risk", "contact", "snoozed",
         "decision_decline_mentor", "rematching", "rematch_by_office", "completed"]  # fmt: skip
rows_strategy = st.lists(
    st.builds(
        TandemRow,
        status=st.sampled_from([s.value for s in TandemStatus]),
        phase=st.sampled_from(["study", "residency", "employment"]),
        enrolled_at=st.none(),
        events=st.lists(
            st.tuples(
                st.datetimes(datetime(2023, 1, 1), datetime(2026, 1, 1), timezones=st.just(UTC)),
                st.sampled_from(KINDS),
            ),
            max_size=12,
        ).map(sorted),
    ),
    max_size=40,
)


@hsettings(max_examples=150, deadline=None)
@given(rows=rows_strategy)
def test_no_report_shows_a_count_below_five_or_a_lone_hidden_cell(rows: list[TandemRow]) -> None:
    r = build_report(rows, [], Mails(), program=None, since=date(2023, 1, 1), now=datetime.now(UTC))

    def counts(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict):
            found = [node] if set(node) == {"value", "shown"} else []
            return found + [c for v in node.values() for c in counts(v)]
        if isinstance(node, list):
            return [c for v in node for c in counts(v)]
        return []

    for c in counts(r.model_dump()):
        assert (c["value"] is None and c["shown"] in {SMALL, HIDDEN}) or (
            c["value"] >= 5 and c["shown"] == str(c["value"])
        ), c
    for table in (r.by_status, r.by_phase, r.time_to_match.distribution):
        hidden = [row for row in table if row.count.value is None]
        assert len(table) < 2 or len(hidden) != 1, table
    for q in [*r.check_ins.quarters, r.check_ins.total]:
        if q.answered.value is None or q.sent.value is None:
            assert q.rate.value is None
