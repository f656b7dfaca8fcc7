"""Each branch of the lifecycle on the time-skipping server, with real activities.

The scripts play mentor, mentee and office; they end the tandem when the branch is shown,
so the workflow completes and the test can look at what happened."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from starter.mailsink import MailSink
from tandem.answers import Intent, RequestKind, request_id
from tandem.messages import (
    AdvanceRequest,
    CadenceRequest,
    EndRequest,
    MailRequest,
    PauseRequest,
    RematchRequest,
)
from tandem.models import Role, TandemStatus
from tandem.settings import Settings
from tests.support import (
    Tandem,
    events,
    mails_in_order,
    mails_with_template,
    mentor,
    run_tandem,
    uid,
)
from workflows.tandem import TandemWorkflow

MENTEE, MENTOR, OFFICE = Role.MENTEE, Role.MENTOR, None
DAY = timedelta(days=1)


async def end(tandem: Tandem) -> None:
    await tandem.update(TandemWorkflow.end, EndRequest(reason="test_over"))


def both_continue(mail: MailRequest) -> bool:
    return mail.template == "decision_request"


async def test_one_declines_so_the_mentee_is_rematched_and_that_mentor_excluded(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s, near, far = uid("S"), uid("M-near"), uid("M-far")

    async def script(mail: MailRequest, t: Tandem) -> None:
        if mail.template == "decision_request":
            declines = mail.to is MENTOR and mail.mentor_id == near
            await t.answer(
                mail.to, Intent.DECLINE if declines else Intent.CONTINUE, mail.request_id
            )
        elif mail.template == "nudge" and mail.to is MENTEE:
            await end(t)

    mentors = [mentor(near), mentor(far, region="Südkreis", capacity=1)]
    final, _ = await run_tandem(
        ts_env,
        db,
        settings,
        script,
        mentors=mentors,
        mentee_id=s,
        record_as="decline-rematch",
    )

    assert final.excluded_mentor_ids == [near] and final.mentor_id == far
    assert final.rematches == 1 and final.status is TandemStatus.ENDED
    kinds = await events(db, s)
    assert kinds.index("rematching") < kinds.index("activated")
    mails = await mails_in_order(db, sink)
    declined_to = [to for to, t in mails if t == "decision_declined"]
    assert sorted(declined_to) == sorted([mentor(near).email, f"{s.lower()}@studium.example.org"])
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM seats") == 0


async def test_after_max_rematches_the_coordinator_takes_over(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s = uid("S")
    mentors = [mentor(uid(f"M{i}")) for i in range(4)]

    async def script(mail: MailRequest, t: Tandem) -> None:
        if mail.template == "decision_request" and mail.to is MENTOR:
            await t.answer(MENTOR, Intent.DECLINE, mail.request_id)
        elif mail.template == "needs_coordinator_coordinator":
            assert (await t.handle.query(TandemWorkflow.state)).status is (
                TandemStatus.NEEDS_COORDINATOR
            )
            await end(t)

    final, _ = await run_tandem(
        ts_env,
        db,
        settings,
        script,
        mentors=mentors,
        mentee_id=s,
        record_as="needs-coordinator",
    )
    assert final.rematches == 3  # max_rematches is 2: the third "no" goes to the office
    assert len(final.excluded_mentor_ids) == 3
    assert "needs_coordinator" in await events(db, s)
    mails = await mails_in_order(db, sink)
    assert [t for _, t in mails].count("needs_coordinator_coordinator") == 1


async def test_no_answer_brings_a_reminder_then_an_escalation(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")
    sent: list[tuple[str, str, datetime]] = []

    async def script(mail: MailRequest, t: Tandem) -> None:
        sent.append((mail.template, mail.to.value, await t.now()))
        if mail.template == "decision_escalation_coordinator":
            await end(t)

    await run_tandem(
        ts_env,
        db,
        settings,
        script,
        mentors=[mentor(m)],
        mentee_id=s,
        record_as="reminder-escalation",
    )
    asked = {who: at for template, who, at in sent if template == "decision_request"}
    reminded = {who: at for template, who, at in sent if template == "decision_reminder"}
    [escalated] = [at for template, _, at in sent if template == "decision_escalation_coordinator"]
    assert set(asked) == set(reminded) == {"mentee", "mentor"}
    assert abs((reminded["mentee"] - asked["mentee"]) - 7 * DAY) < DAY
    assert abs((escalated - asked["mentee"]) - 21 * DAY) < DAY
    intro = min(at for _, _, at in sent)
    assert abs((asked["mentee"] - intro) - 30 * DAY) < DAY  # the first-meeting window


async def test_undecided_is_asked_again_after_the_next_period(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")
    asked_mentee: list[datetime] = []

    async def script(mail: MailRequest, t: Tandem) -> None:
        if mail.template == "decision_request":
            if mail.to is MENTEE:
                asked_mentee.append(await t.now())
            first = mail.to is MENTEE and len(asked_mentee) == 1
            await t.answer(mail.to, Intent.UNDECIDED if first else Intent.CONTINUE, mail.request_id)
        elif mail.template == "nudge" and mail.to is MENTEE:
            await end(t)

    _final, _ = await run_tandem(
        ts_env, db, settings, script, mentors=[mentor(m)], mentee_id=s, record_as="undecided"
    )
    assert len(asked_mentee) == 2
    assert abs((asked_mentee[1] - asked_mentee[0]) - 91 * DAY) < DAY
    mails = await mails_in_order(db, sink)
    assert [t for to, t in mails if to == mentor(m).email].count("decision_request") == 1
    assert "activated" in await events(db, s)


async def test_snooze_moves_the_next_check_in(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")
    nudges: list[datetime] = []

    async def script(mail: MailRequest, t: Tandem) -> None:
        if both_continue(mail):
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "nudge" and mail.to is MENTEE:
            nudges.append(await t.now())
            if len(nudges) == 1:
                await t.answer(MENTEE, Intent.SNOOZE, mail.request_id, snooze_weeks=3)
            else:
                await end(t)

    await run_tandem(
        ts_env, db, settings, script, mentors=[mentor(m)], mentee_id=s, record_as="snooze"
    )
    assert abs((nudges[1] - nudges[0]) - 21 * DAY) < DAY
    assert "snoozed" in await events(db, s)


async def test_help_asks_the_office_to_get_in_touch_and_says_nothing_else(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")

    async def script(mail: MailRequest, t: Tandem) -> None:
        if both_continue(mail):
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "nudge" and mail.to is MENTEE:
            await t.answer(MENTEE, Intent.HELP, mail.request_id)
            await end(t)

    await run_tandem(
        ts_env, db, settings, script, mentors=[mentor(m)], mentee_id=s, record_as="help"
    )
    [help_mail] = await mails_with_template(db, sink, "help_coordinator")
    body = help_mail.get_content()
    assert s in body and "Beispiel" not in body and "@studium" not in body
    assert "help_mentee" in await events(db, s)


async def test_stop_ends_the_tandem_for_both_and_frees_the_seat(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")

    async def script(mail: MailRequest, t: Tandem) -> None:
        if both_continue(mail):
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "nudge" and mail.to is MENTOR:
            await t.answer(MENTOR, Intent.STOP, mail.request_id)

    final, _ = await run_tandem(
        ts_env,
        db,
        settings,
        script,
        mentors=[mentor(m)],
        mentee_id=s,
        record_as="stop",
    )
    assert final.status is TandemStatus.ENDED
    mails = await mails_in_order(db, sink)
    assert sorted(to for to, t in mails if t == "tandem_ended") == sorted(
        [mentor(m).email, f"{s.lower()}@studium.example.org"]
    )
    assert [t for _, t in mails].count("nudge") == 2  # one check-in, then nothing more
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM seats WHERE mentor_id = $1", m) == 0
    assert (await events(db, s))[-1] == "stopped_by_mentor"


async def test_two_missed_periods_alert_the_coordinator_once_per_episode(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")
    n = 0

    async def script(mail: MailRequest, t: Tandem) -> None:
        nonlocal n
        if both_continue(mail):
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "nudge" and mail.to is MENTEE:
            n += 1
            if n == 5:  # they finally meet: the episode is over
                await t.answer(MENTEE, Intent.MET, mail.request_id)
            if n == 9:
                await end(t)
        elif mail.template == "at_risk_coordinator":
            state = await t.handle.query(TandemWorkflow.state)
            assert state.at_risk and state.missed_periods == 2
            alerts.append(n)

    alerts: list[int] = []
    await run_tandem(
        ts_env,
        db,
        settings,
        script,
        mentors=[mentor(m)],
        mentee_id=s,
        record_as="at-risk",
    )
    assert alerts == [2, 8]


async def test_pause_without_date_until_the_office_resumes(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")
    log: list[tuple[str, datetime]] = []

    async def script(mail: MailRequest, t: Tandem) -> None:
        if mail.to is MENTEE:
            log.append((mail.template, await t.now()))
        if both_continue(mail):
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "tandem_confirmed" and mail.to is MENTEE:
            await t.update(TandemWorkflow.pause, PauseRequest())
        elif mail.template == "paused" and mail.to is MENTEE:
            await t.update(TandemWorkflow.pause, PauseRequest())
            state = await t.handle.query(TandemWorkflow.state)
            assert state.status is TandemStatus.PAUSED and state.next_nudge_at is None
            await t.update(TandemWorkflow.resume)
        elif mail.template == "nudge" and mail.to is MENTEE:
            await end(t)

    _, tandem = await run_tandem(
        ts_env, db, settings, script, mentors=[mentor(m)], mentee_id=s, record_as="pause-resume"
    )
    templates = [t for t, _ in log]
    assert templates[2:6] == ["tandem_confirmed", "paused", "resumed", "nudge"]
    assert tandem.refusals == ["only an active tandem can be paused (it is paused)"]


async def test_shadowing_request_and_the_mentors_yes(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, sink: MailSink, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")

    async def script(mail: MailRequest, t: Tandem) -> None:
        if both_continue(mail):
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "nudge" and mail.to is MENTEE:
            await t.answer(MENTEE, Intent.SHADOWING, mail.request_id)
        elif mail.template == "shadowing_request":
            await t.answer(MENTOR, Intent.CONTINUE, mail.request_id)
        elif mail.template == "shadowing_answer":
            assert mail.facts == {"accepted": "yes"}
            await end(t)

    await run_tandem(
        ts_env,
        db,
        settings,
        script,
        mentors=[mentor(m)],
        mentee_id=s,
        record_as="shadowing",
    )
    mails = await mails_in_order(db, sink)
    assert (mentor(m).email, "shadowing_request") in mails
    assert (f"{s.lower()}@studium.example.org", "shadowing_answer") in mails


async def test_the_validator_refuses_what_the_state_does_not_allow(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")
    nudge_requests: list[str] = []

    async def script(mail: MailRequest, t: Tandem) -> None:
        if mail.template == "decision_request" and mail.to is MENTOR:
            await t.answer(MENTEE, Intent.CONTINUE, mail.request_id)
            await t.answer(MENTEE, Intent.DECLINE, mail.request_id)  # changes its mind: no
            await t.answer(MENTOR, Intent.CONTINUE, mail.request_id)
        elif mail.template == "nudge" and mail.to is MENTEE:
            assert mail.request_id is not None
            nudge_requests.append(mail.request_id)
            if len(nudge_requests) == 1:
                await t.answer(MENTEE, Intent.CONTINUE, None)  # no decision asked any more
                await t.answer(MENTOR, Intent.PHASE_DONE, None)  # only the mentee
                await t.answer(MENTEE, Intent.PHASE_DONE, mail.request_id)  # wrong request
                await t.answer(MENTOR, Intent.SHADOWING, mail.request_id)  # only the mentee
                await t.answer(MENTEE, Intent.MET, "nudge:99")  # never asked
            if len(nudge_requests) == 3:
                await t.answer(MENTEE, Intent.SNOOZE, nudge_requests[0])  # closed by now
                for bad in (
                    (TandemWorkflow.advance, AdvanceRequest(phase="retirement")),
                    (TandemWorkflow.advance, AdvanceRequest(phase="study")),
                ):
                    await t.update(bad[0], bad[1])
                await end(t)

    final, tandem = await run_tandem(ts_env, db, settings, script, mentors=[mentor(m)], mentee_id=s)
    assert tandem.refusals == [
        "the mentee already answered 'continue'",
        "no decision is asked now",
        "only the mentee confirms a new phase",
        "'phase_done' is not an answer to this request",
        "only the mentee of a running tandem can ask for shadowing",
        "this request is closed",
        "this request is closed",
        "programme stipendium-hausarzt has no phase 'retirement' (study, residency, employment)",
        "the tandem is already in phase study",
    ]
    assert final.status is TandemStatus.ENDED
    # An ended tandem's workflow is closed: nothing can answer it any more.
    with pytest.raises(RPCError):
        await tandem.answer(MENTEE, Intent.MET, None)


async def test_the_same_answer_twice_is_taken_once(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")

    async def script(mail: MailRequest, t: Tandem) -> None:
        if both_continue(mail):
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "nudge" and mail.to is MENTEE:
            for _ in range(2):
                await t.answer(MENTEE, Intent.MET, mail.request_id, answer_id="reply-1")
            await end(t)

    _final, tandem = await run_tandem(
        ts_env, db, settings, script, mentors=[mentor(m)], mentee_id=s
    )
    # The server sees the same update id: the second call gets the first one's result.
    assert [r.message for r in tandem.results].count("contact recorded") == 2
    assert (await events(db, s)).count("contact") == 1
    assert (await events(db, s)).count("contact") == 1


async def test_cadence_and_operator_rematch(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, settings: Settings
) -> None:
    s, first, second = uid("S"), uid("M-a"), uid("M-b")
    nudges: list[tuple[str | None, datetime]] = []

    async def script(mail: MailRequest, t: Tandem) -> None:
        if both_continue(mail):
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "nudge" and mail.to is MENTEE:
            nudges.append((mail.mentor_id, await t.now()))
            if len(nudges) == 1:
                await t.update(TandemWorkflow.cadence, CadenceRequest(days=30))
            elif len(nudges) == 2:
                await t.update(TandemWorkflow.rematch, RematchRequest())
            else:
                await end(t)

    mentors = [mentor(first), mentor(second, region="Südkreis")]
    final, _ = await run_tandem(
        ts_env,
        db,
        settings,
        script,
        mentors=mentors,
        mentee_id=s,
        record_as="cadence-rematch",
    )
    assert abs((nudges[1][1] - nudges[0][1]) - 30 * DAY) < DAY
    assert [who for who, _ in nudges] == [first, first, second]
    assert final.excluded_mentor_ids == [first]


async def test_help_and_stop_work_as_replies_to_a_mail_that_asks_nothing(
    ts_env: WorkflowEnvironment, db: asyncpg.Pool, settings: Settings
) -> None:
    s, m = uid("S"), uid("M")

    async def script(mail: MailRequest, t: Tandem) -> None:
        if both_continue(mail):
            await t.answer(mail.to, Intent.CONTINUE, mail.request_id)
        elif mail.template == "tandem_confirmed" and mail.to is MENTEE:
            info = request_id(RequestKind.INFO, mail.idempotency_key)
            await t.answer(MENTEE, Intent.SNOOZE, info)  # asks nothing: only met/help/stop
            await t.answer(MENTEE, Intent.STOP, info)

    final, tandem = await run_tandem(ts_env, db, settings, script, mentors=[mentor(m)], mentee_id=s)
    assert final.status is TandemStatus.ENDED
    assert tandem.refusals == ["'snooze' is not an answer to this request"]
    assert (await events(db, s))[-1] == "stopped_by_mentee"
