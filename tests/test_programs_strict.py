"""Programme files as offices get them wrong: each mistake is one plain line naming the file,
the key and what is wrong, every mistake of a file is listed, and nothing is used or stored
while any file is broken."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pytest

from tandem.programs import ProgramCatalog, ProgramError, load_programs
from tandem.settings import PROJECT_ROOT
from tests.support import tandem_cli

#: A programme as an office writes it (the shape of the shipped ones).
PFLEGE = """\
# Mentoring for nursing students at the county hospitals.
id: pflege-mentoring
name: Mentoring Pflegestudium
language: de
coordinator_email: pflege-mentoring@kliniken.example.org
phases:
  - name: study
    labels: {de: Studium, en: studies}
    cadence: 91d
    duration: 1095d
  - name: employment
    labels: {de: Berufseinstieg, en: first years at work}
    cadence: 182d
    duration: 730d
first_meeting_window: 30d
decision_reminder_after: 7d
decision_escalation_after: 21d
max_rematches: 2
"""
FILE = "programs/pflege-mentoring.yaml"

MENTORS_CSV = (
    "id;first_name;last_name;email;programs;region;specialty;capacity;language\n"
    "pm-001;Sabine;Krüger;s.krueger@kliniken.example.org;pflege-mentoring;Nord;Intensiv;2;de\n"
)


def edited(old: str, new: str) -> str:
    """The office's copy of the programme with one edit (a typo, a slip of the indent)."""
    assert old in PFLEGE
    return PFLEGE.replace(old, new, 1)


@pytest.fixture
def programs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``programs/`` directory, and the working directory it is named from."""
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "programs"
    directory.mkdir()
    return directory


def problems(directory: Path) -> list[str]:
    with pytest.raises(ProgramError) as caught:
        load_programs(directory)
    assert str(caught.value) == "\n".join(caught.value.lines)
    for line in caught.value.lines:
        assert "\n" not in line and "pydantic" not in line and "Input should" not in line
    return list(caught.value.lines)


def test_the_shipped_programmes_load() -> None:
    loaded = load_programs(PROJECT_ROOT / "programs")
    assert set(loaded) == {"demo", "stipendium-facharzt", "stipendium-hausarzt", "uni-mentoring"}


def test_a_good_file_loads(programs: Path) -> None:
    (programs / "pflege-mentoring.yaml").write_text(PFLEGE, encoding="utf-8")
    program = load_programs(programs)["pflege-mentoring"]
    assert [p.name for p in program.phases] == ["study", "employment"]
    assert program.phases[0].cadence.days == 91


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            edited("max_rematches: 2", "max_rematchs: 2"),
            [f"{FILE}: max_rematchs: unknown key (did you mean max_rematches?)"],
            id="misspelled-key",
        ),
        pytest.param(
            edited("    cadence: 182d", "    cadance: 182d"),
            [
                f"{FILE}: phases.1.cadence: required",
                f"{FILE}: phases.1.cadance: unknown key (did you mean cadence?)",
            ],
            id="misspelled-phase-key",
        ),
        pytest.param(
            edited("    duration: 1095d\n", "    duration: 1095d\n    cadance: 91d\n"),
            [f"{FILE}: phases.0.cadance: unknown key (did you mean cadence?)"],
            id="extra-phase-key",
        ),
        pytest.param(
            edited("first_meeting_window: 30d", "    first_meeting_window: 30d"),
            [
                f"{FILE}: phases.1.first_meeting_window: unknown key in a phase"
                " (it belongs at the top level: check the indentation)",
                f"{FILE}: first_meeting_window: required",
            ],
            id="key-indented-into-the-last-phase",
        ),
        pytest.param(
            edited("    cadence: 182d", "\tcadence: 182d"),
            [f"{FILE}: line 13: a tab character: indent with spaces only"],
            id="tab",
        ),
        pytest.param(
            edited("    cadence: 91d", "    cadence 91d"),
            [f"{FILE}: line 9: expected 'key: value' (is a ':' missing?)"],
            id="colon-forgotten",
        ),
        pytest.param(
            edited("cadence: 91d", "cadence: 91 Tage"),
            [f"{FILE}: phases.0.cadence: not a duration (e.g. 91d, 12h, 3m, 2w)"],
            id="duration-in-words",
        ),
        pytest.param(
            edited("coordinator_email: pflege-mentoring@kliniken.example.org\n", ""),
            [f"{FILE}: coordinator_email: required"],
            id="no-coordinator",
        ),
        pytest.param(
            edited("pflege-mentoring@kliniken", "pflege-mentoring(at)kliniken"),
            [f"{FILE}: coordinator_email: not a valid e-mail address"],
            id="address-written-out",
        ),
        pytest.param(
            edited("  - name: employment", "  - name: study"),
            [f"{FILE}: phases.1.name: not unique (phases.0 is also called study)"],
            id="phase-name-twice",
        ),
        pytest.param(
            edited("    duration: 730d\n", ""),
            [f"{FILE}: phases.1.duration: required for the last phase (it ends the tandem)"],
            id="last-phase-without-end",
        ),
        pytest.param(
            edited("    duration: 1095d\n", "    duration: 1095d\n    cadence: 60d\n"),
            [f"{FILE}: line 11: cadence is given twice (also on line 9)"],
            id="key-given-twice",
        ),
        pytest.param(
            edited("name: Mentoring Pflegestudium", 'name: "Mentoring Pflegestudium'),
            [f"{FILE}: line 3: a quotation mark is not closed"],
            id="unclosed-quote",
        ),
        pytest.param(
            "Ablaufplan Mentoring 2025 siehe Anhang (PDF)\n",
            [f"{FILE}: not a programme: expected lines of 'key: value', found a single value"],
            id="not-a-mapping",
        ),
        pytest.param("", [f"{FILE}: the file is empty"], id="empty"),
        pytest.param(
            edited("language: de", "language: deutsch"),
            [f"{FILE}: language: must be 'de' or 'en'"],
            id="language-in-words",
        ),
        pytest.param(
            edited("max_rematches: 2", "max_rematches: zwei"),
            [f"{FILE}: max_rematches: not a whole number"],
            id="number-in-words",
        ),
        pytest.param(
            edited("decision_escalation_after: 21d", "decision_escalation_after: 5d"),
            [f"{FILE}: decision_escalation_after: must be later than decision_reminder_after"],
            id="escalation-before-reminder",
        ),
    ],
)
def test_a_mistake_is_one_line_naming_file_key_and_reason(
    programs: Path, text: str, expected: list[str]
) -> None:
    (programs / "pflege-mentoring.yaml").write_text(text, encoding="utf-8")
    assert problems(programs) == expected


def test_a_file_saved_in_a_windows_encoding_is_named(programs: Path) -> None:
    text = edited("name: Mentoring Pflegestudium", "name: Mentoring Pflegestudium, Kliniken Süd")
    (programs / "pflege-mentoring.yaml").write_bytes(text.encode("cp1252"))
    assert problems(programs) == [f"{FILE}: not UTF-8 text (save the file as UTF-8)"]


def test_every_mistake_of_a_file_is_listed(programs: Path) -> None:
    text = (
        PFLEGE.replace("coordinator_email: pflege-mentoring@kliniken.example.org\n", "")
        .replace("cadence: 91d", "cadence: 91 Tage")
        .replace("max_rematches: 2", "max_rematchs: 2")
        .replace("  - name: employment", "  - name: study")
    )
    (programs / "pflege-mentoring.yaml").write_text(text, encoding="utf-8")
    assert problems(programs) == [
        f"{FILE}: coordinator_email: required",
        f"{FILE}: phases.0.cadence: not a duration (e.g. 91d, 12h, 3m, 2w)",
        f"{FILE}: max_rematchs: unknown key (did you mean max_rematches?)",
        f"{FILE}: phases.1.name: not unique (phases.0 is also called study)",
    ]


def test_every_broken_file_is_listed_and_none_is_used(programs: Path) -> None:
    (programs / "pflege-mentoring.yaml").write_text(
        edited("max_rematches: 2", "max_rematchs: 2"), encoding="utf-8"
    )
    (programs / "hebammen.yaml").write_text(
        edited("id: pflege-mentoring", "id: hebammen").replace("cadence: 91d", "cadence: 3 Monate"),
        encoding="utf-8",
    )
    (programs / "uni-mentoring.yaml").write_text(
        (PROJECT_ROOT / "programs" / "uni-mentoring.yaml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    assert problems(programs) == [
        "programs/hebammen.yaml: phases.0.cadence: not a duration (e.g. 91d, 12h, 3m, 2w)",
        f"{FILE}: max_rematchs: unknown key (did you mean max_rematches?)",
    ]


def test_a_copied_file_that_keeps_the_old_id_is_refused(programs: Path) -> None:
    (programs / "pflege-mentoring.yaml").write_text(PFLEGE, encoding="utf-8")
    (programs / "pflege-mentoring-2026.yaml").write_text(PFLEGE, encoding="utf-8")
    assert problems(programs) == [
        "programs/pflege-mentoring-2026.yaml: id: pflege-mentoring is already the id of"
        f" {FILE} (this file's id must be pflege-mentoring-2026)"
    ]


def test_a_yml_file_is_not_quietly_ignored(programs: Path) -> None:
    (programs / "pflege-mentoring.yml").write_text(PFLEGE, encoding="utf-8")
    assert problems(programs) == [
        "programs/pflege-mentoring.yml: not read: programme files end in .yaml"
    ]


def test_the_workers_on_demand_read_gives_the_same_lines(programs: Path) -> None:
    (programs / "pflege-mentoring.yaml").write_text(
        edited("cadence: 91d", "cadence: 91 Tage"), encoding="utf-8"
    )
    with pytest.raises(ProgramError) as caught:
        ProgramCatalog(programs).get("pflege-mentoring")
    assert caught.value.lines == (
        f"{FILE}: phases.0.cadence: not a duration (e.g. 91d, 12h, 3m, 2w)",
    )


# -- through the CLI ---------------------------------------------------------------------------


def cli_env(programs: Path, db_dsn: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.pop("DATABASE_URL", None)
    env |= {"TANDEM_PROGRAMS_DIR": str(programs), "TANDEM_HOME": str(programs.parent / "home")}
    if db_dsn:
        env |= {"DATABASE_URL": db_dsn, "TANDEM_DATABASE_URL": db_dsn}
    return env


async def count(dsn: str, table: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def test_import_refuses_a_broken_programme_and_stores_nothing(
    programs: Path, db_dsn: str
) -> None:
    (programs / "pflege-mentoring.yaml").write_text(
        edited("max_rematches: 2", "max_rematchs: 2").replace("cadence: 91d", "cadence: 91 Tage"),
        encoding="utf-8",
    )
    csv = programs.parent / "mentoren.csv"
    csv.write_text(MENTORS_CSV, encoding="utf-8")
    env = cli_env(programs, db_dsn)

    code, out, err = await tandem_cli(env, "import", "mentors", str(csv))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"error: {FILE}: phases.0.cadence: not a duration (e.g. 91d, 12h, 3m, 2w)",
        f"error: {FILE}: max_rematchs: unknown key (did you mean max_rematches?)",
    ]
    assert await count(db_dsn, "mentors") == 0
    assert await count(db_dsn, "programs") == 0

    (programs / "pflege-mentoring.yaml").write_text(PFLEGE, encoding="utf-8")
    code, out, err = await tandem_cli(env, "import", "mentors", str(csv))
    assert code == 0, err
    assert await count(db_dsn, "mentors") == 1


async def test_the_worker_refuses_to_start_on_a_broken_programme(programs: Path) -> None:
    (programs / "pflege-mentoring.yaml").write_text(
        edited("coordinator_email: pflege-mentoring@kliniken.example.org\n", ""),
        encoding="utf-8",
    )
    code, out, err = await tandem_cli(cli_env(programs), "worker")
    assert (code, out) == (1, "")
    assert err.splitlines() == [f"error: {FILE}: coordinator_email: required"]


async def test_the_worker_refuses_a_missing_programme_directory(programs: Path) -> None:
    missing = programs.parent / "programme"
    code, out, err = await tandem_cli(cli_env(missing), "worker")
    assert (code, out) == (1, "")
    assert err.splitlines() == [f"error: no programme directory at {missing} (TANDEM_PROGRAMS_DIR)"]
