"""``tandem doctor``: compare Postgres with Temporal and repair what is safe to repair.

Temporal is the source of truth for whether a tandem runs and with whom; Postgres holds what
follows from it (seats, the projection, the outbox) and the durable reply inbox. Things drift
when a workflow is terminated, fails or times out (its seat is never given back), when a
process dies at the wrong moment, or when a row is changed by hand. Each check here looks at
one table, says what it found and, unless ``--dry-run``, repairs what it safely can:

* seats held by a tandem that does not run (any more), or by another mentor than the
  running tandem's: freed;
* projection rows (``tandems``) that differ from the workflow's search attributes: updated
  (a failed, terminated or timed-out tandem is ``ended``); rows without a workflow reported;
* outbox rows never sent: sent now if their tandem runs, reported if the relay refused them
  for good or the tandem no longer runs;
* reply inbox rows stuck behind a stale lease or a far-off retry: made due now (never read,
  never deleted);
* tandems that need a person: status ``needs_attention`` and failed workflows.

Only ids, status codes and counts are printed: never a name, an address or a mail text.
Every repair is guarded by what was seen (the seat row, the projection's sequence, the mail's
row lock), so a tandem moving on while the doctor runs is not undone.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol

import asyncpg
import structlog
import typer
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.db import create_pool
from activities.matching import take_seat
from replies.inbox import RetryPolicy
from starter.common import connect_temporal, console, database_url, print_json, run
from tandem.models import TandemState, TandemStatus
from tandem.settings import Settings, get_settings
from workflows import search_attributes as sa
from workflows.client import TandemClient
from workflows.ids import mentee_id_of
from workflows.tandem import TandemWorkflow

#: The status a tandem gets when one of its activities failed for good (``tandem retry``).
NEEDS_ATTENTION = sa.NEEDS_ATTENTION
#: Describes in flight at once.
CONCURRENCY = 32
#: An inbox row tried this often is made due now (and counted), so it is decided or given up.
MANY_ATTEMPTS = 50
#: How long the state query of one tandem may take (it needs a worker).
QUERY_TIMEOUT = timedelta(seconds=5)
#: Seconds one resend of a stored mail may take (a few SMTP sends' worth).
RESEND_PATIENCE = 60.0

CHECKS = ("seats", "projection", "outbox", "inbox", "attention")
ABNORMAL = frozenset(
    {
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.TIMED_OUT,
        WorkflowExecutionStatus.CANCELED,
    }
)
FINAL = frozenset({TandemStatus.COMPLETED.value, TandemStatus.ENDED.value})
_ENROLMENT = re.compile(r"/e(\d+)/")


class Resender(Protocol):
    """What the doctor needs of ``activities.mail.Outbox``: send one stored unsent row exactly
    once (under a row lock); True if it was sent now, False if sent before or refused."""

    async def resend(self, idempotency_key: str) -> bool: ...


@dataclass
class Finding:
    check: str
    #: A mentee id, an outbox idempotency key, or a count of inbox rows: ids only.
    subject: str
    problem: str
    #: What was done ("freed", "would free", "left", ...).
    action: str
    #: The doctor can repair it (and, unless a dry run, did: ``done``).
    repairable: bool = False
    done: bool = False
    #: Left for a person (whatever the doctor did).
    needs_person: bool = False
    hint: str | None = None
    count: int = 1

    @property
    def left(self) -> bool:
        """Still wrong after this run: for a person, or a repair not (yet) made."""
        return self.needs_person or (self.repairable and not self.done)


@dataclass
class Report:
    dry_run: bool
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def of(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]

    @property
    def ok(self) -> bool:
        """Nothing left that needs a person (in a dry run: nothing to repair either)."""
        return not any(f.left for f in self.findings)

    def summary(self) -> dict[str, int]:
        return {
            "found": sum(f.count for f in self.findings),
            "repaired": sum(f.count for f in self.findings if f.done),
            "would_repair": sum(
                f.count for f in self.findings if f.repairable and not f.done and self.dry_run
            ),
            "needs_person": sum(f.count for f in self.findings if f.needs_person),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "summary": self.summary(),
            "findings": [asdict(f) for f in self.findings],
        }


@dataclass
class Run:
    """The latest run of a tandem's workflow, as ``describe`` saw it."""

    run_id: str | None
    status: WorkflowExecutionStatus | None
    tandem_status: str | None
    phase: str | None
    program: str | None
    mentor_id: str | None

    @property
    def running(self) -> bool:
        return self.status is WorkflowExecutionStatus.RUNNING

    @property
    def closed_as(self) -> str:
        return self.status.name.lower() if self.status else "unknown"

    @classmethod
    def of(cls, desc: WorkflowExecutionDescription) -> Run:
        attrs = desc.typed_search_attributes
        return cls(
            run_id=desc.run_id,
            status=desc.status,
            tandem_status=attrs.get(sa.TANDEM_STATUS),
            phase=attrs.get(sa.TANDEM_PHASE),
            program=attrs.get(sa.TANDEM_PROGRAM),
            mentor_id=attrs.get(sa.MENTOR_ID),
        )


class Doctor:
    def __init__(
        self,
        client: Client,
        pool: asyncpg.Pool,
        *,
        resender: Resender | None,
        dry_run: bool,
        older_than: timedelta,
        inbox_policy: RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.tandems = TandemClient(client)
        self.pool = pool
        self.resender = resender
        self.dry_run = dry_run
        self.older_than = older_than
        self.policy = inbox_policy or RetryPolicy()
        self.report = Report(dry_run)
        self._runs: dict[str, Run | None] = {}
        self._states: dict[str, TandemState | None] = {}
        #: Mentees whose seat a dry run would free (a real run frees them).
        self._would_free: set[str] = set()
        self._limit = asyncio.Semaphore(CONCURRENCY)

    # -- Temporal -------------------------------------------------------------------------

    async def describe(self, mentee_id: str, *, fresh: bool = False) -> Run | None:
        """The latest run of the tandem's workflow (no run id: after continue-as-new, the
        newest); None if there is none."""
        if not fresh and mentee_id in self._runs:
            return self._runs[mentee_id]
        async with self._limit:
            try:
                found: Run | None = Run.of(await self.tandems.handle(mentee_id).describe())
            except RPCError as err:
                if err.status is not RPCStatusCode.NOT_FOUND:
                    raise
                found = None
        self._runs[mentee_id] = found
        return found

    async def describe_all(self, mentee_ids: Iterable[str]) -> None:
        await asyncio.gather(*(self.describe(m) for m in set(mentee_ids) - set(self._runs)))

    async def state(self, mentee_id: str) -> TandemState | None:
        """The running workflow's own state (needs a worker); None if nobody answered."""
        if mentee_id in self._states:
            return self._states[mentee_id]
        async with self._limit:
            try:
                state: TandemState | None = await self.tandems.handle(mentee_id).query(
                    TandemWorkflow.state, rpc_timeout=QUERY_TIMEOUT
                )
            except (RPCError, WorkflowQueryFailedError, TimeoutError):
                state = None
        self._states[mentee_id] = state
        return state

    async def listed_tandems(self) -> set[str]:
        """Every tandem visibility knows (latest runs and closed ones within retention)."""
        query = (
            f"WorkflowType = '{TandemWorkflow.__name__}' AND ExecutionStatus != 'ContinuedAsNew'"
        )
        ids: set[str] = set()
        async for wf in self.client.list_workflows(query):
            try:
                ids.add(mentee_id_of(wf.id))
            except ValueError:
                continue
        return ids

    # -- the checks -----------------------------------------------------------------------

    async def run(self) -> Report:
        async with self.pool.acquire() as conn:
            seats = await conn.fetch("SELECT mentee_id, mentor_id, reserved_at FROM seats")
            rows = await conn.fetch(
                "SELECT mentee_id, status, phase, mentor_id, program, enrolment, last_event_seq"
                " FROM tandems"
            )
        listed = await self.listed_tandems()
        await self.describe_all(
            listed | {r["mentee_id"] for r in seats} | {r["mentee_id"] for r in rows}
        )
        await self.check_seats(seats)
        await self.check_missing_seats()
        await self.check_projection(rows, listed)
        await self.check_outbox()
        await self.check_inbox()
        self.check_attention()
        return self.report

    async def check_seats(self, seats: list[asyncpg.Record]) -> None:
        now = datetime.now(UTC)
        for seat in seats:
            mentee, mentor = seat["mentee_id"], seat["mentor_id"]
            wf = await self.describe(mentee)
            if wf is not None and wf.running:
                problem = await self._running_seat_problem(mentee, mentor, wf, seat, now)
                if problem is None:
                    continue
                if problem.startswith("unconfirmed"):
                    self.report.add(
                        Finding(
                            "seats",
                            mentee,
                            f"seat of mentor {mentor}: {problem}",
                            "left",
                            needs_person=True,
                            hint="start a worker (`tandem worker`) and run the doctor again",
                        )
                    )
                    continue
            elif wf is None:
                problem = "no workflow"
            else:
                problem = f"workflow {wf.closed_as}"
                if wf.tandem_status in FINAL:
                    problem += f" ({wf.tandem_status}: should have released it)"
            await self._free_seat(seat, f"seat of mentor {mentor}: {problem}", wf)

    async def _running_seat_problem(
        self, mentee: str, mentor: str, wf: Run, seat: asyncpg.Record, now: datetime
    ) -> str | None:
        """Why a running tandem's seat is wrong, or None. A seat just taken may not be in
        the workflow's state yet (the matching activity takes it first): only a seat older
        than the threshold is judged, and only after the workflow's own state confirms it."""
        if wf.mentor_id == mentor:
            return None
        if now - seat["reserved_at"] < self.older_than:
            return None
        state = await self.state(mentee)
        if state is None:
            return "unconfirmed: its tandem has another mentor, no worker answered"
        if state.mentor_id == mentor or state.status is TandemStatus.MATCHING:
            return None  # search attributes behind, or a match in flight
        return f"the running tandem's mentor is {state.mentor_id or 'none'}"

    async def _free_seat(self, seat: asyncpg.Record, problem: str, seen: Run | None) -> None:
        mentee = seat["mentee_id"]
        if self.dry_run:
            self.report.add(Finding("seats", mentee, problem, "would free", repairable=True))
            self._would_free.add(mentee)
            return
        async with self.pool.acquire() as conn, conn.transaction():
            locked = await conn.fetchrow(
                "SELECT 1 FROM seats WHERE mentee_id = $1 AND mentor_id = $2"
                " AND reserved_at = $3 FOR UPDATE",
                mentee,
                seat["mentor_id"],
                seat["reserved_at"],
            )
            # A tandem enrolled again meanwhile (a new run) decides for itself: look again.
            now_seen = await self.describe(mentee, fresh=True)
            same = (now_seen is None and seen is None) or (
                now_seen is not None and seen is not None and now_seen.run_id == seen.run_id
            )
            if locked is None or not same:
                self.report.add(Finding("seats", mentee, problem, "left: changed meanwhile"))
                return
            await conn.execute(
                "DELETE FROM seats WHERE mentee_id = $1 AND mentor_id = $2 AND reserved_at = $3",
                mentee,
                seat["mentor_id"],
                seat["reserved_at"],
            )
        self.report.add(Finding("seats", mentee, problem, "freed", repairable=True, done=True))

    async def check_missing_seats(self) -> None:
        """A running tandem with a mentor holds one of the mentor's seats; without it the
        mentor can be matched beyond capacity. The seat is taken again (the same locked
        reservation as matching) once the workflow's own state confirms the mentor."""
        held = {r["mentee_id"] for r in await self.pool.fetch("SELECT mentee_id FROM seats")}
        held -= self._would_free
        for mentee, wf in sorted(self._runs.items()):
            if wf is None or not wf.running or wf.mentor_id is None or mentee in held:
                continue
            if wf.tandem_status in FINAL:
                continue
            state = await self.state(mentee)
            if state is None:
                self.report.add(
                    Finding(
                        "seats",
                        mentee,
                        f"no seat of its mentor {wf.mentor_id}: unconfirmed, no worker answered",
                        "left",
                        needs_person=True,
                        hint="start a worker (`tandem worker`) and run the doctor again",
                    )
                )
                continue
            if state.mentor_id != wf.mentor_id or state.status in (
                TandemStatus.MATCHING,
                TandemStatus.WAITING_FOR_MENTOR,
                TandemStatus.COMPLETED,
                TandemStatus.ENDED,
            ):
                continue  # moving on right now: the workflow takes or gives seats itself
            await self._take_seat(mentee, wf)

    async def _take_seat(self, mentee: str, seen: Run) -> None:
        mentor = seen.mentor_id
        assert mentor is not None
        problem = f"holds no seat of its mentor {mentor}"
        if self.dry_run:
            self.report.add(Finding("seats", mentee, problem, "would reserve", repairable=True))
            return
        now_seen = await self.describe(mentee, fresh=True)
        if now_seen is None or now_seen.run_id != seen.run_id or now_seen.mentor_id != mentor:
            self.report.add(Finding("seats", mentee, problem, "left: changed meanwhile"))
            return
        async with self.pool.acquire() as conn:
            taken = await take_seat(conn, mentee, mentor)
        if taken:
            self.report.add(
                Finding("seats", mentee, problem, "reserved", repairable=True, done=True)
            )
        else:
            self.report.add(
                Finding(
                    "seats",
                    mentee,
                    problem,
                    "left: the mentor has no free seat",
                    repairable=True,
                    needs_person=True,
                    hint=f"raise the mentor's capacity (import) or `tandem rematch {mentee}`",
                )
            )

    async def check_projection(self, rows: list[asyncpg.Record], listed: set[str]) -> None:
        have = {r["mentee_id"] for r in rows}
        for row in rows:
            mentee = row["mentee_id"]
            wf = await self.describe(mentee)
            if wf is None:
                if row["status"] not in FINAL:
                    self.report.add(
                        Finding(
                            "projection",
                            mentee,
                            f"row says {row['status']}, no workflow exists",
                            "left",
                            needs_person=True,
                            hint=f"`tandem enroll {mentee}` starts a tandem",
                        )
                    )
                continue
            want = await self._wanted(mentee, wf, row)
            if want is None:
                continue
            seen = (row["status"], row["phase"], row["mentor_id"])
            if want == seen:
                continue
            changed = ", ".join(
                f"{name} {old or '-'} -> {new or '-'}"
                for name, old, new in zip(("status", "phase", "mentor"), seen, want, strict=True)
                if old != new
            )
            await self._update_row(row, want, changed)
        for mentee in sorted(listed - have):
            wf = self._runs.get(mentee)
            if wf is not None:
                await self._insert_row(mentee, wf)

    async def _wanted(
        self, mentee: str, wf: Run, row: asyncpg.Record
    ) -> tuple[str, str, str | None] | None:
        """What the row should say: the workflow's search attributes; ``ended`` for a tandem
        that failed, was terminated, timed out or was cancelled."""
        if wf.status in ABNORMAL:
            status = row["status"] if row["status"] in FINAL else TandemStatus.ENDED.value
            return (status, row["phase"], row["mentor_id"])
        if wf.tandem_status is None or wf.phase is None:
            return None  # nothing to compare with
        status = await self._lifecycle_status(mentee, wf) or row["status"]
        return (status, wf.phase, wf.mentor_id)

    async def _lifecycle_status(self, mentee: str, wf: Run) -> str | None:
        """The projection keeps the lifecycle status; ``TandemStatus`` shows
        ``needs_attention`` over it, so then the workflow's state says (None: no answer)."""
        if wf.tandem_status != NEEDS_ATTENTION:
            return wf.tandem_status
        state = await self.state(mentee)
        return None if state is None else state.status.value

    async def _update_row(
        self, row: asyncpg.Record, want: tuple[str, str, str | None], changed: str
    ) -> None:
        mentee = row["mentee_id"]
        if self.dry_run:
            self.report.add(Finding("projection", mentee, changed, "would update", repairable=True))
            return
        # Only the row as seen: an event written meanwhile (newer sequence) is not undone, and
        # the next event overwrites what is written here (the sequence is left as it was).
        result = await self.pool.execute(
            """
            UPDATE tandems SET status = $2, phase = $3, mentor_id = $4, updated_at = now()
             WHERE mentee_id = $1 AND enrolment = $5 AND last_event_seq = $6
               AND status = $7 AND phase = $8 AND mentor_id IS NOT DISTINCT FROM $9
            """,
            mentee,
            *want,
            row["enrolment"],
            row["last_event_seq"],
            row["status"],
            row["phase"],
            row["mentor_id"],
        )
        if result.endswith(" 1"):
            self.report.add(
                Finding("projection", mentee, changed, "updated", repairable=True, done=True)
            )
        else:  # an event moved it on: the tandem wrote its own row
            self.report.add(Finding("projection", mentee, changed, "left: changed meanwhile"))

    async def _insert_row(self, mentee: str, wf: Run) -> None:
        if wf.status in ABNORMAL:
            status: str | None = TandemStatus.ENDED.value
        else:
            status = await self._lifecycle_status(mentee, wf)
        if status is None or wf.phase is None or wf.program is None:
            self.report.add(
                Finding("projection", mentee, "workflow without a row", "left", needs_person=True)
            )
            return
        problem = f"workflow ({status}) without a row"
        if self.dry_run:
            self.report.add(Finding("projection", mentee, problem, "would insert", repairable=True))
            return
        # Sequence 0: the tandem's next event replaces the row.
        await self.pool.execute(
            """
            INSERT INTO tandems (mentee_id, program, phase, status, mentor_id, updated_at)
            VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (mentee_id) DO NOTHING
            """,
            mentee,
            wf.program,
            wf.phase,
            status,
            wf.mentor_id,
        )
        self.report.add(
            Finding("projection", mentee, problem, "inserted", repairable=True, done=True)
        )

    async def check_outbox(self) -> None:
        rows = await self.pool.fetch(
            """
            SELECT idempotency_key, mentee_id, failed_at, failure FROM outbox
             WHERE sent_at IS NULL AND created_at < now() - $1::interval
             ORDER BY created_at
            """,
            self.older_than,
        )
        await self.describe_all(r["mentee_id"] for r in rows)
        for row in rows:
            await self._unsent(row)

    async def _unsent(self, row: asyncpg.Record) -> None:
        key, mentee = row["idempotency_key"], row["mentee_id"]
        if row["failed_at"] is not None:
            self.report.add(_refused(key, mentee, row["failure"]))
            return
        wf = await self.describe(mentee)
        if wf is None or not wf.running:
            why = "no workflow" if wf is None else f"workflow {wf.closed_as}"
            self.report.add(Finding("outbox", key, f"never sent, tandem gone ({why})", "left"))
            return
        state = await self.state(mentee)
        if state is None:
            self.report.add(
                Finding(
                    "outbox",
                    key,
                    "never sent, tandem runs (no worker answered: enrolment unknown)",
                    "left",
                    needs_person=True,
                    hint="start a worker (`tandem worker`) and run the doctor again",
                )
            )
            return
        enrolment = _ENROLMENT.search(key)
        if enrolment is not None and int(enrolment.group(1)) != state.enrolment:
            self.report.add(Finding("outbox", key, "never sent, of an earlier tandem", "left"))
            return
        problem = "never sent, tandem runs"
        if self.dry_run:
            self.report.add(Finding("outbox", key, problem, "would send", repairable=True))
            return
        if self.resender is None:
            self.report.add(Finding("outbox", key, problem, "left: no sender", repairable=True))
            return
        try:
            # bounded: with a mailer (``TANDEM_MAIL_DELIVERY=mailer``) this waits for it
            async with asyncio.timeout(RESEND_PATIENCE):
                sent = await self.resender.resend(key)
        except Exception as err:  # the relay (or the mailer) away, most likely: a person looks
            self.report.add(
                Finding(
                    "outbox",
                    key,
                    problem,
                    f"send failed ({type(err).__name__})",
                    repairable=True,
                    needs_person=True,
                )
            )
            return
        if sent:
            self.report.add(Finding("outbox", key, problem, "sent", repairable=True, done=True))
            return
        after = await self.pool.fetchrow(
            "SELECT sent_at, failed_at, failure FROM outbox WHERE idempotency_key = $1", key
        )
        if after is not None and after["sent_at"] is None and after["failed_at"] is not None:
            self.report.add(_refused(key, mentee, after["failure"]))
        else:
            self.report.add(
                Finding(
                    "outbox", key, problem, "already sent meanwhile", repairable=True, done=True
                )
            )

    async def check_inbox(self) -> None:
        """Rows never read, never deleted: only their lease and next attempt are reset."""
        p = self.policy
        old = self.older_than
        free = "(leased_until IS NULL OR leased_until < now())"  # nobody works on it now
        kinds: list[tuple[str, str, object]] = [
            ("lease expired long ago", "leased_until < now() - $1::interval", old),
            (
                "lease far ahead of the policy",
                "leased_until > now() + $1::interval",
                timedelta(seconds=p.lease) + old,
            ),
            (
                "next attempt far ahead of the policy",
                f"{free} AND next_attempt_at > now() + $1::interval",
                timedelta(seconds=p.max_delay) + old,
            ),
            (
                f"tried {MANY_ATTEMPTS} times or more",
                f"{free} AND attempts >= $1 AND next_attempt_at > now()",
                MANY_ATTEMPTS,
            ),
        ]
        async with self.pool.acquire() as conn, conn.transaction():
            taken: set[int] = set()
            for problem, where, arg in kinds:
                ids = [
                    r["id"]
                    for r in await conn.fetch(
                        f"SELECT id FROM inbound_mail WHERE {where} FOR UPDATE SKIP LOCKED", arg
                    )
                    if r["id"] not in taken
                ]
                if not ids:
                    continue
                taken.update(ids)
                if not self.dry_run:
                    await conn.execute(
                        "UPDATE inbound_mail SET leased_until = NULL, next_attempt_at = now()"
                        " WHERE id = ANY($1::bigint[])",
                        ids,
                    )
                self.report.add(
                    Finding(
                        "inbox",
                        f"{len(ids)} mail(s)",
                        problem,
                        "would make due now" if self.dry_run else "made due now",
                        repairable=True,
                        done=not self.dry_run,
                        count=len(ids),
                    )
                )
            overdue = await conn.fetchval(
                "SELECT count(*) FROM inbound_mail"
                " WHERE next_attempt_at < now() - $1::interval"
                " AND (leased_until IS NULL OR leased_until < now())"
                " AND NOT (id = ANY($2::bigint[]))",
                old,
                list(taken),
            )
        if overdue:
            self.report.add(
                Finding(
                    "inbox",
                    f"{overdue} mail(s)",
                    "due long ago, nobody took them",
                    "left",
                    needs_person=True,
                    hint="is `tandem gateway` running?",
                    count=int(overdue),
                )
            )

    def check_attention(self) -> None:
        for mentee, wf in sorted(self._runs.items()):
            if wf is None:
                continue
            if wf.running and wf.tandem_status == NEEDS_ATTENTION:
                self.report.add(
                    Finding(
                        "attention",
                        mentee,
                        "needs attention (an activity failed for good)",
                        "left",
                        needs_person=True,
                        hint=f"fix the cause, then `tandem retry {mentee}`",
                    )
                )
            elif wf.status in (WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.TIMED_OUT):
                self.report.add(
                    Finding(
                        "attention",
                        mentee,
                        f"workflow {wf.closed_as}",
                        "left",
                        needs_person=True,
                        hint=f"see its history in the Temporal UI; `tandem enroll {mentee}`"
                        " starts a new tandem",
                    )
                )


def _refused(key: str, mentee: str, failure: str | None) -> Finding:
    return Finding(
        "outbox",
        key,
        f"refused by the relay for good ({failure or 'no code'})",
        "left",
        needs_person=True,
        hint="correct the address in the CSV file and import it again;"
        f" `tandem retry {mentee}` sends it",
    )


async def diagnose(
    client: Client,
    pool: asyncpg.Pool,
    *,
    resender: Resender | None,
    dry_run: bool = False,
    older_than: timedelta = timedelta(minutes=15),
) -> Report:
    """Every check, in order; repairs unless ``dry_run``."""
    doctor = Doctor(client, pool, resender=resender, dry_run=dry_run, older_than=older_than)
    return await doctor.run()


def outbox_resender(pool: asyncpg.Pool, settings: Settings) -> Resender:
    """The worker's own outbox and SMTP sender: a mail sent here is sent as the worker would."""
    from activities.mail import Outbox
    from activities.smtp import SmtpSender
    from tandem.programs import ProgramCatalog

    return Outbox(pool, settings, SmtpSender(settings), ProgramCatalog(settings.programs_dir))


# -- output ---------------------------------------------------------------------------------

_TITLES = {
    "seats": "seats",
    "projection": "projection (tandems)",
    "outbox": "outbox (unsent mail)",
    "inbox": "reply inbox",
    "attention": "needs a person",
}


def render(report: Report, echo: Callable[[str], None]) -> None:
    """Per check what was found and done, then one summary line. Ids and counts only."""
    for check in CHECKS:
        found = report.of(check)
        if not found:
            echo(f"{_TITLES[check]}: ok")
            continue
        echo(f"{_TITLES[check]}: {sum(f.count for f in found)} found")
        for f in found:
            echo(f"  {f.subject}: {f.problem} -> {f.action}")
            if f.hint:
                echo(f"    hint: {f.hint}")
    s = report.summary()
    done = (
        f"{s['would_repair']} would be repaired" if report.dry_run else f"{s['repaired']} repaired"
    )
    tail = " (dry run: nothing changed)" if report.dry_run else ""
    echo(f"doctor: {s['found']} found, {done}, {s['needs_person']} need a person{tail}")


# -- the command ----------------------------------------------------------------------------


class _Stderr:
    """Whatever ``sys.stderr`` is at the time of each write."""

    def write(self, text: str) -> None:
        sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextlib.contextmanager
def _logs_to_stderr() -> Iterator[None]:
    before = structlog.get_config()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=_Stderr()))  # type: ignore[arg-type]
    try:
        yield
    finally:
        structlog.configure(**before)


def doctor(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would be repaired; change nothing.")
    ] = False,
    older_than: Annotated[
        float,
        typer.Option(
            "--older-than",
            min=0,
            help="Minutes: unsent mail and seats younger than this are left alone.",
        ),
    ] = 15.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Compare Postgres with Temporal; free leaked seats, fix the projection, send mail never
    sent, make stuck replies due again; report what needs a person. Exit 1 if anything does
    (with --dry-run: also if anything would be repaired)."""

    async def go() -> Report:
        settings = get_settings()
        dsn = database_url(settings)
        client = await connect_temporal(settings)
        pool = await create_pool(dsn, max_size=4)
        try:
            return await diagnose(
                client,
                pool,
                resender=None if dry_run else outbox_resender(pool, settings),
                dry_run=dry_run,
                older_than=timedelta(minutes=older_than),
            )
        finally:
            await pool.close()

    with _logs_to_stderr():  # the mail code logs each send: stdout stays the report's
        report = run(go())
    if as_json:
        print_json(report.as_json())
    else:
        render(
            report, lambda line: console.print(line, highlight=False, soft_wrap=True, markup=False)
        )
    if not report.ok:
        raise typer.Exit(1)
