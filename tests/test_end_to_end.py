"""End to end, as an operator would: the `tandem` command in subprocesses against the Temporal
dev server, PostgreSQL, a worker and the SMTP sink, all real and started by the tests."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import asyncpg
from temporalio.testing import WorkflowEnvironment

from starter.mailsink import MailSink
from tandem.settings import Settings
from tests.support import BIN, eventually, running_worker

# Excel's export: BOM and ";" for mentors; plain "," for mentees.
MENTORS = (
    "\ufeffid;first_name;last_name;email;programs;region;specialty;capacity;language\n"
    "{p}-M1;Henrike;Albrechtsen;{p}.h.albrechtsen@example.org;stipendium-hausarzt;"
    "Nordkreis;Allgemeinmedizin;1;de\n"
)
MENTEES = (
    "id,first_name,last_name,email,program,phase,region,specialty,expected_phase_end,language\n"
    "{p}-S1,Jonas,Feldhausen,{p}.j.feldhausen@example.org,stipendium-hausarzt,study,"
    "Nordkreis,Allgemeinmedizin,2029-09-30,de\n"
    "{p}-S2,Lea,Brunnhuber,{p}.l.brunnhuber@example.org,stipendium-hausarzt,study,"
    "Südkreis,,2029-09-30,en\n"
)


class Tandem:
    """Runs ``tandem …`` as a subprocess with the test's configuration."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    async def __call__(self, *args: str, ok: bool = True) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "tandem"),
            *args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        code = proc.returncode
        assert code is not None
        if ok:
            assert code == 0, f"tandem {' '.join(args)} -> {code}: {err.decode()}"
        return code, out.decode(), err.decode()


async def test_import_enrol_and_introduce_through_the_cli(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    sink: MailSink,
    settings: Settings,
    tmp_path: Path,
) -> None:
    p = f"e{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "TANDEM_HOME": str(settings.home),
        "TANDEM_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TANDEM_TASK_QUEUE": settings.task_queue,
        "TANDEM_SMTP_PORT": str(sink.port),
    }
    tandem = Tandem(env)
    mentors, mentees = tmp_path / "mentors.csv", tmp_path / "mentees.csv"
    mentors.write_text(MENTORS.format(p=p), encoding="utf-8")
    mentees.write_text(MENTEES.format(p=p), encoding="utf-8")

    async with running_worker(dev_env.client, settings, db):
        await tandem("import", "mentees", str(mentees))
        _, out, _ = await tandem("import", "mentors", str(mentors))
        assert "1 created" in out
        _, again, _ = await tandem("import", "mentors", str(mentors))
        assert "1 unchanged" in again

        async def status(mentee: str) -> dict[str, object]:
            _, out, _ = await tandem("status", mentee, "--json")
            return dict(json.loads(out))

        _, out, _ = await tandem("enroll", f"{p}-S1", "--json")
        assert json.loads(out) == [
            {"mentee_id": f"{p}-S1", "started": True, "status": "matching", "enrolment": 1}
        ]
        s1 = await eventually(lambda: status(f"{p}-S1"), lambda s: s["status"] == "introduced")
        await tandem("enroll", f"{p}-S2")  # the only seat is taken: S2 waits
        s2 = await eventually(
            lambda: status(f"{p}-S2"), lambda s: s["status"] == "waiting_for_mentor"
        )
        assert s1["mentor_id"] == f"{p}-M1" and s2["mentor_id"] is None
        for key in ("mentee_id", "program", "phase", "cadence_days", "next_nudge_at"):
            assert key in s1

        _, out, _ = await tandem("enroll", f"{p}-S1")
        assert "already enrolled (status introduced)" in out

        async def listed(*filters: str) -> list[dict[str, str]]:
            _, out, _ = await tandem("list", "--program", "stipendium-hausarzt", *filters, "--json")
            return [r for r in json.loads(out) if r["mentee_id"].startswith(p)]

        rows = await eventually(lambda: listed("--status", "introduced"), lambda r: len(r) == 1)
        assert rows[0]["mentee_id"] == f"{p}-S1" and rows[0]["mentor_id"] == f"{p}-M1"

        # A second seat for the mentor: the import wakes the waiting tandem at once.
        mentors.write_text(MENTORS.format(p=p).replace(";1;de", ";2;de"), encoding="utf-8")
        _, out, _ = await tandem("import", "mentors", str(mentors))
        assert "1 updated" in out
        s2 = await eventually(lambda: status(f"{p}-S2"), lambda s: s["status"] == "introduced")
        assert s2["mentor_id"] == f"{p}-M1"

        _, out, _ = await tandem("mail", "list", "--json")
        mails = json.loads(out)
    to = [address for m in mails for address in m["to"]]
    assert to.count(f"{p}.j.feldhausen@example.org") == 1
    assert to.count(f"{p}.l.brunnhuber@example.org") == 1
    assert to.count(f"{p}.h.albrechtsen@example.org") == 2
    assert sum("mentoring-hausarzt" in t for t in to) == 1  # "no mentor free", once


async def test_bad_input_gets_one_clear_line_and_changes_nothing(
    dev_env: WorkflowEnvironment, db: asyncpg.Pool, db_dsn: str, settings: Settings, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "TANDEM_HOME": str(settings.home),
        "TANDEM_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TANDEM_TASK_QUEUE": settings.task_queue,
    }
    tandem = Tandem(env)
    code, _, err = await tandem("enroll", "nobody-here", ok=False)
    assert code != 0 and err.strip().splitlines() == [
        "error: unknown mentee id(s): nobody-here (nothing enrolled)"
    ]
    code, _, err = await tandem("status", "nobody-here", ok=False)
    assert code != 0 and "no tandem for mentee nobody-here" in err
    code, _, err = await tandem("import", "mentors", str(tmp_path / "missing.csv"), ok=False)
    assert code != 0 and len(err.strip().splitlines()) == 1
    code, _, err = await tandem("list", "--status", "bogus", ok=False)
    assert code != 0
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM mentors") == 0


async def test_operator_commands_change_a_running_tandem_or_refuse_in_one_line(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    sink: MailSink,
    settings: Settings,
    tmp_path: Path,
) -> None:
    p = f"o{uuid.uuid4().hex[:6]}"
    tandem = Tandem(
        {
            **os.environ,
            "DATABASE_URL": db_dsn,
            "TANDEM_HOME": str(settings.home),
            "TANDEM_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "TANDEM_TASK_QUEUE": settings.task_queue,
            "TANDEM_SMTP_PORT": str(sink.port),
        }
    )
    mentors, mentees = tmp_path / "mentors.csv", tmp_path / "mentees.csv"
    mentors.write_text(MENTORS.format(p=p), encoding="utf-8")
    mentees.write_text(MENTEES.format(p=p), encoding="utf-8")
    s1 = f"{p}-S1"

    async def state() -> dict[str, object]:
        _, out, _ = await tandem("status", s1, "--json")
        return dict(json.loads(out))

    async def refused(*args: str) -> str:
        code, out, err = await tandem(*args, ok=False)
        assert code != 0 and out == "", args
        [line] = err.strip().splitlines()
        return line

    async with running_worker(dev_env.client, settings, db):
        await tandem("import", "mentees", str(mentees))
        await tandem("import", "mentors", str(mentors))
        await tandem("enroll", s1)
        await eventually(state, lambda s: s["status"] == "introduced")
        assert await refused("pause", s1) == (
            "error: refused: only an active tandem can be paused (it is introduced)"
        )
        # The office heard both say yes by phone.
        await tandem("answer", s1, "continue", "--as", "mentee")
        _, out, _ = await tandem("answer", s1, "continue", "--as", "mentor", "--json")
        assert json.loads(out)["status"] == "active"
        assert await refused("answer", s1, "decline", "--as", "mentor") == (
            "error: refused: no decision is asked now"
        )
        await tandem("cadence", s1, "--every", "30")
        assert (await state())["cadence_days"] == 30
        await tandem("answer", s1, "met", "--as", "mentee", "--date", "2026-11-02", "--rating", "4")
        async with db.acquire() as conn:
            aggregate = await conn.fetchrow(
                "SELECT count, total FROM program_ratings WHERE program = 'stipendium-hausarzt'"
            )
        assert dict(aggregate) == {"count": 1, "total": 4}
        assert str((await state())["last_contact_at"]).startswith("2026-11-02")
        _, out, _ = await tandem("pause", s1, "--until", "2099-01-31")
        assert out.strip() == "paused"
        assert await refused("pause", s1) == (
            "error: refused: only an active tandem can be paused (it is paused)"
        )
        await tandem("resume", s1)
        assert await refused("advance", s1, "--to", "retirement") == (
            "error: refused: programme stipendium-hausarzt has no phase 'retirement'"
            " (study, residency, employment)"
        )
        await tandem("advance", s1, "--to", "residency")
        after = await eventually(state, lambda s: s["phase"] == "residency")
        assert after["status"] == "active" and after["cadence_days"] == 30  # their own rhythm

        async def listed() -> list[dict[str, str]]:
            _, out, _ = await tandem("list", "--json")
            return [r for r in json.loads(out) if r["mentee_id"] == s1]

        # The phase change continued the workflow as new: still one row, the latest run.
        [row] = await eventually(listed, lambda r: [x["phase"] for x in r] == ["residency"])
        assert row["status"] == "active"
        assert await refused("end", s1, "--reason", "Moved to Dr. Someone") == (
            "error: --reason must be a short code of a-z, 0-9, _ or - (no names or prose)"
        )
        await tandem("end", s1, "--reason", "moved_away")
        assert await refused("end", s1, "--reason", "again") == (
            f"error: no running tandem for mentee {s1}"
        )
        assert await refused("end", s1) == (
            "error: Missing option '--reason'. (see `tandem end --help`)"
        )
        assert await refused("resume", "nobody") == "error: no running tandem for mentee nobody"
        _, out, _ = await tandem("mail", "list", "--json")
    ended = [
        m
        for m in json.loads(out)
        if "ended" in m["subject"].lower() or "beendet" in m["subject"].lower()
    ]
    assert len(ended) >= 2
    async with db.acquire() as conn:
        kinds = [
            r["kind"]
            for r in await conn.fetch(
                "SELECT kind FROM tandem_events WHERE mentee_id = $1 ORDER BY seq", s1
            )
        ]
        seats = await conn.fetchval("SELECT count(*) FROM seats")
    assert kinds[-1] == "ended_by_office" and "phase_advanced" in kinds and seats == 0
