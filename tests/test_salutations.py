"""Mails that fit physicians and students (issue 11): "Sehr geehrte Frau Dr. Weber", "Dear
Professor Albrecht", and "Guten Tag Alex Weber" for whoever gave no salutation; the CSV
columns that carry it; and the rhythm said in words ("jede Minute", never "Quartal")."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import pytest
import pytest_asyncio
import temporalio.api.sdk.v1
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.people import get_mentee, get_mentor
from activities.privacy import person_export
from replies.pipeline import Person
from starter.import_cmd import ImportRejected, import_file
from starter.mailsink import MailSink
from starter.tandem_cmds import enroll_ids
from tandem.answers import Intent
from tandem.lifecycle import Template
from tandem.mail import mail_context, render
from tandem.messages import MailRequest
from tandem.models import Language, Role, TandemStatus
from tandem.programs import load_programs
from tandem.salutation import full_name, greeting, named
from tandem.settings import Settings
from tests.support import (
    Tandem,
    mails_to,
    mentee,
    mentor,
    put_people,
    running_worker,
    uid,
    wait_status,
)
from workflows.tandem import workflow_id

PROGRAMS = load_programs(Path(__file__).parent.parent / "programs")


def _person(salutation: str = "", title: str = "") -> SimpleNamespace:
    return SimpleNamespace(first_name="Alex", last_name="Weber", salutation=salutation, title=title)


# -- the rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("salutation", "title", "de", "en"),
    [
        ("Frau", "Dr.", "Sehr geehrte Frau Dr. Weber", "Dear Dr Weber"),
        ("Herr", "Prof. Dr.", "Sehr geehrter Herr Prof. Dr. Weber", "Dear Professor Weber"),
        ("Frau", "Dr. med.", "Sehr geehrte Frau Dr. Weber", "Dear Dr Weber"),
        ("Herr", "PD Dr. med. habil.", "Sehr geehrter Herr Dr. Weber", "Dear Dr Weber"),
        ("Frau", "", "Sehr geehrte Frau Weber", "Dear Ms Weber"),
        ("Herr", "", "Sehr geehrter Herr Weber", "Dear Mr Weber"),
        ("Herr", "Dipl.-Psych.", "Sehr geehrter Herr Weber", "Dear Mr Weber"),
        ("", "Dr.", "Guten Tag Dr. Alex Weber", "Dear Dr Weber"),
        ("", "Prof. Dr. med.", "Guten Tag Prof. Dr. Alex Weber", "Dear Professor Weber"),
        ("", "", "Guten Tag Alex Weber", "Dear Alex Weber"),
    ],
)
def test_greeting(salutation: str, title: str, de: str, en: str) -> None:
    person = _person(salutation, title)
    assert (greeting(person, "de"), greeting(person, "en")) == (de, en)


def test_the_other_person_is_named_as_a_sentence_needs() -> None:
    """ "Ihr Tandem mit Herrn Dr. Weber" (dative), "Herr Dr. Weber hat …"; the contact
    details keep the whole title."""
    him = _person("Herr", "Dr. med.")
    assert named(him, "de", "dat") == "Herrn Dr. Weber"
    assert named(him, "de") == "Herr Dr. Weber"
    assert named(_person("Frau", "Prof. Dr."), "de", "dat") == "Frau Prof. Dr. Weber"
    assert named(_person("", "Dr."), "de", "dat") == "Dr. Alex Weber"
    assert named(him, "en") == "Dr Alex Weber"
    assert named(_person("Frau"), "en") == "Alex Weber"
    assert full_name(him) == "Dr. med. Alex Weber"


def test_a_person_on_file_before_salutations_is_greeted_neutrally() -> None:
    """The reply notices are addressed from the reply pipeline's own record of a person,
    which has no salutation: they say "Guten Tag Alex Weber" (as every mail did before)."""
    person = Person(
        email="a@example.org", first_name="Alex", last_name="Weber", language=Language.DE
    )
    context = {"recipient": person, "intent": "met", "kind": "nudge", "met_on": None,
               "snooze_weeks": None}  # fmt: skip
    assert render("reply_confirmed", "de", context).body.startswith("Guten Tag Alex Weber,\n")


# -- through the real renderer -------------------------------------------------------------


def _rendered(template: Template, to: Role, language: str, **people: dict[str, str]) -> str:
    program = PROGRAMS["stipendium-hausarzt"]
    request = MailRequest(
        idempotency_key="S-9/e1/4/decision_request/mentee",
        template=template.value,
        to=to,
        mentee_id="S-9",
        mentor_id="M-9",
        program=program.id,
        phase="residency",
        request_id="decision:0",
    )
    the_mentee = mentee("S-9", language=Language(language), **people.get("mentee", {}))
    the_mentor = mentor("M-9", language=Language(language), **people.get("mentor", {}))
    _, context = mail_context(request, program, the_mentee, the_mentor)
    return render(template.value, language, context).body


def test_a_german_mail_to_a_physician() -> None:
    body = _rendered(
        Template.DECISION_REQUEST,
        Role.MENTEE,
        "de",
        mentee={"salutation": "Frau", "title": "Dr.", "first_name": "Lena", "last_name": "Weber"},
        mentor={"salutation": "Herr", "title": "Prof. Dr. med.", "last_name": "Albrecht"},
    )
    assert body.splitlines()[2] == "Sehr geehrte Frau Dr. Weber,"
    assert "möchten Sie Ihr Tandem mit Herrn Prof. Dr. Albrecht fortsetzen?" in body
    assert "Lena" not in body  # formal German: the surname with salutation and title


def test_an_english_mail_to_a_professor() -> None:
    body = _rendered(
        Template.DECISION_REQUEST,
        Role.MENTOR,
        "en",
        mentee={"salutation": "Frau", "first_name": "Lena", "last_name": "Weber"},
        mentor={"salutation": "Herr", "title": "Prof. Dr.", "last_name": "Albrecht"},
    )
    assert body.splitlines()[2] == "Dear Professor Albrecht,"
    assert "Would you like to continue your tandem with Lena Weber?" in body


def test_a_mail_to_someone_without_salutation_or_title() -> None:
    body = _rendered(Template.DECISION_REQUEST, Role.MENTEE, "de", mentee={"last_name": "Kaya"})
    assert body.splitlines()[2] == "Guten Tag Jonas Kaya,"


# -- the CSV files, into Postgres ----------------------------------------------------------

MENTORS_CSV = (
    "id;salutation;title;first_name;last_name;email;programs;region;specialty;capacity;language\n"
    "{mentor};Hr.;Prof. Dr. med.;Konrad;Albrecht;konrad.albrecht@klinikum.example.org;"
    "stipendium-hausarzt;Nordstadt;Allgemeinmedizin;2;en\n"
)
MENTEES_CSV = (
    "id;salutation;title;first_name;last_name;email;program;phase;region;specialty;"
    "expected_phase_end;language\n"
    "{mentee};Frau;Dr.;Lena;Weber;lena.weber@praxis.example.org;stipendium-hausarzt;residency;"
    "Nordstadt;Allgemeinmedizin;;de\n"
)


def _write(path: Path, text: str) -> Path:
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())  # as Excel saves "CSV UTF-8"
    return path


async def test_imported_salutation_and_title_are_kept_and_exported(
    db: asyncpg.Pool, tmp_path: Path
) -> None:
    s, m = uid("S"), uid("M")
    await import_file(
        db, "mentors", _write(tmp_path / "m.csv", MENTORS_CSV.format(mentor=m)), PROGRAMS
    )
    await import_file(
        db, "mentees", _write(tmp_path / "e.csv", MENTEES_CSV.format(mentee=s)), PROGRAMS
    )
    async with db.acquire() as conn:
        the_mentor, the_mentee = await get_mentor(conn, m), await get_mentee(conn, s)
        exported = await person_export(conn, s)
    assert the_mentor is not None and the_mentee is not None
    assert (the_mentor.salutation, the_mentor.title) == ("Herr", "Prof. Dr. med.")
    assert (the_mentee.salutation, the_mentee.title) == ("Frau", "Dr.")
    assert exported["as_mentee"]["salutation"] == "Frau"
    assert exported["as_mentee"]["title"] == "Dr."


async def test_an_old_file_changes_nothing_of_a_newer_ones_salutation(
    db: asyncpg.Pool, tmp_path: Path
) -> None:
    """The office re-imports last year's export, written before the columns existed: the
    salutation and title on file stay; a file that has the column and leaves it empty
    clears it."""
    s = uid("S")
    await import_file(
        db, "mentees", _write(tmp_path / "new.csv", MENTEES_CSV.format(mentee=s)), PROGRAMS
    )
    old = (
        "id;first_name;last_name;email;program;phase;region;specialty;expected_phase_end;language\n"
        f"{s};Lena;Weber;lena.weber@praxis.example.org;stipendium-hausarzt;residency;Nordstadt;"
        "Allgemeinmedizin;;de\n"
    )
    counts = await import_file(db, "mentees", _write(tmp_path / "old.csv", old), PROGRAMS)
    assert (counts.created, counts.updated, counts.unchanged) == (0, 0, 1)
    async with db.acquire() as conn:
        kept = await get_mentee(conn, s)
    assert kept is not None and (kept.salutation, kept.title) == ("Frau", "Dr.")

    cleared = MENTEES_CSV.format(mentee=s).replace(";Frau;Dr.;", ";;;")
    counts = await import_file(db, "mentees", _write(tmp_path / "cleared.csv", cleared), PROGRAMS)
    assert counts.updated == 1
    async with db.acquire() as conn:
        now = await get_mentee(conn, s)
    assert now is not None and (now.salutation, now.title) == ("", "")


async def test_an_empty_phase_starts_in_the_first_phase(db: asyncpg.Pool, tmp_path: Path) -> None:
    s, u = uid("S"), uid("U")
    text = (
        "id,first_name,last_name,email,program,phase,region,specialty,expected_phase_end,language\n"
        f"{s},Jonas,Feldhausen,jonas.f@example.org,stipendium-hausarzt,,Nordkreis,,,de\n"
        f"{u},Lina,Vogt,lina.vogt@uni.example.org,uni-mentoring,,,Germanistik,,de\n"
    )
    await import_file(db, "mentees", _write(tmp_path / "e.csv", text), PROGRAMS)
    async with db.acquire() as conn:
        study, tandem = await get_mentee(conn, s), await get_mentee(conn, u)
    assert study is not None and study.phase == "study"
    assert tandem is not None and tandem.phase == "tandem"


async def test_a_bad_salutation_is_one_line_and_imports_nothing(
    db: asyncpg.Pool, tmp_path: Path
) -> None:
    good, bad = uid("S"), uid("S")
    text = MENTEES_CSV.format(mentee=good) + (
        f"{bad};Madame;;Chloé;Martin;chloe.martin@example.org;stipendium-hausarzt;study;;;;de\n"
    )
    with pytest.raises(ImportRejected) as refused:
        await import_file(db, "mentees", _write(tmp_path / "mentees.csv", text), PROGRAMS)
    message = str(refused.value)
    assert message == (
        "mentees.csv: nothing imported: line 3: salutation: must be Frau or Herr"
        " (also Fr., Hr., Mrs, Ms, Mr), or empty"
    )
    assert "Madame" not in message and "Chloé" not in message
    async with db.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT count(*) FROM mentees WHERE id = ANY($1::text[])", [good, bad]
        )
    assert stored == 0


# -- end to end: the introduction through real SMTP ----------------------------------------


@pytest_asyncio.fixture
async def started(ts_env: WorkflowEnvironment) -> AsyncIterator[list[str]]:
    """Mentee ids whose tandems this test started: terminated after it (the time-skipping
    server is shared, and a timer left behind would hold its clock)."""
    ids: list[str] = []
    yield ids
    for mentee_id in ids:
        with contextlib.suppress(RPCError):
            await ts_env.client.get_workflow_handle(workflow_id(mentee_id)).terminate("test over")


async def test_the_introduction_greets_frau_dr_weber(
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    sink: MailSink,
    settings: Settings,
    tmp_path: Path,
    started: list[str],
) -> None:
    s, m = uid("S"), uid("M")
    programs = load_programs(settings.programs_dir)
    await import_file(
        db, "mentors", _write(tmp_path / "m.csv", MENTORS_CSV.format(mentor=m)), programs
    )
    await import_file(
        db, "mentees", _write(tmp_path / "e.csv", MENTEES_CSV.format(mentee=s)), programs
    )
    client = ts_env.client
    async with running_worker(client, settings, db):
        started.append(s)
        await enroll_ids(client, db_dsn, [s], settings)
        await wait_status(client, s, TandemStatus.INTRODUCED)
        [to_mentee] = await mails_to(sink, "lena.weber@praxis.example.org")
        [to_mentor] = await mails_to(sink, "konrad.albrecht@klinikum.example.org")

    german = str(to_mentee.get_content())
    assert german.startswith("Sehr geehrte Frau Dr. Weber,\n")
    assert "Kontakt mit Herrn Prof. Dr. Albrecht auf" in german
    assert "  Prof. Dr. med. Konrad Albrecht\n" in german  # the contact details: whole title
    assert "Ihr Mentor im Stipendienprogramm" in german
    assert "In 30 Tagen fragen wir Sie beide" in german
    english = str(to_mentor.get_content())  # the mentor reads English
    assert english.startswith("Dear Professor Albrecht,\n")
    assert "Dr Lena Weber has received your contact details" in english
    assert "  Dr. Lena Weber\n" in english


async def test_the_demo_rhythm_is_said_as_every_minute(
    ts_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    sink: MailSink,
    settings: Settings,
    started: list[str],
) -> None:
    """The demo programme checks in every minute: the welcome mail says "jede Minute" and
    speaks of no quarter, the office's Temporal UI says "check-ins every minute"."""
    s, m = uid("S"), uid("M")
    the_mentee = mentee(s, program="demo", salutation="Herr", last_name="Feldhausen")
    the_mentor = mentor(
        m, salutation="Frau", title="Dr. med.", last_name="Brandt", language=Language.EN
    )
    await put_people(db, [the_mentor], [the_mentee])
    client = ts_env.client
    t = Tandem(ts_env, s)
    async with running_worker(client, settings, db):
        started.append(s)
        await enroll_ids(client, db_dsn, [s], settings)
        await wait_status(client, s, TandemStatus.INTRODUCED)
        for role in (Role.MENTEE, Role.MENTOR):  # both said yes as soon as they had met
            await t.answer(role, Intent.CONTINUE, "decision:0")
        await t.settle()
        await wait_status(client, s, TandemStatus.ACTIVE)
        welcome = [
            str(mail.get_content())
            for mail in await mails_to(sink, the_mentee.email, 2)  # introduction, welcome
            if "Willkommen" in str(mail["Subject"])
        ]
        [to_mentor] = [
            mail
            for mail in await mails_to(sink, the_mentor.email, 2)
            if "Welcome" in str(mail["Subject"])
        ]
        metadata = await client.get_workflow_handle(workflow_id(s)).query(
            "__temporal_workflow_metadata", result_type=temporalio.api.sdk.v1.WorkflowMetadata
        )
    assert t.refusals == []
    [german] = welcome
    assert german.startswith("Sehr geehrter Herr Feldhausen,\n")
    assert "Wir fragen jede Minute kurz nach" in german and "Quartal" not in german
    english = str(to_mentor.get_content())
    assert english.startswith("Dear Dr Brandt,\n")
    assert "We will check in every minute" in english and "quarter" not in english
    assert "check-ins every minute" in metadata.current_details


async def test_the_gateways_notices_greet_as_the_mails_do(db: asyncpg.Pool) -> None:
    """The reply notices (confirmed, help, asked back) take the person from the gateway's
    directory: with salutation and title, so "Sehr geehrte Frau Dr. Weber" there too."""
    from replies.directory import PgDirectory
    from tandem.models import Role
    from tandem.salutation import greeting

    await db.execute(
        "INSERT INTO mentors (id, first_name, last_name, email, programs, capacity,"
        " salutation, title) VALUES ('M-gw', 'Katrin', 'Weber', 'k.weber@praxis.example.org',"
        " '{stipendium-hausarzt}', 1, 'Frau', 'Dr. med.')"
    )
    person = await PgDirectory(db).person(Role.MENTOR, "M-gw")
    assert person is not None
    assert greeting(person, "de") == "Sehr geehrte Frau Dr. Weber"
    assert greeting(person, "en") == "Dear Dr Weber"
