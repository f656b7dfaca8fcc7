"""Faults as an office meets them: a relay that refuses an address for good, one that defers,
a programme file that is missing, two attempts of one mail at once, a worker stopped while it
sends. Nothing is lost, nothing is sent twice, no tandem fails, and no failure, history or log
line carries an address or a name."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import traceback
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import pytest
import yaml
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.effects import EffectActivities
from activities.mail import Outbox
from activities.matching import MatchingActivities
from activities.people import get_mentee
from activities.scrub import InvalidRecord, scrubbed
from activities.smtp import SEND_TIMEOUT, MailRefused, SmtpSender
from starter.tandem_cmds import start_tandem
from tandem.models import TandemState
from tandem.programs import ProgramCatalog
from tandem.settings import PROJECT_ROOT, Settings
from tests.relay import FaultyRelay, RelayRules, introduction_to_mentee, relay_settings
from tests.support import BIN, eventually, history_text, mentee, mentor, put_people, uid
from worker import GRACEFUL_SHUTDOWN, build_worker, run_worker
from workflows import search_attributes as sa
from workflows.client import TandemClient, TandemNeedsAttention
from workflows.tandem import TandemWorkflow, workflow_id

ADDRESS = "anna.kowalski@klinik.example.org"
RELAY_SAYS = "Recipient address rejected"


def leaks(text: str, *secrets: str) -> list[str]:
    return [s for s in secrets if s.lower() in text.lower()]


def plain_mail(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "tandem@example.org"
    msg["To"] = to
    msg["Subject"] = "Ihr Tandem"
    msg.set_content("Guten Tag")
    return msg


# -- the relay's answers, sorted and scrubbed -----------------------------------------------


@pytest.mark.parametrize(
    ("rules", "final", "code"),
    [
        pytest.param(
            RelayRules(refuse_rcpt={ADDRESS: f"550 5.1.1 <{ADDRESS}>: {RELAY_SAYS}: User unknown"}),
            True,
            "550 5.1.1",
            id="no-such-mailbox",
        ),
        pytest.param(
            RelayRules(refuse_data={ADDRESS: f"554 5.7.1 <{ADDRESS}>: Message rejected as spam"}),
            True,
            "554 5.7.1",
            id="content-refused",
        ),
        pytest.param(
            RelayRules(
                defer_rcpt={ADDRESS: (99, f"451 4.7.1 <{ADDRESS}>: {RELAY_SAYS}: Greylisted")}
            ),
            False,
            "451 4.7.1",
            id="greylisted",
        ),
        pytest.param(
            RelayRules(defer_rcpt={ADDRESS: (99, f"452 4.2.2 <{ADDRESS}>: Mailbox full")}),
            False,
            "452 4.2.2",
            id="mailbox-full",
        ),
        pytest.param(
            RelayRules(refuse_sender=f"553 5.7.1 Sender rejected, ask {ADDRESS}"),
            False,
            "553 5.7.1",
            id="relay-refuses-us",
        ),
    ],
)
async def test_the_relays_answer_is_sorted_and_no_error_repeats_its_text(
    tmp_path: Path, rules: RelayRules, final: bool, code: str
) -> None:
    async with FaultyRelay(tmp_path / "mail", rules) as relay:
        sender = SmtpSender(relay_settings(tmp_path, relay))
        with pytest.raises(Exception) as caught:
            await sender.send(plain_mail(ADDRESS))
    err = caught.value
    if final:
        assert isinstance(err, MailRefused) and err.failure == code
    else:
        assert isinstance(err, ApplicationError) and not err.non_retryable
        assert code in err.message
    text = "".join(traceback.format_exception(err)) + repr(err)
    proto = Failure()  # what Temporal would store of it (history, the UI's last failure)
    pydantic_data_converter.failure_converter.to_failure(
        scrubbed(err), pydantic_data_converter.payload_converter, proto
    )
    assert leaks(text + str(proto), ADDRESS, "anna", RELAY_SAYS, "spam", "Mailbox full") == []
    assert err.__cause__ is None and err.__suppress_context__


async def test_a_relay_that_is_down_is_retried_and_named_without_details(tmp_path: Path) -> None:
    relay = FaultyRelay(tmp_path / "mail")
    await relay.start()
    port = relay.port
    await relay.stop()  # nothing listens on the port any more
    settings = Settings.model_validate(
        {"home": tmp_path / "home", "smtp_port": port, "reply_token_secret": "s"}
    )
    with pytest.raises(ApplicationError) as caught:
        await SmtpSender(settings).send(plain_mail(ADDRESS))
    assert caught.value.type == "SmtpUnavailable" and not caught.value.non_retryable
    assert leaks("".join(traceback.format_exception(caught.value)), ADDRESS) == []


async def test_a_person_on_file_that_does_not_validate_is_named_by_id_only(
    db: asyncpg.Pool,
) -> None:
    the_mentee = mentee(uid("S"), email=ADDRESS, first_name="Annabella")
    await put_people(db, [], [the_mentee])
    await db.execute("UPDATE mentees SET email = $2 WHERE id = $1", the_mentee.id, "anna at home")
    async with db.acquire() as conn:
        with pytest.raises(InvalidRecord) as caught:
            await get_mentee(conn, the_mentee.id)
    text = "".join(traceback.format_exception(caught.value))
    assert the_mentee.id in str(caught.value) and "email" in str(caught.value)
    assert leaks(text, "anna at home", "Annabella") == []
    failure = scrubbed(caught.value)
    assert failure.non_retryable and failure.type == "InvalidRecord"


def test_any_other_activity_error_leaves_as_its_type_only() -> None:
    for err in (KeyError(ADDRESS), ValueError(f"bad address {ADDRESS}"), OSError(2, ADDRESS)):
        failure = scrubbed(err)
        assert leaks(failure.message + str(failure.type), ADDRESS) == []
        assert not failure.non_retryable  # unknown trouble is retried, then needs attention


# -- through the workflow ----------------------------------------------------------------


@contextlib.asynccontextmanager
async def worker_for(
    client: Client, settings: Settings, pool: asyncpg.Pool, programs_dir: Path | None = None
) -> AsyncIterator[Worker]:
    catalog = ProgramCatalog(programs_dir or settings.programs_dir)
    outbox = Outbox(pool, settings, SmtpSender(settings), catalog)
    worker = build_worker(
        client,
        settings,
        matching=MatchingActivities(pool),
        effects=EffectActivities(pool, outbox),
    )
    async with worker:
        yield worker


async def state_of(client: Client, mentee_id: str) -> TandemState:
    return await client.get_workflow_handle(workflow_id(mentee_id)).query(TandemWorkflow.state)


async def test_a_refused_address_lets_the_tandem_go_on_and_a_corrected_import_sends_it(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    p = uuid.uuid4().hex[:6]
    wrong, right = f"annabella.{p}@klinik.example.org", f"annabella.w.{p}@klinik.example.org"
    rules = RelayRules(refuse_rcpt={wrong: f"550 5.1.1 <{wrong}>: {RELAY_SAYS}: User unknown"})
    client = dev_env.client
    async with FaultyRelay(tmp_path / "mail", rules) as relay:
        settings = relay_settings(tmp_path, relay)
        the_mentor = mentor(uid("M"))
        the_mentee = mentee(uid("S"), email=wrong, first_name="Annabella", last_name="Wolkow")
        await put_people(db, [the_mentor], [the_mentee])
        async with worker_for(client, settings, db):
            await start_tandem(client, the_mentee, settings)
            state = await eventually(
                lambda: state_of(client, the_mentee.id),
                lambda s: bool(s.failed_mails) and s.status.value == "introduced",
            )
            office = await eventually(
                lambda: asyncio.sleep(
                    0, [m for m in relay.messages() if "nicht zustellbar" in str(m["Subject"])]
                ),
                lambda found: len(found) == 1,
            )
            # The tandem goes on: the mentor was introduced, the mentee's mail is a fact.
            assert len(relay.to(the_mentor.email)) == 1
            assert relay.to(wrong) == []
            body = office[0].get_content()
            assert the_mentee.id in body and "550 5.1.1" in body and "Mentee" in body
            assert leaks(body, wrong, "Annabella", "Wolkow") == []
            row = await db.fetchrow(
                "SELECT failed_at, failure, sent_at FROM outbox WHERE idempotency_key = $1",
                state.failed_mails[0],
            )
            assert row["failed_at"] is not None and row["sent_at"] is None
            assert row["failure"] == "550 5.1.1"

            # The office corrects the address in its CSV and imports it again.
            csv = tmp_path / "mentees.csv"
            csv.write_text(
                "id,first_name,last_name,email,program,phase,region,specialty,"
                "expected_phase_end,language\n"
                f"{the_mentee.id},Annabella,Wolkow,{right},stipendium-hausarzt,study,"
                "Nordstadt,Allgemeinmedizin,,de\n",
                encoding="utf-8",
            )
            env = {
                **os.environ,
                "DATABASE_URL": db_dsn,
                "TANDEM_HOME": str(settings.home),
                "TANDEM_TEMPORAL_ADDRESS": client.service_client.config.target_host,
                "TANDEM_TASK_QUEUE": settings.task_queue,
                "TANDEM_SMTP_PORT": str(relay.port),
            }
            proc = await asyncio.create_subprocess_exec(
                str(BIN / "tandem"),
                "import",
                "mentees",
                str(csv),
                "--json",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
            assert proc.returncode == 0, err.decode()
            assert '"tandems_resending_mail": 1' in out.decode()
            await eventually(lambda: state_of(client, the_mentee.id), lambda s: not s.failed_mails)
            resent = relay.to(right)
            assert len(resent) == 1
            sent_id = await db.fetchval(
                "SELECT message_id FROM outbox WHERE idempotency_key = $1", state.failed_mails[0]
            )
            assert str(resent[0]["Message-ID"]) == sent_id
            kinds = [
                r["kind"]
                for r in await db.fetch(
                    "SELECT kind FROM tandem_events WHERE mentee_id = $1 ORDER BY seq",
                    the_mentee.id,
                )
            ]
            assert "mail_failed" in kinds and "mail_resent" in kinds
        handle = client.get_workflow_handle(workflow_id(the_mentee.id))
        history = history_text((await handle.fetch_history()).to_json_dict())
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
    logs = caplog.text + "".join(capfd.readouterr())
    for where in (history, logs):
        assert leaks(where, wrong, right, "Annabella", "Wolkow", RELAY_SAYS) == []
    # Only one alert for the one refusal.
    assert len([m for m in relay.messages() if "nicht zustellbar" in str(m["Subject"])]) == 1


async def test_a_deferred_mail_is_retried_and_the_ui_shows_only_the_code(
    dev_env: WorkflowEnvironment, db: asyncpg.Pool, tmp_path: Path
) -> None:
    p = uuid.uuid4().hex[:6]
    grey = f"jonas.{p}@studium.example.org"
    rules = RelayRules(defer_rcpt={grey: (2, f"451 4.7.1 <{grey}>: {RELAY_SAYS}: Greylisted")})
    client = dev_env.client
    async with FaultyRelay(tmp_path / "mail", rules) as relay:
        settings = relay_settings(tmp_path, relay)
        the_mentee = mentee(uid("S"), email=grey)
        await put_people(db, [mentor(uid("M"))], [the_mentee])
        handle = client.get_workflow_handle(workflow_id(the_mentee.id))
        async with worker_for(client, settings, db):
            await start_tandem(client, the_mentee, settings)

            async def pending_failure() -> str:
                desc = await handle.describe()
                for act in desc.raw_description.pending_activities:
                    if act.last_failure.message:
                        return act.last_failure.message + act.last_failure.stack_trace
                return ""

            shown = await eventually(pending_failure, bool)
            await eventually(lambda: asyncio.sleep(0, relay.to(grey)), lambda m: len(m) == 1)
            state = await state_of(client, the_mentee.id)
        assert "451 4.7.1" in shown
        assert leaks(shown, grey, RELAY_SAYS) == []
        assert relay.rcpt_attempts[grey] == 3  # two deferrals, then taken once
        assert len(relay.to(grey)) == 1
        assert state.failed_mails == [] and state.attention is None


async def test_a_missing_programme_file_makes_the_tandem_wait_for_the_office_not_fail(
    dev_env: WorkflowEnvironment, db: asyncpg.Pool, tmp_path: Path
) -> None:
    """The realistic trigger: a new programme enrolled on before the workers know its file.
    The tandem waits ("needs attention"), answers wait too, and once the file is there,
    ``tandem retry`` carries out what was left, without a worker restart."""
    client = dev_env.client
    worker_programs = tmp_path / "worker-programs"
    worker_programs.mkdir()
    async with FaultyRelay(tmp_path / "mail") as relay:
        settings = relay_settings(tmp_path, relay)
        the_mentor, the_mentee = mentor(uid("M")), mentee(uid("S"))
        await put_people(db, [the_mentor], [the_mentee])
        tandems = TandemClient(client, settings.task_queue)
        handle = client.get_workflow_handle(workflow_id(the_mentee.id))
        async with worker_for(client, settings, db, programs_dir=worker_programs):
            await start_tandem(client, the_mentee, settings)
            state = await eventually(
                lambda: state_of(client, the_mentee.id), lambda s: s.attention is not None
            )
            assert state.attention == "UnknownProgram"
            desc = await eventually(
                handle.describe,
                lambda d: d.typed_search_attributes.get(sa.TANDEM_STATUS) == "needs_attention",
            )
            assert desc.status is WorkflowExecutionStatus.RUNNING
            # Nothing is answered meanwhile; the answer is told to wait, not refused for good.
            with pytest.raises(TandemNeedsAttention):
                await tandems.resume(the_mentee.id)
            assert relay.messages() == []

            # The programme file arrives; the same worker reads it on demand.
            shutil.copy(
                PROJECT_ROOT / "programs" / "stipendium-hausarzt.yaml",
                worker_programs / "stipendium-hausarzt.yaml",
            )
            result = await tandems.retry(the_mentee.id)
            assert result.status.value == "introduced"
            state = await state_of(client, the_mentee.id)
            assert state.attention is None
            assert len(relay.to(the_mentee.email)) == 1 and len(relay.to(the_mentor.email)) == 1
            desc = await eventually(
                handle.describe,
                lambda d: d.typed_search_attributes.get(sa.TANDEM_STATUS) == "introduced",
            )
            with pytest.raises(Exception, match="nothing to retry"):
                await tandems.retry(the_mentee.id)
        kinds = [
            r["kind"]
            for r in await db.fetch(
                "SELECT kind FROM tandem_events WHERE mentee_id = $1 ORDER BY seq", the_mentee.id
            )
        ]
        # In order of what happened: the introduction was decided before it could be carried
        # out, and its row was written (like its mails) on retry.
        assert kinds == ["enrolled", "introduced", "needs_attention", "retried"]


async def test_two_overlapping_attempts_of_one_mail_send_it_once(
    db: asyncpg.Pool, tmp_path: Path
) -> None:
    """A retry that starts while the first attempt still talks to the relay (a timeout, a
    second worker) waits for it and then finds the mail sent."""
    async with FaultyRelay(tmp_path / "mail") as relay:
        settings = relay_settings(tmp_path, relay)
        the_mentee = mentee(uid("S"))
        the_mentor = mentor(uid("M"))
        await put_people(db, [the_mentor], [the_mentee])
        inside = asyncio.Event()

        class SlowRelay(SmtpSender):
            async def send(self, message: EmailMessage) -> None:
                inside.set()
                await asyncio.sleep(0.5)  # the relay takes its time; the window is wide open
                await super().send(message)

        catalog = ProgramCatalog(settings.programs_dir)
        outbox = Outbox(db, settings, SlowRelay(settings), catalog)
        request = introduction_to_mentee(the_mentee.id, the_mentor.id)
        first = asyncio.create_task(outbox.send(request))
        await asyncio.wait_for(inside.wait(), timeout=10)
        second = await outbox.send(request)
        receipts = [await first, second]
    assert sorted(r.newly_sent for r in receipts) == [False, True]
    assert len(relay.to(the_mentee.email)) == 1


async def test_sigterm_lets_a_running_send_finish_before_the_worker_leaves(
    dev_env: WorkflowEnvironment, db: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    """A deploy stops the worker in the middle of a send: the send completes and is marked,
    so the next worker sends nothing again."""
    async with FaultyRelay(tmp_path / "mail") as relay:
        settings = relay_settings(tmp_path, relay)
        the_mentee = mentee(uid("S"))
        await put_people(db, [mentor(uid("M"))], [the_mentee])
        inside, stop = asyncio.Event(), asyncio.Event()

        class SlowRelay(SmtpSender):
            async def send(self, message: EmailMessage) -> None:
                inside.set()
                await asyncio.sleep(1.5)
                await super().send(message)

        worker = asyncio.create_task(
            run_worker(settings, db_dsn, dev_env.client, stop=stop, sender=SlowRelay(settings))
        )
        await start_tandem(dev_env.client, the_mentee, settings)
        await asyncio.wait_for(inside.wait(), timeout=30)
        stop.set()  # what SIGTERM does in ``worker.main``
        await asyncio.wait_for(worker, timeout=GRACEFUL_SHUTDOWN.total_seconds() + 10)
        sent = await db.fetch(
            "SELECT sent_at, attempts FROM outbox WHERE mentee_id = $1 AND template = $2",
            the_mentee.id,
            "introduction_mentee",
        )
    assert len(sent) == 1 and sent[0]["sent_at"] is not None and sent[0]["attempts"] == 1
    assert len(relay.to(the_mentee.email)) == 1


def test_the_compose_stop_grace_period_outlasts_the_workers_graceful_shutdown() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    grace = compose["services"]["worker"]["stop_grace_period"]
    assert grace.endswith("s")
    # A send in flight ends before the worker's shutdown gives up on it, and the worker's
    # shutdown ends before the container is killed, with room to spare.
    assert GRACEFUL_SHUTDOWN.total_seconds() > SEND_TIMEOUT
    assert float(grace[:-1]) >= GRACEFUL_SHUTDOWN.total_seconds() + 10
    # The mailer, on SIGTERM, finishes the sends it began: its container waits for them too.
    mailer_grace = compose["services"]["mailer"]["stop_grace_period"]
    assert mailer_grace.endswith("s")
    assert float(mailer_grace[:-1]) >= SEND_TIMEOUT + 10


async def test_a_stored_mail_resent_by_the_doctor_goes_to_the_address_now_on_file(
    db: asyncpg.Pool, tmp_path: Path
) -> None:
    async with FaultyRelay(tmp_path / "mail") as relay:
        settings = relay_settings(tmp_path, relay)
        the_mentee, the_mentor = mentee(uid("S")), mentor(uid("M"))
        await put_people(db, [the_mentor], [the_mentee])
        outbox = Outbox(db, settings, SmtpSender(settings), ProgramCatalog(settings.programs_dir))
        request = introduction_to_mentee(the_mentee.id, the_mentor.id)
        key = request.idempotency_key

        class Down(SmtpSender):
            async def send(self, message: EmailMessage) -> None:
                raise ApplicationError("down", type="SmtpUnavailable")

        down = Outbox(db, settings, Down(settings), ProgramCatalog(settings.programs_dir))
        with pytest.raises(ApplicationError):
            await down.send(request)  # stored, not sent
        new_address = f"neu.{the_mentee.id.lower()}@studium.example.org"
        await db.execute("UPDATE mentees SET email = $2 WHERE id = $1", the_mentee.id, new_address)
        assert await outbox.resend(key) is True
        assert await outbox.resend(key) is False
    assert len(relay.to(new_address)) == 1 and relay.to(the_mentee.email) == []


async def test_a_database_lost_between_the_relays_250_and_the_mark_sends_nothing_twice(
    db: asyncpg.Pool, tmp_path: Path
) -> None:
    """The chaos run's duplicate: PostgreSQL restarted just after the relay took a mail, the
    mark was rolled back and the retry sent it again."""
    async with FaultyRelay(tmp_path / "mail") as relay:
        settings = relay_settings(tmp_path, relay)
        the_mentee, the_mentor = mentee(uid("S")), mentor(uid("M"))
        await put_people(db, [the_mentor], [the_mentee])

        class ThenTheDatabaseGoes(SmtpSender):
            async def send(self, message: EmailMessage) -> None:
                await super().send(message)
                # Every other session of this database is cut, as a restart would.
                await db.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )

        outbox = Outbox(
            db, settings, ThenTheDatabaseGoes(settings), ProgramCatalog(settings.programs_dir)
        )
        request = introduction_to_mentee(the_mentee.id, the_mentor.id)
        with contextlib.suppress(Exception):
            await outbox.send(request)  # the first attempt, however it ends
        for _ in range(12):  # the activity's retries, until one completes
            with contextlib.suppress(asyncpg.InterfaceError, asyncpg.PostgresConnectionError):
                retry = await outbox.send(request)
                break
    assert retry.newly_sent is False
    assert len(relay.to(the_mentee.email)) == 1
