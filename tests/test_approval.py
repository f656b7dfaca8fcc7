"""Matches the office approves, through the real parts: a programme with ``approval:
coordinator``, the workflow on the dev server, the proposal mailed over SMTP to the office,
the coordinator's "nein" and then "ok" written as replies and read by the gateway, and
``tandem approve`` as a process. Nobody but the office hears of a match before its "ok"."""

from __future__ import annotations

import os
from pathlib import Path

import aiosmtplib
import asyncpg
from temporalio.testing import WorkflowEnvironment

from activities.people import upsert_programs
from activities.smtp import SmtpSender
from replies.answerer import TemporalAnswerer
from replies.inbox import RetryPolicy
from replies.service import ReplyGateway
from starter.mail_cmd import compose_reply
from starter.mailsink import MailSink
from starter.tandem_cmds import enroll_ids
from tandem.models import TandemStatus
from tandem.programs import load_programs
from tandem.settings import PROJECT_ROOT, Settings
from tests.reply_support import settle
from tests.support import (
    mails_to,
    mentee,
    mentor,
    put_people,
    query_state,
    running_worker,
    tandem_cli,
    uid,
    wait_status,
)

PROGRAM = "stipendium-hausarzt"


def approving_programs(tmp_path: Path) -> Path:
    """The shipped programme, as an office turns approval on in its file."""
    directory = tmp_path / "programs"
    directory.mkdir()
    text = (PROJECT_ROOT / "programs" / f"{PROGRAM}.yaml").read_text(encoding="utf-8")
    (directory / f"{PROGRAM}.yaml").write_text(
        text + "\n# Every match is looked at by the office first.\napproval: coordinator\n",
        encoding="utf-8",
    )
    return directory


def _body(mail: object) -> str:
    return str(mail.get_body(preferencelist=("plain",)).get_content())  # type: ignore[attr-defined]


async def test_the_office_says_nein_then_ok_by_reply_and_only_then_the_pair_is_told(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
    tmp_path: Path,
) -> None:
    settings = settings.model_copy(update={"programs_dir": approving_programs(tmp_path)})
    programs = load_programs(settings.programs_dir)
    async with db.acquire() as conn:
        await upsert_programs(conn, programs)
    office = str(programs[PROGRAM].coordinator_email)
    the_mentee = mentee(uid("S"))
    best = mentor(uid("M"))  # same region and specialty: proposed first
    other = mentor(uid("M")).model_copy(update={"region": "Nordhessen", "specialty": ""})
    await put_people(db, [best, other], [the_mentee])
    client = dev_env.client
    policy = RetryPolicy(first_delay=0.1, max_delay=1.0, poll=1.0)
    async with (
        running_worker(client, settings, db),
        ReplyGateway(
            settings,
            db,
            TemporalAnswerer(client, timeout=20),
            SmtpSender(settings),
            policy=policy,
            port=0,
        ) as gw,
    ):
        await enroll_ids(client, db_dsn, [the_mentee.id], settings)
        await wait_status(client, the_mentee.id, TandemStatus.PROPOSED)
        [first] = await mails_to(sink, office)
        assert first["Reply-To"], "the office answers by reply"
        body = _body(first)
        assert body.startswith("Antworten Sie mit „ok“")
        assert best.id in body and "same region" in body
        assert not [m for m in sink.messages() if m["To"] in (the_mentee.email, best.email)]

        # "nein": the next proposal comes, with the other mentor.
        no = compose_reply(first, "Nein, bitte eine andere Mentorin.\n\nViele Grüße\nK. Sommer")
        await aiosmtplib.send(no, hostname="127.0.0.1", port=gw.port)
        [verdict] = await settle(db, 1, timeout=60)
        assert (verdict["verdict"], verdict["intent"]) == ("accepted", "decline")
        office_mails = await mails_to(sink, office, count=3)  # confirmation + next proposal
        [second] = [m for m in office_mails if other.id in _body(m) and m is not first]
        state = await query_state(client, the_mentee.id)
        assert state.status is TandemStatus.PROPOSED and state.mentor_id == other.id
        assert best.id in state.excluded_mentor_ids and state.rematches == 0

        ok = compose_reply(second, "ok")
        await aiosmtplib.send(ok, hostname="127.0.0.1", port=gw.port)
        await wait_status(client, the_mentee.id, TandemStatus.INTRODUCED)
        [intro] = await mails_to(sink, the_mentee.email)
        assert "Vorschlag" not in str(intro["Subject"])
        await mails_to(sink, other.email)
        assert not [m for m in sink.messages() if m["To"] == best.email], "never told"
    assert await db.fetchval("SELECT count(*) FROM seats WHERE mentor_id = $1", best.id) == 0


async def test_tandem_approve_and_reject_on_the_command_line(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
    tmp_path: Path,
) -> None:
    programs_dir = approving_programs(tmp_path)
    settings = settings.model_copy(update={"programs_dir": programs_dir})
    the_mentee, the_mentor = mentee(uid("S")), mentor(uid("M"))
    await put_people(db, [the_mentor], [the_mentee])
    env = {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "TANDEM_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TANDEM_TASK_QUEUE": settings.task_queue,
        "TANDEM_PROGRAMS_DIR": str(programs_dir),
    }
    async with running_worker(dev_env.client, settings, db):
        await enroll_ids(dev_env.client, db_dsn, [the_mentee.id], settings)
        await wait_status(dev_env.client, the_mentee.id, TandemStatus.PROPOSED)
        code, out, err = await tandem_cli(env, "approve", the_mentee.id)
        assert code == 0, err
        assert out.strip() == "introduced: approved: both are introduced"
        await mails_to(sink, the_mentee.email)
        code, out, err = await tandem_cli(env, "reject", the_mentee.id)
        assert code == 1 and out == ""
        assert err.strip() == (
            "error: refused: no match waits for approval (the tandem is introduced)"
        )
