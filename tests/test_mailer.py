"""With ``TANDEM_MAIL_DELIVERY=mailer`` the workers hand each mail to ``tandem mailer``, the one
process that talks to the relay. A worker that dies by ``kill -9`` while the relay holds a mail
(it has the data, its 250 has not come) sends nothing twice: the mailer finishes the send and
marks it, and the next worker only waits for that mark. Refusals, a relay that is down, a mailer
stopped for a deploy: the same outcomes as when the worker sends itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from temporalio.testing import WorkflowEnvironment

from activities.dispatch import MailDispatcher
from activities.mail import Outbox
from activities.smtp import SmtpSender
from starter.tandem_cmds import start_tandem
from tandem.programs import ProgramCatalog
from tandem.settings import Settings
from tests.relay import FaultyRelay, RelayRules, introduction_to_mentee, relay_settings
from tests.support import BIN, eventually, mentee, mentor, put_people, terminate, uid

ADDRESS = "jonas.brenner@praxis.example.org"


def process_env(settings: Settings, db_dsn: str, env: WorkflowEnvironment) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    return {
        **base,
        "DATABASE_URL": db_dsn,
        "TANDEM_HOME": str(settings.home),
        "TANDEM_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TANDEM_TASK_QUEUE": settings.task_queue,
        "TANDEM_SMTP_PORT": str(settings.smtp_port),
        "TANDEM_REPLY_TOKEN_SECRET": "test-secret",
        "TANDEM_MAIL_DELIVERY": "mailer",
    }


@contextlib.asynccontextmanager
async def spawned(
    command: str, env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``tandem COMMAND`` as its own process (so it can be killed), stopped at the end."""
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "tandem"),
            command,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        await terminate(proc, grace=40)


async def sent_intro_rows(db: asyncpg.Pool, mentee_id: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM outbox WHERE mentee_id = $1 AND sent_at IS NOT NULL"
            " AND template LIKE 'introduction%'",
            mentee_id,
        )
    )


async def test_a_worker_killed_while_the_relay_holds_its_250_sends_the_mail_once(
    dev_env: WorkflowEnvironment, db: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    the_mentee = mentee(uid("S"))
    await put_people(db, [mentor(uid("M"))], [the_mentee])
    async with FaultyRelay(tmp_path / "mail") as relay:
        relay.rules.hold_first_250[the_mentee.email] = 5.0
        settings = relay_settings(tmp_path, relay, mail_delivery="mailer")
        env = process_env(settings, db_dsn, dev_env)
        async with (
            spawned("mailer", env, tmp_path / "mailer.log"),
            spawned("worker", env, tmp_path / "worker-1.log") as doomed,
        ):
            await start_tandem(dev_env.client, the_mentee, settings)
            await asyncio.wait_for(relay.stored.wait(), timeout=60)
            doomed.kill()  # kill -9 while the relay has the data and its 250 waits
            await doomed.wait()
            async with spawned("worker", env, tmp_path / "worker-2.log"):

                async def sent() -> int:
                    return await sent_intro_rows(db, the_mentee.id)

                await eventually(sent, lambda n: n == 2, timeout=60)
        assert len(relay.to(the_mentee.email)) == 1, "the mail reached the relay once"
        attempts = await db.fetchval(
            "SELECT attempts FROM outbox WHERE mentee_id = $1 AND recipient_role = 'mentee'"
            " AND template = 'introduction_mentee'",
            the_mentee.id,
        )
        assert attempts == 1


@contextlib.asynccontextmanager
async def in_process_mailer(
    db: asyncpg.Pool, settings: Settings
) -> AsyncIterator[tuple[Outbox, MailDispatcher]]:
    """A worker's outbox handing over, and a mailer serving it, in this process."""
    catalog = ProgramCatalog(settings.programs_dir)
    outbox = Outbox(db, settings, SmtpSender(settings), catalog)
    dispatcher = MailDispatcher(db, Outbox(db, settings, SmtpSender(settings), catalog))
    async with dispatcher.running():
        yield outbox, dispatcher


async def test_a_refusal_reaches_the_worker_as_the_code_only(
    db: asyncpg.Pool, tmp_path: Path
) -> None:
    the_mentee = mentee(uid("S")).model_copy(update={"email": ADDRESS})
    the_mentor = mentor(uid("M"))
    await put_people(db, [the_mentor], [the_mentee])
    rules = RelayRules(refuse_rcpt={ADDRESS: f"550 5.1.1 <{ADDRESS}>: Recipient address rejected"})
    async with FaultyRelay(tmp_path / "mail", rules) as relay:
        settings = relay_settings(tmp_path, relay, mail_delivery="mailer")
        async with in_process_mailer(db, settings) as (outbox, _):
            receipt = await asyncio.wait_for(
                outbox.send(introduction_to_mentee(the_mentee.id, the_mentor.id)), timeout=30
            )
    assert receipt.failure == "550 5.1.1" and not receipt.newly_sent
    assert relay.messages() == []


async def test_a_relay_that_is_down_is_waited_for_and_the_mail_goes_once_it_is_back(
    db: asyncpg.Pool, tmp_path: Path
) -> None:
    the_mentee, the_mentor = mentee(uid("S")), mentor(uid("M"))
    await put_people(db, [the_mentor], [the_mentee])
    relay = FaultyRelay(tmp_path / "mail")
    await relay.start()
    port = relay.port
    await relay.stop()  # the relay is away when the mail is handed over
    settings = relay_settings(tmp_path, relay, smtp_port=port, mail_delivery="mailer")
    async with in_process_mailer(db, settings) as (outbox, _):
        sending = asyncio.create_task(
            outbox.send(introduction_to_mentee(the_mentee.id, the_mentor.id))
        )

        async def deferred() -> str | None:
            return await db.fetchval(  # type: ignore[no-any-return]
                "SELECT last_error FROM outbox WHERE mentee_id = $1", the_mentee.id
            )

        assert await eventually(deferred, lambda e: e is not None, timeout=30) == (
            "SmtpUnavailable"
        )
        assert not sending.done()
        relay.port = port
        await relay.start()
        await db.execute(  # no need to wait out the back-off in a test
            "UPDATE outbox SET next_attempt_at = now() WHERE mentee_id = $1", the_mentee.id
        )
        receipt = await asyncio.wait_for(sending, timeout=30)
        await relay.stop()
    assert receipt.newly_sent and receipt.failure is None
    assert len(relay.to(the_mentee.email)) == 1


async def test_a_mailer_stopped_for_a_deploy_finishes_its_send_and_the_next_sends_nothing_again(
    db: asyncpg.Pool, tmp_path: Path
) -> None:
    the_mentee, the_mentor = mentee(uid("S")), mentor(uid("M"))
    await put_people(db, [the_mentor], [the_mentee])
    async with FaultyRelay(tmp_path / "mail") as relay:
        relay.rules.hold_first_250[the_mentee.email] = 1.5
        settings = relay_settings(tmp_path, relay, mail_delivery="mailer")
        catalog = ProgramCatalog(settings.programs_dir)
        outbox = Outbox(db, settings, SmtpSender(settings), catalog)
        sending = asyncio.create_task(
            outbox.send(introduction_to_mentee(the_mentee.id, the_mentor.id))
        )
        first = MailDispatcher(db, Outbox(db, settings, SmtpSender(settings), catalog))
        async with first.running():
            await asyncio.wait_for(relay.stored.wait(), timeout=30)
        # left the block: stopped (SIGTERM) while the relay still held its 250
        second = MailDispatcher(db, Outbox(db, settings, SmtpSender(settings), catalog))
        async with second.running():
            receipt = await asyncio.wait_for(sending, timeout=30)
    assert receipt.failure is None
    assert len(relay.to(the_mentee.email)) == 1


async def test_a_refused_mail_is_resent_through_the_mailer_once_its_address_is_corrected(
    db: asyncpg.Pool, tmp_path: Path
) -> None:
    the_mentee = mentee(uid("S")).model_copy(update={"email": ADDRESS})
    the_mentor = mentor(uid("M"))
    await put_people(db, [the_mentor], [the_mentee])
    right = "jonas.brenner@praxis-nord.example.org"
    rules = RelayRules(refuse_rcpt={ADDRESS: f"550 5.1.1 <{ADDRESS}>: Recipient address rejected"})
    async with FaultyRelay(tmp_path / "mail", rules) as relay:
        settings = relay_settings(tmp_path, relay, mail_delivery="mailer")
        async with in_process_mailer(db, settings) as (outbox, _):
            request = introduction_to_mentee(the_mentee.id, the_mentor.id)
            refused = await asyncio.wait_for(outbox.send(request), timeout=30)
            assert refused.failure == "550 5.1.1"
            assert not await asyncio.wait_for(outbox.resend(request.idempotency_key), 30), (
                "the same address is not tried again"
            )
            await put_people(db, [], [the_mentee.model_copy(update={"email": right})])
            assert await asyncio.wait_for(outbox.resend(request.idempotency_key), 30)
            assert not await asyncio.wait_for(outbox.resend(request.idempotency_key), 30)
    assert [str(m["To"]) for m in relay.messages()] == [right]
