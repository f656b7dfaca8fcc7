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
        assert json.loads(out) == [{"mentee_id": f"{p}-S1", "started": True, "status": "matching"}]
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
