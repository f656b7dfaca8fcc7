"""``tandem export PERSON_ID`` (GDPR Art. 15/20), as an office runs it for a person who asked:
a real tandem on the dev server, its mails through the SMTP sink, the command as a process.
The export has the person's own data and their tandem's story, and no other person's contact
data; an unknown id and an existing output file are refused in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment

from activities.privacy import EXPORTED_TABLES, IMPERSONAL_TABLES, TRANSIENT_TABLES
from starter.mailsink import MailSink
from starter.tandem_cmds import enroll_ids
from tandem.models import TandemStatus
from tandem.settings import Settings
from tests.support import (
    mails_to,
    mentee,
    mentor,
    put_people,
    running_worker,
    tandem_cli,
    uid,
    wait_status,
)


async def test_an_export_has_the_persons_own_data_and_story_and_no_one_elses_address(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
    tmp_path: Path,
) -> None:
    the_mentee = mentee(uid("S")).model_copy(
        update={"first_name": "Friederike", "email": "friederike.kuehn@uni.example.org"}
    )
    the_mentor = mentor(uid("M")).model_copy(
        update={"last_name": "Oberländer", "email": "dr.oberlaender@klinikum.example.org"}
    )
    await put_people(db, [the_mentor], [the_mentee])
    async with running_worker(dev_env.client, settings, db):
        await enroll_ids(dev_env.client, db_dsn, [the_mentee.id], settings)
        await wait_status(dev_env.client, the_mentee.id, TandemStatus.INTRODUCED)
        await mails_to(sink, the_mentee.email)
        await mails_to(sink, the_mentor.email)

    env = {**os.environ, "DATABASE_URL": db_dsn, "TANDEM_HOME": str(settings.home)}
    code, out, err = await tandem_cli(env, "export", the_mentee.id)
    assert code == 0, err
    mine: dict[str, Any] = json.loads(out)
    assert mine["as_mentee"]["email"] == the_mentee.email
    assert mine["as_mentee"]["first_name"] == "Friederike"
    assert mine["as_mentor"] is None
    [tandem] = mine["tandems"]
    assert tandem["role"] == "mentee" and tandem["now"]["status"] == "introduced"
    kinds = [e["kind"] for e in tandem["events"]]
    assert (kinds and kinds[0] == "enrolled") or "enrolled" in kinds
    [intro] = [m for m in mine["mails_sent_to_them"] if m["template"] == "introduction_mentee"]
    assert intro["subject"] and intro["sent_at"] and intro["role"] == "mentee"
    assert mine["reply_addresses_issued"], "the reply address of the introduction is listed"
    # The introduction told the mentee the mentor's contact data; the export does not repeat
    # it (the body is not part of it), it names the mentor by id.
    assert the_mentor.email not in out and "Oberländer" not in out
    assert the_mentor.id in out

    code, out, err = await tandem_cli(env, "export", the_mentor.id)
    assert code == 0, err
    theirs = json.loads(out)
    assert theirs["as_mentor"]["email"] == the_mentor.email
    assert [t["role"] for t in theirs["tandems"]] == ["mentor"]
    assert [m["template"] for m in theirs["mails_sent_to_them"]] == ["introduction_mentor"]
    assert the_mentee.email not in out and "Friederike" not in out

    target = tmp_path / "export.json"
    code, _, err = await tandem_cli(env, "export", the_mentee.id, "--output", str(target))
    assert code == 0, err
    assert json.loads(target.read_text(encoding="utf-8")) == {**mine}
    assert target.stat().st_mode & 0o077 == 0, "readable by the office's user only"
    code, _, err = await tandem_cli(env, "export", the_mentee.id, "--output", str(target))
    assert code == 2 and "exists already" in err and len(err.strip().splitlines()) == 1


async def test_an_unknown_id_is_refused_in_one_line(db: asyncpg.Pool, db_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn}
    code, out, err = await tandem_cli(env, "export", "NO-SUCH-PERSON-4711")
    assert code == 1 and out == ""
    assert err.strip() == "error: nothing is stored about NO-SUCH-PERSON-4711"


async def test_every_table_is_exported_or_holds_no_persons_data(db: asyncpg.Pool) -> None:
    """A table added later with a person's data must be added to the export (or named)."""
    tables = {
        r["table_name"]
        for r in await db.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    }
    known = set(EXPORTED_TABLES) | set(TRANSIENT_TABLES) | set(IMPERSONAL_TABLES)
    assert tables - known == set(), "a new table: export it or name it as impersonal"
