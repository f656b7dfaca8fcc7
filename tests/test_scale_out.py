"""Several workers and gateways side by side (issue 10), on the real parts: two ``tandem worker``
and two ``tandem gateway`` processes on one task queue, one database (one durable inbox) and
one office mailbox both gateways poll over IMAP (pymap, as in ``tests/test_reply_imap.py``),
against the Temporal dev server, PostgreSQL and the SMTP sink. The four processes are started
once for this module and stopped (SIGTERM) at its end.

In each test several tandems are enrolled, and mentee and mentor each answer the
introduction as their mail client writes it (the answer on top, a signature, the original
below, sent to the Reply-To of the mail they got), all at once:

* over IMAP: every reply is put into the one mailbox both gateways poll;
* over SMTP: every reply is handed to both gateways at the same time, as a primary and a
  backup MX would hand over the same message.

Once everything has settled (every reply decided, every tandem activated, every mail out, no
workflow with work pending), the counts: each reply taken once (one answer event, one
"answered" verdict, its IMAP message in the processed folder once), each tandem activated
once, each mail the product sends about it (the reply's confirmation, the tandem's
confirmation) in the sink exactly once, no Message-ID twice, no outbox row sent twice, and the
workflow tasks and activities shared by both workers (their identities in the histories).
After the processes have left, when nothing more can be sent, the sink and the outbox are
checked once more.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.db import migrate
from replies.pipeline import answer_id_for
from starter.mailsink import MailSink
from tandem.mail import message_id
from tandem.models import Mentee, Mentor
from tandem.settings import Settings
from tests.reply_support import client_reply
from tests.support import (
    BIN,
    eventually,
    free_port,
    mentee,
    mentor,
    put_people,
    tandem_cli,
    terminate,
    uid,
)
from tests.test_reply_imap import PASSWORD, PROCESSED, USER, ImapTestServer, imap_server
from workflows.tandem import workflow_id

PAIRS = 8
#: The mails of PAIRS tandems whose people both answered the introduction with yes.
MAILS = {
    "introduction_mentee": PAIRS,
    "introduction_mentor": PAIRS,
    "reply_confirmed": 2 * PAIRS,
    "tandem_confirmed": 2 * PAIRS,
}

#: What the people write on top, each in their own words.
MENTEE_TEXTS = [
    "Hallo,\n\nwir haben uns letzte Woche in der Praxis getroffen. Ja, ich möchte das Tandem"
    " gern fortsetzen.",
    "Guten Tag,\n\nja, weitermachen! Das erste Treffen war sehr hilfreich.",
    "Hallo zusammen,\n\nich möchte das Tandem fortsetzen, danke für die Vermittlung.",
]
MENTOR_TEXTS = [
    "Guten Tag,\n\nja, weitermachen. Das erste Gespräch war sehr angenehm.",
    "Sehr geehrte Damen und Herren,\n\nich möchte das Tandem gern fortsetzen.",
]


# -- the parts ---------------------------------------------------------------------------------


@dataclass
class Part:
    """One ``tandem worker`` or ``tandem gateway`` process, its output in a JSON log file."""

    name: str
    proc: asyncio.subprocess.Process
    log: Path
    port: int | None = None

    def events(self, event: str, **having: object) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("event") == event and all(
                    entry.get(k) == v for k, v in having.items()
                ):
                    found.append(entry)
        return found

    def ready(self, *events: str) -> bool:
        if self.proc.returncode is not None:
            raise AssertionError(f"{self.name} left with {self.proc.returncode}: {self.tail()}")
        return all(self.events(e) for e in events)

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]

    async def stop(self) -> int:
        """SIGTERM, then wait (a worker lets running activities finish first)."""
        return await terminate(self.proc, grace=45)


@dataclass
class Stack:
    workers: list[Part] = field(default_factory=list)
    gateways: list[Part] = field(default_factory=list)
    #: Exit codes once stopped, by part name.
    codes: dict[str, int] = field(default_factory=dict)

    @property
    def parts(self) -> list[Part]:
        return [*self.workers, *self.gateways]


async def _spawn(command: str, name: str, env: dict[str, str], cwd: Path) -> Part:
    log = cwd / f"{name}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "tandem"),
            command,
            env=env,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    return Part(name, proc, log)


@contextlib.asynccontextmanager
async def scaled_out(env: dict[str, str], root: Path) -> AsyncIterator[Stack]:
    """Two workers and two gateways (each its own SMTP port, both on the IMAP mailbox), all
    ready; stopped at the end."""
    stack = Stack()
    try:
        for n in (1, 2):
            stack.workers.append(await _spawn("worker", f"worker-{n}", env, root))
        for n in (1, 2):
            port = free_port()
            part = await _spawn(
                "gateway", f"gateway-{n}", {**env, "TANDEM_GATEWAY_PORT": str(port)}, root
            )
            part.port = port
            stack.gateways.append(part)

        async def ready() -> bool:
            return all(w.ready("worker_started") for w in stack.workers) and all(
                g.ready("gateway_listening", "imap_ready") for g in stack.gateways
            )

        await eventually(ready, bool, timeout=90, interval=0.2)
        yield stack
    finally:
        codes = await asyncio.gather(*(p.stop() for p in stack.parts))
        stack.codes = {p.name: c for p, c in zip(stack.parts, codes, strict=True)}


@contextlib.asynccontextmanager
async def fresh_database(server_dsn: str) -> AsyncIterator[str]:
    """A migrated database of its own on the session's PostgreSQL, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    base, _, query = server_dsn.partition("?")
    dsn = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    try:
        yield dsn
    finally:
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@dataclass
class Rig:
    db: asyncpg.Pool
    settings: Settings
    env: dict[str, str]
    sink: MailSink
    imap: ImapTestServer
    stack: Stack
    client: Client


@pytest_asyncio.fixture(scope="module")
async def rig(
    pg_server_dsn: str, dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Rig]:
    root = tmp_path_factory.mktemp("scale-out")
    async with fresh_database(pg_server_dsn) as dsn:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
        assert pool is not None
        sink = MailSink(root / "home" / "mail", port=0)
        await sink.start()
        settings = Settings(
            home=root / "home",
            smtp_port=sink.port,
            task_queue=f"tq-{uuid.uuid4().hex[:8]}",
            reply_token_secret=SecretStr("test-secret"),
        )
        kept = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TANDEM_") and k != "DATABASE_URL"
        }
        try:
            with imap_server() as server:
                env = {
                    **kept,
                    "DATABASE_URL": dsn,
                    "TANDEM_HOME": str(settings.home),
                    "TANDEM_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
                    "TANDEM_TASK_QUEUE": settings.task_queue,
                    "TANDEM_SMTP_PORT": str(sink.port),
                    "TANDEM_REPLY_TOKEN_SECRET": "test-secret",
                    "TANDEM_LOG_FORMAT": "json",
                    "TANDEM_IMAP_HOST": "127.0.0.1",
                    "TANDEM_IMAP_PORT": str(server.port),
                    "TANDEM_IMAP_USERNAME": USER,
                    "TANDEM_IMAP_PASSWORD": PASSWORD,
                    "TANDEM_IMAP_CA_FILE": str(server.write_ca(root / "imap-ca.pem")),
                    "TANDEM_IMAP_PROCESSED_FOLDER": PROCESSED,
                    "TANDEM_IMAP_POLL_SECONDS": "0.5",
                }
                async with scaled_out(env, root) as stack:
                    yield Rig(pool, settings, env, sink, server, stack, dev_env.client)
            assert stack.codes == {p.name: 0 for p in stack.parts}, stack.codes
            # Every process has left: nothing more can be sent, and still nothing is twice.
            await assert_nothing_twice(pool, sink)
        finally:
            await sink.stop()
            await pool.close()


# -- the people and their replies --------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    mentee: Mentee
    mentor: Mentor


async def pairs_on_file(db: asyncpg.Pool, count: int) -> list[Pair]:
    """``count`` mentees and as many mentors, one seat each, each pair in its own region (so
    who meets whom does not depend on which enrolment comes first)."""
    p = uid("so")
    pairs = [
        Pair(
            mentee(f"{p}-S{i}", region=f"Region {p} {i}"),
            mentor(f"{p}-M{i}", region=f"Region {p} {i}", last_name=f"Mentorin{i}"),
        )
        for i in range(count)
    ]
    await put_people(db, [x.mentor for x in pairs], [x.mentee for x in pairs])
    return pairs


@dataclass(frozen=True)
class Reply:
    pair: Pair
    role: str  # mentee | mentor
    message_id: str
    sender: str
    rcpt: str
    raw: bytes

    @property
    def answer_id(self) -> str:
        return answer_id_for(self.message_id)


def people(pairs: list[Pair]) -> set[str]:
    return {str(x.mentee.email) for x in pairs} | {str(x.mentor.email) for x in pairs}


def to(mail: EmailMessage) -> str:
    return parseaddr(str(mail["To"]))[1]


async def introductions(sink: MailSink, pairs: list[Pair]) -> dict[str, EmailMessage]:
    """The introduction each person got, by address, once all of them are in the sink."""
    wanted = people(pairs)

    async def probe() -> dict[str, EmailMessage]:
        mails = await asyncio.to_thread(sink.messages)
        return {to(m): m for m in mails if m["Reply-To"] and to(m) in wanted}

    return await eventually(probe, lambda found: set(found) == wanted, timeout=60)


def replies_to(intros: dict[str, EmailMessage], pairs: list[Pair]) -> list[Reply]:
    replies: list[Reply] = []
    for i, x in enumerate(pairs):
        for role, person, texts in (
            ("mentee", x.mentee, MENTEE_TEXTS),
            ("mentor", x.mentor, MENTOR_TEXTS),
        ):
            original = intros[str(person.email)]
            reply = client_reply(original, person, texts[i % len(texts)], len(replies))
            replies.append(
                Reply(
                    pair=x,
                    role=role,
                    message_id=str(reply["Message-ID"]).strip(),
                    sender=str(person.email),
                    rcpt=parseaddr(str(original["Reply-To"]))[1],
                    raw=bytes(reply),
                )
            )
    return replies


async def enrolled_and_introduced(rig: Rig, pairs: list[Pair]) -> list[Reply]:
    """``tandem enroll`` for every mentee; each person's reply to their introduction."""
    code, _, err = await tandem_cli(rig.env, "enroll", *(x.mentee.id for x in pairs))
    assert code == 0, err
    return replies_to(await introductions(rig.sink, pairs), pairs)


# -- what happened -----------------------------------------------------------------------------


async def progress(rig: Rig, replies: list[Reply]) -> dict[str, int]:
    pairs = list({r.pair.mentee.id: r.pair for r in replies}.values())
    ids = [x.mentee.id for x in pairs]
    db = rig.db
    busy = 0
    for mentee_id in ids:  # a workflow task or an activity still to run
        raw = (
            await rig.client.get_workflow_handle(workflow_id(mentee_id)).describe()
        ).raw_description
        busy += bool(raw.pending_activities) or raw.HasField("pending_workflow_task")
    mails = await asyncio.to_thread(rig.sink.messages)
    return {
        "verdicts": int(
            await db.fetchval(
                "SELECT count(*) FROM reply_verdicts WHERE message_id_hash = ANY($1::text[])",
                [r.answer_id for r in replies],
            )
        ),
        "inbound": int(await db.fetchval("SELECT count(*) FROM inbound_mail")),
        "activated": int(
            await db.fetchval(
                "SELECT count(*) FROM tandem_events WHERE kind = 'activated'"
                " AND mentee_id = ANY($1::text[])",
                ids,
            )
        ),
        "unsent": int(
            await db.fetchval(
                "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND mentee_id = ANY($1::text[])",
                ids,
            )
        ),
        "mails": sum(to(m) in people(pairs) for m in mails),
        "busy": busy,
    }


def settled(pairs: int, verdicts: int) -> Callable[[dict[str, int]], bool]:
    """Every reply decided, every tandem activated, every mail out (6 per tandem: two
    introductions, two reply confirmations, two tandem confirmations), no workflow with work
    pending. ``>=``: a doubled mail or verdict ends the wait too, and the checks name it."""

    def done(p: dict[str, int]) -> bool:
        return (
            p["verdicts"] >= verdicts
            and p["inbound"] == 0
            and p["activated"] >= pairs
            and p["unsent"] == 0
            and p["mails"] >= 6 * pairs
            and p["busy"] == 0
        )

    return done


async def assert_each_tandem_moved_once(db: asyncpg.Pool, pairs: list[Pair]) -> None:
    """One answer event per person, one activation, one status change to active."""
    for x in pairs:
        rows = await db.fetch(
            "SELECT kind, status FROM tandem_events WHERE mentee_id = $1 ORDER BY seq", x.mentee.id
        )
        kinds = [r["kind"] for r in rows]
        assert kinds[:2] == ["enrolled", "introduced"], kinds
        assert sorted(kinds[2:4]) == ["decision_continue_mentee", "decision_continue_mentor"]
        assert kinds[4:] == ["activated"], kinds
        statuses = [r["status"] for r in rows]
        changes = [b for a, b in itertools.pairwise(statuses) if a != b]
        assert changes.count("active") == 1, statuses
        status = await db.fetchval("SELECT status FROM tandems WHERE mentee_id = $1", x.mentee.id)
        assert status == "active"


async def assert_every_mail_once(rig: Rig, replies: list[Reply]) -> Counter[str]:
    """Every mail of these tandems in the sink is an outbox row or a reply's confirmation,
    each exactly once; each person got exactly their introduction, their reply's confirmation
    and the tandem's confirmation. Returns the mails by template."""
    pairs = list({r.pair.mentee.id: r.pair for r in replies}.values())
    rows = await rig.db.fetch(
        "SELECT idempotency_key, message_id, mentee_id, recipient_role, template, attempts,"
        " sent_at FROM outbox WHERE mentee_id = ANY($1::text[])",
        [x.mentee.id for x in pairs],
    )
    assert len(rows) == 4 * len(pairs), sorted(r["idempotency_key"] for r in rows)
    assert [(r["idempotency_key"], r["attempts"]) for r in rows if r["attempts"] != 1] == []
    assert all(r["sent_at"] is not None for r in rows)
    per_mail = Counter((r["mentee_id"], r["recipient_role"], r["template"]) for r in rows)
    assert set(per_mail.values()) == {1}, per_mail
    template = {r["message_id"]: r["template"] for r in rows}
    for r in replies:
        confirmation = message_id(f"reply/{r.answer_id}/confirmed", rig.settings.mail_domain)
        template[confirmation] = "reply_confirmed"
    everyone = people(pairs)
    mails = [
        m
        for m in await asyncio.to_thread(rig.sink.messages)
        if to(m) in everyone or str(m["Message-ID"]).strip() in template
    ]
    ids = Counter(str(m["Message-ID"]).strip() for m in mails)
    assert [i for i, n in ids.items() if n > 1] == [], "a Message-ID twice in the sink"
    assert set(ids) == set(template), "mails missing, or mails nobody asked for"
    got: dict[str, list[str]] = {}
    for m in mails:
        got.setdefault(to(m), []).append(template[str(m["Message-ID"]).strip()])
    for x in pairs:
        for role, person in (("mentee", x.mentee), ("mentor", x.mentor)):
            assert sorted(got.pop(str(person.email))) == sorted(
                [f"introduction_{role}", "reply_confirmed", "tandem_confirmed"]
            )
    assert got == {}, "mail to someone else"
    return Counter(template[i] for i in ids)


async def assert_nothing_twice(db: asyncpg.Pool, sink: MailSink) -> None:
    """The whole sink and outbox: no Message-ID twice, every row sent once and arrived, no
    reply recorded as answered twice."""
    ids = Counter(str(m["Message-ID"]).strip() for m in await asyncio.to_thread(sink.messages))
    assert [i for i, n in ids.items() if n > 1] == [], "a Message-ID twice in the sink"
    rows = await db.fetch("SELECT idempotency_key, message_id, attempts, sent_at FROM outbox")
    assert [r["idempotency_key"] for r in rows if r["attempts"] != 1 or r["sent_at"] is None] == []
    assert {r["message_id"] for r in rows} <= set(ids)
    twice = await db.fetchval(
        "SELECT count(*) FROM (SELECT message_id_hash FROM reply_verdicts"
        " WHERE verdict = 'accepted' AND reason = 'answered'"
        " GROUP BY message_id_hash HAVING count(*) > 1) AS answered_twice"
    )
    assert twice == 0


async def work_by_worker(rig: Rig, pairs: list[Pair]) -> dict[str, int]:
    """Workflow tasks completed and activities started by each worker process, from the
    histories (a worker's identity is ``pid@host``)."""
    by_pid = {str(w.proc.pid): w.name for w in rig.stack.workers}
    done: Counter[str] = Counter()
    for x in pairs:
        history = await rig.client.get_workflow_handle(workflow_id(x.mentee.id)).fetch_history()
        for e in history.events:
            if e.HasField("workflow_task_completed_event_attributes"):
                identity = e.workflow_task_completed_event_attributes.identity
            elif e.HasField("activity_task_started_event_attributes"):
                identity = e.activity_task_started_event_attributes.identity
            else:
                continue
            done[by_pid.get(identity.partition("@")[0], f"other:{identity}")] += 1
    return dict(done)


def stored_by(rig: Rig, transport: str) -> dict[str, int]:
    """Replies each gateway stored in the inbox over ``transport`` (from its log)."""
    return {
        g.name: len(g.events("reply_received", transport=transport)) for g in rig.stack.gateways
    }


def _deliver(server: ImapTestServer, raws: list[bytes]) -> None:
    """APPEND one after another over one connection, as one delivery agent of the office's
    mail server does (the test server's own client, trusting its CA)."""
    with server._client() as client:
        for raw in raws:
            status, _ = client.append("INBOX", None, None, raw)
            assert status == "OK"


# -- the tests ---------------------------------------------------------------------------------


async def test_two_gateways_on_one_imap_mailbox_and_two_workers_take_every_reply_once(
    rig: Rig,
) -> None:
    started = time.monotonic()
    pairs = await pairs_on_file(rig.db, PAIRS)
    replies = await enrolled_and_introduced(rig, pairs)
    # All at once, over two connections, while both gateways wait in IDLE.
    await asyncio.gather(
        *(asyncio.to_thread(_deliver, rig.imap, [r.raw for r in replies[i::2]]) for i in (0, 1))
    )
    await eventually(
        lambda: progress(rig, replies), settled(PAIRS, len(replies)), timeout=60, interval=0.3
    )
    await eventually(rig.imap.messages, lambda left: left == [], timeout=20)

    # Each reply: stored once (by one gateway or the other), decided once, answered once,
    # moved to the processed folder once.
    stored = stored_by(rig, "imap")
    assert sum(stored.values()) == len(replies), stored
    verdicts = await rig.db.fetch(
        "SELECT * FROM reply_verdicts WHERE message_id_hash = ANY($1::text[])",
        [r.answer_id for r in replies],
    )
    assert sorted(v["message_id_hash"] for v in verdicts) == sorted(r.answer_id for r in replies)
    assert {(v["verdict"], v["reason"], v["intent"]) for v in verdicts} == {
        ("accepted", "answered", "continue")
    }
    assert {(v["mentee_id"], v["role"]) for v in verdicts} == {
        (r.pair.mentee.id, r.role) for r in replies
    }
    taken = await rig.db.fetch(
        "SELECT uid, inbound_id FROM imap_messages WHERE message_id_hash = ANY($1::text[])",
        [r.answer_id for r in replies],
    )
    assert len(taken) == len(replies)
    assert len({t["inbound_id"] for t in taken if t["inbound_id"] is not None}) == len(replies)
    ours = {r.message_id for r in replies}
    processed = Counter(
        mid
        for raw in await rig.imap.messages(PROCESSED)
        if (mid := str(message_from_bytes(raw, policy=default_policy)["Message-ID"]).strip())
        in ours
    )
    assert processed == Counter(ours), "each reply in the processed folder once"

    await assert_each_tandem_moved_once(rig.db, pairs)
    mails = await assert_every_mail_once(rig, replies)
    assert mails == MAILS
    work = await work_by_worker(rig, pairs)
    assert set(work) == {"worker-1", "worker-2"} and min(work.values()) > 0, work
    print(
        f"\nIMAP: {len(replies)} replies, {len(verdicts)} verdicts, stored by {stored},"
        f" mails {dict(mails)}, work {work}, {time.monotonic() - started:.1f} s"
    )


async def test_a_reply_handed_to_both_gateways_like_a_backup_mx_is_answered_once(
    rig: Rig,
) -> None:
    started = time.monotonic()
    pairs = await pairs_on_file(rig.db, PAIRS)
    replies = await enrolled_and_introduced(rig, pairs)
    before = stored_by(rig, "smtp")
    # The same message, byte for byte, to both gateways at the same time.
    await asyncio.gather(
        *(
            aiosmtplib.send(
                r.raw, sender=r.sender, recipients=[r.rcpt], hostname="127.0.0.1", port=g.port
            )
            for r in replies
            for g in rig.stack.gateways
        )
    )
    await eventually(
        lambda: progress(rig, replies), settled(PAIRS, 2 * len(replies)), timeout=60, interval=0.3
    )

    stored = {name: n - before[name] for name, n in stored_by(rig, "smtp").items()}
    assert stored == {"gateway-1": len(replies), "gateway-2": len(replies)}
    await assert_each_tandem_moved_once(rig.db, pairs)
    mails = await assert_every_mail_once(rig, replies)
    assert mails == MAILS
    verdicts = await rig.db.fetch(
        "SELECT * FROM reply_verdicts WHERE message_id_hash = ANY($1::text[])",
        [r.answer_id for r in replies],
    )
    assert {v["verdict"] for v in verdicts} == {"accepted"}
    assert {(v["mentee_id"], v["role"]) for v in verdicts} == {
        (r.pair.mentee.id, r.role) for r in replies
    }
    by_reply: dict[str, list[str]] = {}
    for v in verdicts:
        by_reply.setdefault(v["message_id_hash"], []).append(f"{v['reason']}/{v['intent']}")
    assert set(by_reply) == {r.answer_id for r in replies}
    # A verdict per copy: one copy is answered, the other is the duplicate it is (read or
    # not, depending on whether the first verdict was there when it was looked at).
    answered = [reasons.count("answered/continue") for reasons in by_reply.values()]
    twice, never = sum(n > 1 for n in answered), sum(n == 0 for n in answered)
    assert (twice, never) == (0, 0), (
        f"of {len(replies)} replies, {twice} recorded as answered twice, {never} never"
    )
    assert all(
        len(reasons) == 2 and sorted(reasons)[1].startswith("duplicate/")
        for reasons in by_reply.values()
    ), by_reply
    work = await work_by_worker(rig, pairs)
    assert set(work) == {"worker-1", "worker-2"} and min(work.values()) > 0, work
    print(
        f"\nSMTP twice: {len(replies)} replies, {len(verdicts)} verdicts, stored by {stored},"
        f" mails {dict(mails)}, work {work}, {time.monotonic() - started:.1f} s"
    )
