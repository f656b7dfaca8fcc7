"""Operator commands that change a running tandem. Each is a workflow update: the workflow's
validator refuses what its state does not allow, and the refusal is printed as one line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time
from typing import Annotated, Any, TypeVar

import asyncpg
import typer

from activities.people import get_mentee
from activities.ratings import record_rating
from starter.common import (
    CommandError,
    connect_temporal,
    console,
    database_url,
    fail,
    print_json,
    run,
)
from tandem.answers import AnswerDetails, Intent
from tandem.messages import EndRequest, PauseRequest
from tandem.models import Role
from tandem.settings import get_settings
from workflows.client import TandemClient, TandemNotFound, TandemRefused

T = TypeVar("T")

MenteeId = Annotated[str, typer.Argument(help="The mentee's id (the tandem is tandem-<id>).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


async def call_update(mentee_id: str, call: Callable[[TandemClient], Awaitable[T]]) -> T:
    """Run one update; a refusal or an unknown tandem becomes a CommandError (one line)."""
    tandems = TandemClient(await connect_temporal(), get_settings().task_queue)
    try:
        return await call(tandems)
    except TandemRefused as err:
        raise CommandError(f"refused: {err.message}") from None
    except TandemNotFound:
        raise CommandError(f"no running tandem for mentee {mentee_id}") from None


def _report(result: Any, as_json: bool) -> None:
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        console.print(f"{result.status.value}" + (f": {result.message}" if result.message else ""))


def advance(
    mentee_id: MenteeId,
    to: Annotated[str, typer.Option("--to", help="The phase to move to.")],
    as_json: JsonFlag = False,
) -> None:
    """Move a tandem to another phase (both are mailed; cadence follows the phase)."""
    result = run(call_update(mentee_id, lambda t: t.advance(mentee_id, to)))
    _report(result, as_json)


def pause(
    mentee_id: MenteeId,
    until: Annotated[
        datetime | None,
        typer.Option(help="Resume automatically on this date (YYYY-MM-DD).", formats=["%Y-%m-%d"]),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Pause check-ins (parental leave, semester abroad), until a date or until `resume`."""
    until_utc = datetime.combine(until.date(), time(), UTC) if until else None
    request = PauseRequest(until=until_utc)
    result = run(call_update(mentee_id, lambda t: t.pause(mentee_id, request)))
    _report(result, as_json)


def resume(mentee_id: MenteeId, as_json: JsonFlag = False) -> None:
    """Resume check-ins of a paused tandem."""
    result = run(call_update(mentee_id, lambda t: t.resume(mentee_id)))
    _report(result, as_json)


def retry(mentee_id: MenteeId, as_json: JsonFlag = False) -> None:
    """Carry out what failed for good (once its cause is fixed) and resend refused mails."""
    result = run(call_update(mentee_id, lambda t: t.retry(mentee_id)))
    _report(result, as_json)


def end(
    mentee_id: MenteeId,
    reason: Annotated[
        str, typer.Option("--reason", help="A short code, e.g. moved_away (kept in history).")
    ],
    as_json: JsonFlag = False,
) -> None:
    """End a tandem for both sides; the mentor's seat is released."""
    try:
        request = EndRequest(reason=reason)
    except ValueError:
        fail("--reason must be a short code of a-z, 0-9, _ or - (no names or prose)")
    result = run(call_update(mentee_id, lambda t: t.end(mentee_id, request.reason)))
    _report(result, as_json)


def rematch(mentee_id: MenteeId, as_json: JsonFlag = False) -> None:
    """Release the current mentor (excluded from now on) and look for a new one."""
    result = run(call_update(mentee_id, lambda t: t.rematch(mentee_id)))
    _report(result, as_json)


def approve(mentee_id: MenteeId, as_json: JsonFlag = False) -> None:
    """Approve the proposed match (programme approval: coordinator): both are introduced."""
    result = run(call_update(mentee_id, lambda t: t.decide_proposal(mentee_id, approve=True)))
    _report(result, as_json)


def reject(mentee_id: MenteeId, as_json: JsonFlag = False) -> None:
    """Reject the proposed match: that mentor is left out and the next proposal follows."""
    result = run(call_update(mentee_id, lambda t: t.decide_proposal(mentee_id, approve=False)))
    _report(result, as_json)


def cadence(
    mentee_id: MenteeId,
    every: Annotated[float, typer.Option("--every", help="Days between check-ins.", min=1)],
    as_json: JsonFlag = False,
) -> None:
    """Set the pair's own check-in rhythm."""
    result = run(call_update(mentee_id, lambda t: t.cadence(mentee_id, every)))
    _report(result, as_json)


def answer(
    mentee_id: MenteeId,
    intent: Annotated[Intent, typer.Argument(help="The answer given by phone or in person.")],
    as_: Annotated[Role, typer.Option("--as", help="Who answered: mentor or mentee.")],
    met_on: Annotated[
        datetime | None,
        typer.Option("--date", help="With met: the day of the meeting.", formats=["%Y-%m-%d"]),
    ] = None,
    weeks: Annotated[int | None, typer.Option(help="With snooze: weeks to wait.")] = None,
    rating: Annotated[
        int | None,
        typer.Option(min=1, max=5, help="With met: an anonymous 1-5 rating (aggregate only)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Record an answer the programme office took by phone (same rules as a reply mail)."""
    if as_ is Role.COORDINATOR:
        fail("--as must be mentor or mentee")
    if rating is not None and intent is not Intent.MET:
        fail("--rating goes with met only")
    try:
        details = AnswerDetails(met_on=met_on.date() if met_on else None, snooze_weeks=weeks)
    except ValueError:
        fail("--weeks must be a whole number from 1 to 52")
    today = datetime.now(UTC).date()
    given, result = run(
        call_update(mentee_id, lambda t: t.office_answer(mentee_id, as_, intent, details, today))
    )
    if rating is not None and not result.duplicate:
        run(_rate(mentee_id, given.answer_id, rating))
    _report(result, as_json)


async def _rate(mentee_id: str, answer_id: str, rating: int) -> None:
    """The rating goes straight into the programme's aggregate, never into the tandem."""
    conn = await asyncpg.connect(database_url())
    try:
        mentee = await get_mentee(conn, mentee_id)
        if mentee is not None:
            await record_rating(conn, mentee.program, answer_id, rating)
    finally:
        await conn.close()
