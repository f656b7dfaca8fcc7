"""Helpers the workflow and end-to-end tests share: people on file, waiting on conditions."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.events import EventActivities
from activities.mail import MailActivities
from activities.matching import MatchingActivities
from activities.people import apply_mentees, apply_mentors
from activities.smtp import SmtpSender
from starter.mailsink import MailSink
from tandem.messages import MailRequest
from tandem.models import Language, Mentee, Mentor, TandemState, TandemStatus
from tandem.programs import load_programs
from tandem.settings import Settings
from worker import build_worker
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


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    settings: Settings,
    pool: asyncpg.Pool,
    *,
    after_accept: Callable[[MailRequest], Awaitable[None]] | None = None,
) -> AsyncIterator[Worker]:
    """The production worker (real activities, real SMTP) on the test's own task queue."""
    programs = load_programs(settings.programs_dir)
    worker = build_worker(
        client,
        settings,
        matching=MatchingActivities(pool),
        mail=MailActivities(
            pool, settings, SmtpSender(settings), programs, after_accept=after_accept
        ),
        events=EventActivities(pool),
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
