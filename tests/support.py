"""Helpers the workflow and end-to-end tests share: people on file, waiting on conditions."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker, WorkflowRunner

from activities.effects import EffectActivities
from activities.mail import Outbox
from activities.matching import MatchingActivities
from activities.people import apply_mentees, apply_mentors
from activities.smtp import SmtpSender
from starter.mailsink import MailSink
from starter.tandem_cmds import start_tandem
from tandem.answers import Answer, AnswerDetails, Intent
from tandem.messages import MailRequest
from tandem.models import Language, Mentee, Mentor, Role, TandemState, TandemStatus
from tandem.programs import load_programs
from tandem.settings import Settings
from worker import build_worker, sandboxed_runner
from workflows.tandem import TandemWorkflow, workflow_id

T = TypeVar("T")

BIN = Path(sys.executable).parent


def mentor(id: str, **kw: object) -> Mentor:
    data: dict[str, object] = {
        "id": id,
        "first_name": "Henrike",
        "last_name": f"Mentorin{id.replace('-', '')}",
        "email": f"{id.lower()}@praxis.example.org",
        "programs": ["stipendium-hausarzt", "demo"],
        "region": "Nordstadt",
        "specialty": "Allgemeinmedizin",
        "capacity": 1,
        "language": Language.DE,
    }
    data.update(kw)
    return Mentor.model_validate(data)


def mentee(id: str, **kw: object) -> Mentee:
    data: dict[str, object] = {
        "id": id,
        "first_name": "Jonas",
        "last_name": f"Beispiel{id.replace('-', '')}",
        "email": f"{id.lower()}@studium.example.org",
        "program": "stipendium-hausarzt",
        "phase": "study",
        "region": "Nordstadt",
        "specialty": "Allgemeinmedizin",
        "language": Language.DE,
    }
    data.update(kw)
    return Mentee.model_validate(data)


async def put_people(
    pool: asyncpg.Pool,
    mentors: list[Mentor] = (),
    mentees: list[Mentee] = (),  # type: ignore[assignment]
) -> None:
    async with pool.acquire() as conn:
        if mentors:
            await apply_mentors(conn, list(mentors))
        if mentees:
            await apply_mentees(conn, list(mentees))


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
) -> T:
    """Poll ``probe`` until ``done`` holds; fail with the last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)


async def tandem_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``tandem ARGS`` as an operator runs it: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "tandem"),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def mails_to(
    sink: MailSink, address: str, count: int = 1, *, timeout: float = 30.0
) -> list[EmailMessage]:
    """The mails to ``address`` once the sink holds ``count`` of them: a tandem shows its new
    status before its mails have reached the relay, so a test waits for the mails themselves."""

    async def probe() -> list[EmailMessage]:
        return [m for m in sink.messages() if m["To"] == address]

    return await eventually(probe, lambda mails: len(mails) >= count, timeout=timeout)


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    settings: Settings,
    pool: asyncpg.Pool,
    *,
    after_accept: Callable[[MailRequest], Awaitable[None]] | None = None,
    runner: WorkflowRunner | None = None,
) -> AsyncIterator[Worker]:
    """The production worker (real activities, real SMTP) on the test's own task queue, its
    workflows in the sandbox unless ``runner`` says otherwise (the benchmark runs the
    worker's own): a forbidden call in workflow code fails the test."""
    programs = load_programs(settings.programs_dir)
    worker = build_worker(
        client,
        settings,
        matching=MatchingActivities(pool),
        effects=EffectActivities(
            pool,
            Outbox(pool, settings, SmtpSender(settings), programs, after_accept=after_accept),
        ),
        runner=runner or sandboxed_runner(),
    )
    async with worker:
        yield worker


async def query_state(client: Client, mentee_id: str) -> TandemState:
    return await client.get_workflow_handle(workflow_id(mentee_id)).query(TandemWorkflow.state)


async def wait_status(
    client: Client, mentee_id: str, status: TandemStatus, timeout: float = 30.0
) -> TandemState:
    return await eventually(
        lambda: query_state(client, mentee_id), lambda s: s.status is status, timeout=timeout
    )


def uid(prefix: str) -> str:
    """A fresh id: the time-skipping server is shared by all tests."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def mails_in_order(pool: asyncpg.Pool, sink: MailSink) -> list[tuple[str, str]]:
    """(recipient, template) of every mail the SMTP sink received, in arrival order."""
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT message_id, template FROM outbox")
    template = {r["message_id"]: r["template"] for r in rows}
    return [(str(m["To"]), template[str(m["Message-ID"])]) for m in sink.messages()]


class Tandem:
    """Scripted people for lifecycle tests: ``script(mail, tandem)`` runs inside the mail
    activity, so what it does happens before the test server's clock moves on.

    The transition that sends a mail holds the workflow's lock until its effects are done, so
    a script never waits for an update's result: it waits until the workflow *accepted* the
    update (its validator ran), and the result arrives in ``results`` / ``refusals`` later,
    in order (call ``settle``)."""

    def __init__(self, env: WorkflowEnvironment, mentee_id: str) -> None:
        self.env = env
        self.mentee_id = mentee_id
        self.handle = env.client.get_workflow_handle(workflow_id(mentee_id))
        self.refusals: list[str] = []
        self.results: list[Any] = []
        self._pending: list[asyncio.Task[None]] = []
        self._answers = 0

    async def answer(
        self,
        role: Role,
        intent: Intent,
        request: str | None,
        *,
        answer_id: str | None = None,
        person_id: str | None = None,
        **details: object,
    ) -> None:
        """Answer as mentor or mentee (``person_id`` None: as the office records it)."""
        self._answers += 1
        given = Answer(
            role=role,
            person_id=person_id,
            request_id=request or "office:phone",
            intent=intent,
            details=AnswerDetails.model_validate(details),
            answer_id=answer_id or f"a{self._answers}",
        )
        await self.update(TandemWorkflow.answer, given, update_id=f"answer-{given.answer_id}")

    async def update(
        self, update: Any, arg: Any = None, *, update_id: str | None = None
    ) -> asyncio.Task[None] | None:
        """Send an update and wait until it is accepted; a validator's refusal is recorded.
        Returns the task that waits for its result (``None`` if refused at once)."""
        try:
            handle: WorkflowUpdateHandle[Any] = await self.handle.start_update(
                update,
                args=[] if arg is None else [arg],
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                id=update_id,
            )
        except WorkflowUpdateFailedError as err:
            self.refusals.append(str(getattr(err.cause, "message", err.cause)))
            return None
        task = asyncio.create_task(self._result(handle))
        self._pending.append(task)
        return task

    async def _result(self, handle: WorkflowUpdateHandle[Any]) -> None:
        try:
            self.results.append(await handle.result())
        except WorkflowUpdateFailedError as err:
            self.refusals.append(str(getattr(err.cause, "message", err.cause)))

    async def settle(self) -> None:
        """Wait for the results of every update sent so far."""
        while self._pending:
            pending, self._pending = self._pending, []
            await asyncio.gather(*pending)

    async def now(self) -> datetime:
        return await self.env.get_current_time()


Script = Callable[[MailRequest, Tandem], Awaitable[None]]


async def run_tandem(
    env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    settings: Settings,
    script: Script,
    *,
    mentors: list[Mentor],
    mentee_id: str,
    record_as: str | None = None,
    **mentee_fields: object,
) -> tuple[TandemState, Tandem]:
    """Run one tandem to its end (the script must end it) with real activities."""
    await put_people(pool, mentors, [mentee(mentee_id, **mentee_fields)])
    tandem = Tandem(env, mentee_id)
    handled: set[str] = set()

    async def once(mail: MailRequest) -> None:
        if mail.idempotency_key not in handled:  # an activity retry is not a second mail
            handled.add(mail.idempotency_key)
            await script(mail, tandem)

    async with running_worker(env.client, settings, pool, after_accept=once):
        handle = await start_tandem(env.client, mentee(mentee_id, **mentee_fields), settings)
        final = await asyncio.wait_for(handle.result(), timeout=300)
        await asyncio.wait_for(tandem.settle(), timeout=60)
    if record_as:
        assert handle.first_execution_run_id is not None
        await record_histories(env.client, handle.id, handle.first_execution_run_id, record_as)
    return final, tandem


async def events(pool: asyncpg.Pool, mentee_id: str) -> list[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT kind FROM tandem_events WHERE mentee_id = $1 ORDER BY seq", mentee_id
        )
    return [r["kind"] for r in rows]


async def mails_with_template(pool: asyncpg.Pool, sink: MailSink, template: str) -> list[Any]:
    """The mails the sink received that were rendered from ``template``."""
    async with pool.acquire() as conn:
        ids = {
            r["message_id"]
            for r in await conn.fetch("SELECT message_id FROM outbox WHERE template = $1", template)
        }
    return [m for m in sink.messages() if str(m["Message-ID"]) in ids]


async def terminate(proc: asyncio.subprocess.Process, grace: float) -> int:
    """SIGTERM and wait ``grace`` seconds (a worker or mailer finishes what it runs first),
    then SIGKILL; the exit code."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode


HISTORIES = Path(__file__).parent / "histories"


async def record_histories(client: Client, workflow_id: str, first_run_id: str, name: str) -> None:
    """With ``TANDEM_RECORD_HISTORIES=1``, store every run of a workflow (following
    continue-as-new) as ``tests/histories/<name>-<n>.json`` for the replay tests; with
    ``TANDEM_RECORD_HISTORIES=<patch id>``, as ``<name>.<patch id>-<n>.json`` (the branches
    of a new patch beside the ones that shipped). A file that exists is never overwritten:
    stored histories are what shipped."""
    tag = os.environ.get("TANDEM_RECORD_HISTORIES")
    if not tag:
        return
    if tag != "1":
        name = f"{name}.{tag}"
    run_id: str | None = first_run_id
    n = 0
    while run_id:
        n += 1
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        path = HISTORIES / f"{name}-{n}.json"
        if not path.exists():
            path.write_text(history.to_json(), encoding="utf-8")
        last = history.events[-1]
        attrs = last.workflow_execution_continued_as_new_event_attributes
        run_id = attrs.new_execution_run_id or None


def history_text(node: object) -> str:
    """Every string in a history, with payloads (base64 in JSON) decoded, to search for leaks."""
    if isinstance(node, dict):
        return "\n".join(
            base64.b64decode(v).decode("utf-8", "replace")
            if k == "data" and isinstance(v, str)
            else history_text(v)
            for k, v in node.items()
        )
    if isinstance(node, list):
        return "\n".join(history_text(v) for v in node)
    return str(node)


def free_port() -> int:
    """A port nothing listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
