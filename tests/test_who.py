"""``tandem who PERSON_ID``: the office looks up who an id in a coordinator's mail is — a
real tandem on the dev server, the command as a process."""

from __future__ import annotations

import json
import os

import asyncpg
from temporalio.testing import WorkflowEnvironment

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


async def test_who_names_the_person_their_tandem_and_the_other_side(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
) -> None:
    the_mentee = mentee(uid("S")).model_copy(
        update={"first_name": "Hannelore", "email": "hannelore.k@uni.example.org"}
    )
    the_mentor = mentor(uid("M")).model_copy(
        update={"last_name": "Grünewald", "email": "gruenewald@praxis.example.org"}
    )
    await put_people(db, [the_mentor], [the_mentee])
    async with running_worker(dev_env.client, settings, db):
        await enroll_ids(dev_env.client, db_dsn, [the_mentee.id], settings)
        await wait_status(dev_env.client, the_mentee.id, TandemStatus.INTRODUCED)
        await mails_to(sink, the_mentor.email)

    env = {**os.environ, "DATABASE_URL": db_dsn}
    code, out, err = await tandem_cli(env, "who", the_mentee.id)
    assert code == 0, err
    first, *rest = out.splitlines()
    assert first == (
        f"{the_mentee.id}: Hannelore {the_mentee.last_name} <hannelore.k@uni.example.org> — mentee"
    )
    tandem_line = next(line for line in rest if line.strip().startswith("tandem:"))
    assert "introduced" in tandem_line and the_mentor.id in tandem_line
    assert "Grünewald" in tandem_line and "gruenewald@praxis.example.org" in tandem_line

    code, out, err = await tandem_cli(env, "who", the_mentor.id, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["as_mentee"] is None
    assert data["as_mentor"]["email"] == "gruenewald@praxis.example.org"
    assert data["as_mentor"]["seats_taken"] == 1
    [tandem] = data["as_mentor"]["tandems"]
    assert (tandem["mentee_id"], tandem["status"]) == (the_mentee.id, "introduced")
    assert tandem["mentee_name"].startswith("Hannelore ")


async def test_who_refuses_an_unknown_id_in_one_line(db: asyncpg.Pool, db_dsn: str) -> None:
    code, out, err = await tandem_cli({**os.environ, "DATABASE_URL": db_dsn}, "who", "S-nobody")
    assert (code, out) == (1, "")
    assert err.strip() == "error: no mentee and no mentor with id S-nobody"
