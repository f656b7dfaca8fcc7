"""Imports through real Postgres: all rows or none, and a re-import changes nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from typer.testing import CliRunner

import starter.tandem_cmds
from activities.people import (
    ImportCounts,
    get_mentee,
    get_mentor,
    list_mentee_ids,
    upsert_programs,
)
from starter.common import CommandError
from starter.import_cmd import ImportRejected, app, import_file
from tandem.models import Language
from tandem.programs import Program
from tandem.settings import get_settings


def _program_data(program_id: str, phases: list[str]) -> dict[str, Any]:
    return {
        "id": program_id,
        "name": f"Programm {program_id}",
        "coordinator_email": "koordination@example.org",
        "phases": [{"name": p, "cadence": "30d", "duration": "180d"} for p in phases],
        "first_meeting_window": "14d",
    }


PROGRAM_DATA = [
    _program_data("demo", ["study", "residency", "employment"]),
    _program_data("uni-mentoring", ["tandem"]),
]
PROGRAMS = {d["id"]: Program.model_validate(d) for d in PROGRAM_DATA}

MENTORS = [
    "id;first_name;last_name;email;programs;region;specialty;capacity;language",
    "m-1;Mara;Beispiel;mara@example.org;demo;Nord;Innere;2;de",
    "m-2;Jonas;Muster;jonas@example.org;demo|uni-mentoring;;;1;en",
    'm-3;Lea;Probe;lea@example.org;uni-mentoring;"Süd; Ost";;3;',
]
MENTEES = [
    "id,first_name,last_name,email,program,phase,region,specialty,expected_phase_end,language",
    "e-1,Ida,Test,ida@example.org,demo,study,Nord,Innere,2026-03-31,de",
    "e-2,Ben,Versuch,ben@example.org,uni-mentoring,tandem,,,,en",
]
BAD_MENTORS = [
    MENTORS[0],
    "m-1;Mara;Beispiel;mara@example.org;demo;Nord;Innere;5;de",  # would update: must not
    "m-4;Tom;Probe;tom-at-example.org;demo;;;1;de",
    "m-5;Eva;Probe;eva@example.org;nope;;;1;de",
    "m-6;Kai;Probe;kai@example.org;demo;;;-2;de",
    "m-4;Tim;Probe;tim@example.org;demo;;;1;de",
]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _stamps(conn: asyncpg.Connection, table: str) -> dict[str, Any]:
    rows = await conn.fetch(f"SELECT id, updated_at FROM {table} ORDER BY id")
    return {r["id"]: r["updated_at"] for r in rows}


async def test_good_file_is_applied(db: asyncpg.Pool, tmp_path: Path) -> None:
    counts = await import_file(db, "mentors", _write(tmp_path / "m.csv", MENTORS), PROGRAMS)
    assert counts == ImportCounts(created=3, updated=0, unchanged=0)
    async with db.acquire() as conn:
        mentor = await get_mentor(conn, "m-2")
        assert mentor is not None
        assert mentor.programs == ["demo", "uni-mentoring"]
        assert mentor.language is Language.EN
        third = await get_mentor(conn, "m-3")
        assert third is not None
        assert third.region == "Süd; Ost"
        assert await get_mentor(conn, "nobody") is None
        stored = await conn.fetch("SELECT id, name, rules FROM programs ORDER BY id")
    assert [r["id"] for r in stored] == ["demo", "uni-mentoring"]
    assert json.loads(stored[1]["rules"])["phases"][0]["name"] == "tandem"


async def test_mentees_are_applied_and_listed(db: asyncpg.Pool, tmp_path: Path) -> None:
    path = _write(tmp_path / "e.csv", MENTEES)
    assert await import_file(db, "mentees", path, PROGRAMS) == ImportCounts(2, 0, 0)
    async with db.acquire() as conn:
        mentee = await get_mentee(conn, "e-1")
        assert mentee is not None
        assert (mentee.program, mentee.phase) == ("demo", "study")
        assert mentee.expected_phase_end == date(2026, 3, 31)
        assert await get_mentee(conn, "e-9") is None
        assert await list_mentee_ids(conn) == ["e-1", "e-2"]
        assert await list_mentee_ids(conn, "uni-mentoring") == ["e-2"]
        assert await list_mentee_ids(conn, "other") == []


async def test_bad_file_applies_nothing(db: asyncpg.Pool, tmp_path: Path) -> None:
    await import_file(db, "mentors", _write(tmp_path / "m.csv", MENTORS), PROGRAMS)
    async with db.acquire() as conn:
        before = await _stamps(conn, "mentors")
    with pytest.raises(ImportRejected) as caught:
        await import_file(db, "mentors", _write(tmp_path / "bad.csv", BAD_MENTORS), PROGRAMS)
    assert [e.line for e in caught.value.errors] == [3, 4, 5, 6]
    assert "email" in caught.value.errors[0].reason
    assert "programme" in caught.value.errors[1].reason
    assert "capacity" in caught.value.errors[2].reason
    assert "already used on line 3" in caught.value.errors[3].reason
    async with db.acquire() as conn:
        assert await _stamps(conn, "mentors") == before
        assert await conn.fetchval("SELECT capacity FROM mentors WHERE id = 'm-1'") == 2


async def test_reimport_changes_nothing(db: asyncpg.Pool, tmp_path: Path) -> None:
    mentors, mentees = _write(tmp_path / "m.csv", MENTORS), _write(tmp_path / "e.csv", MENTEES)
    await import_file(db, "mentors", mentors, PROGRAMS)
    await import_file(db, "mentees", mentees, PROGRAMS)
    async with db.acquire() as conn:
        before = (await _stamps(conn, "mentors"), await _stamps(conn, "mentees"))
        programs_before = await conn.fetch("SELECT id, updated_at FROM programs ORDER BY id")
    assert await import_file(db, "mentors", mentors, PROGRAMS) == ImportCounts(0, 0, 3)
    assert await import_file(db, "mentees", mentees, PROGRAMS) == ImportCounts(0, 0, 2)
    async with db.acquire() as conn:
        assert (await _stamps(conn, "mentors"), await _stamps(conn, "mentees")) == before
        programs_after = await conn.fetch("SELECT id, updated_at FROM programs ORDER BY id")
        assert programs_after == programs_before
        assert await upsert_programs(conn, PROGRAMS) == 0


async def test_changed_row_is_updated(db: asyncpg.Pool, tmp_path: Path) -> None:
    await import_file(db, "mentors", _write(tmp_path / "m.csv", MENTORS), PROGRAMS)
    async with db.acquire() as conn:
        before = await _stamps(conn, "mentors")
    changed = [*MENTORS[:2], MENTORS[2].replace(";1;en", ";4;en"), MENTORS[3]]
    changed.append("m-9;Nora;Neu;nora@example.org;demo;;;1;de")
    counts = await import_file(db, "mentors", _write(tmp_path / "m2.csv", changed), PROGRAMS)
    assert counts == ImportCounts(created=1, updated=1, unchanged=2)
    async with db.acquire() as conn:
        after = await _stamps(conn, "mentors")
        mentor = await get_mentor(conn, "m-2")
    assert mentor is not None
    assert mentor.capacity == 4
    assert after["m-1"] == before["m-1"]
    assert after["m-3"] == before["m-3"]
    assert after["m-2"] > before["m-2"]


# -- the command ---------------------------------------------------------------------------


@pytest.fixture
def cli_env(
    db_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Env for the CLI: the test database and programme files of our own."""
    programs_dir = tmp_path / "programs"
    programs_dir.mkdir()
    for data in PROGRAM_DATA:
        (programs_dir / f"{data['id']}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    env = {
        "DATABASE_URL": db_dsn,
        "TANDEM_DATABASE_URL": db_dsn,
        "TANDEM_PROGRAMS_DIR": str(programs_dir),
        "TANDEM_HOME": str(tmp_path / "home"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


@pytest.fixture
def woken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stand-in for waking waiting tandems (no Temporal here); records each call."""
    calls: list[str] = []

    async def fake_wake(dsn: str, client: object = None) -> int:
        calls.append(dsn)
        return 0

    monkeypatch.setattr(starter.tandem_cmds, "wake_waiting_tandems", fake_wake)
    return calls


def _count(dsn: str, table: str) -> int:
    async def go() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        finally:
            await conn.close()

    return asyncio.run(go())


def test_cli_imports_a_good_file(cli_env: dict[str, str], woken: list[str], tmp_path: Path) -> None:
    runner = CliRunner()
    path = _write(tmp_path / "m.csv", MENTORS)
    result = runner.invoke(app, ["mentors", str(path)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "mentors: 3 created, 0 updated, 0 unchanged"
    assert woken == [cli_env["DATABASE_URL"]]

    again = runner.invoke(app, ["mentors", str(path), "--json"], env=cli_env)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) | {"file": ""} == {
        "kind": "mentors",
        "file": "",
        "ok": True,
        "rows": 3,
        "created": 0,
        "updated": 0,
        "unchanged": 3,
    }
    assert len(woken) == 1  # nothing changed: no tandem to wake


def test_cli_rejects_a_bad_file(cli_env: dict[str, str], woken: list[str], tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", BAD_MENTORS)
    result = CliRunner().invoke(app, ["mentors", str(path)], env=cli_env)
    assert result.exit_code == 1
    assert result.stdout == ""
    for line in (3, 4, 5, 6):
        assert f"line {line}: " in result.stderr
    assert "tom-at-example.org" not in result.stderr
    assert "nothing imported" in result.stderr
    assert _count(cli_env["DATABASE_URL"], "mentors") == 0
    assert woken == []

    as_json = CliRunner().invoke(app, ["mentors", str(path), "--json"], env=cli_env)
    assert as_json.exit_code == 1
    assert [e["line"] for e in json.loads(as_json.stdout)["errors"]] == [3, 4, 5, 6]


def test_cli_dry_run_applies_nothing(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = _write(tmp_path / "e.csv", MENTEES)
    result = CliRunner().invoke(app, ["mentees", str(path), "--dry-run"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "2 rows valid, nothing applied" in result.stdout
    assert _count(cli_env["DATABASE_URL"], "mentees") == 0


def test_cli_missing_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["mentees", str(tmp_path / "nope.csv")], env=cli_env)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "no such file" in result.stderr


def test_cli_import_survives_unreachable_temporal(
    cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(dsn: str, client: object = None) -> int:
        raise CommandError("cannot reach Temporal at 127.0.0.1:7233: start `tandem dev` first")

    monkeypatch.setattr(starter.tandem_cmds, "wake_waiting_tandems", unreachable)
    path = _write(tmp_path / "m.csv", MENTORS)
    result = CliRunner().invoke(app, ["mentors", str(path)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "3 created" in result.stdout
    assert "waiting tandems will retry on their daily schedule" in result.stderr


def test_cli_large_file_with_progress(
    cli_env: dict[str, str], woken: list[str], tmp_path: Path
) -> None:
    rows = [f"m-{i};Mara;Beispiel;mara{i}@example.org;demo;;;1;de" for i in range(1200)]
    path = _write(tmp_path / "many.csv", [MENTORS[0], *rows])
    result = CliRunner().invoke(app, ["mentors", str(path)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "mentors: 1200 created, 0 updated, 0 unchanged"
    assert _count(cli_env["DATABASE_URL"], "mentors") == 1200
