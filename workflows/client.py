"""The one client of ``TandemWorkflow``: start, answer, operator updates, state, list, wake.

The CLI, the reply gateway and the tests all go through here, so ids, update ids and the
mapping of Temporal's errors to ours are written once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from tandem.answers import (
    Answer,
    AnswerDetails,
    AnswerResult,
    Intent,
    RequestKind,
    request_id,
)
from tandem.lifecycle.answer_rules import office_request
from tandem.lifecycle.events import TandemInput
from tandem.lifecycle.rules import Rules
from tandem.messages import (
    AdvanceRequest,
    CadenceRequest,
    EndRequest,
    ForgetRequest,
    OperatorResult,
    PauseRequest,
    RematchRequest,
)
from tandem.models import Mentee, Role, TandemState, TandemStatus
from tandem.programs import Program
from workflows import search_attributes as sa
from workflows.ids import mentee_id_of, workflow_id
from workflows.tandem import TandemWorkflow

__all__ = [
    "EnrolOutcome",
    "TandemClient",
    "TandemNeedsAttention",
    "TandemNotFound",
    "TandemRefused",
    "mentee_id_of",
    "workflow_id",
]


#: An update is tried on this many runs at most (a run may continue as new meanwhile).
UPDATE_TRIES_ACROSS_RUNS = 3


class TandemRefused(Exception):
    """The workflow's rules said no; ``message`` says why (ids and status only)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TandemNeedsAttention(TandemRefused):
    """Refused for now: the tandem waits for ``tandem retry`` (an answer can wait too)."""


class TandemNotFound(Exception):
    """No running tandem for this mentee."""


@dataclass
class EnrolOutcome:
    mentee_id: str
    started: bool
    status: str
    enrolment: int = 1


def initial_state(mentee: Mentee, rules: Rules, enrolment: int = 1) -> TandemState:
    return TandemState(
        mentee_id=mentee.id,
        program=mentee.program,
        phase=mentee.phase,
        cadence_days=rules.cadence(mentee.phase) / timedelta(days=1),
        expected_phase_end=mentee.expected_phase_end,
        enrolment=enrolment,
    )


class TandemClient:
    def __init__(self, client: Client, task_queue: str | None = None) -> None:
        """``task_queue`` is needed to start tandems only; updates and queries go by id."""
        self.client = client
        self.task_queue = task_queue

    def handle(self, mentee_id: str) -> WorkflowHandle[TandemWorkflow, TandemState]:
        return self.client.get_workflow_handle_for(TandemWorkflow.run, workflow_id(mentee_id))

    # -- start ----------------------------------------------------------------------------

    async def start(
        self, mentee: Mentee, program: Program, *, enrolment: int = 1
    ) -> WorkflowHandle[TandemWorkflow, TandemState]:
        """Start the mentee's tandem; ``WorkflowAlreadyStartedError`` if one runs (or, for
        the first enrolment, ever ran: a closed one is started again by ``enrol``)."""
        if self.task_queue is None:
            raise ValueError("a TandemClient without a task queue cannot start tandems")
        rules = Rules.of(program)
        state = initial_state(mentee, rules, enrolment)
        policy = (
            WorkflowIDReusePolicy.REJECT_DUPLICATE
            if enrolment == 1
            else WorkflowIDReusePolicy.ALLOW_DUPLICATE
        )
        return await self.client.start_workflow(
            TandemWorkflow.run,
            TandemInput(rules=rules, state=state),
            id=workflow_id(mentee.id),
            task_queue=self.task_queue,
            id_reuse_policy=policy,
            search_attributes=sa.initial(state),
            static_summary=f"Tandem of mentee {mentee.id} ({mentee.program})",
        )

    async def enrol(self, mentee: Mentee, program: Program, *, again: bool) -> EnrolOutcome:
        """Start a tandem. One that runs is left alone; one that ended or completed is
        followed by a new one when ``again`` (a returning mentee), its history kept."""
        try:
            await self.start(mentee, program)
            return EnrolOutcome(mentee.id, True, TandemStatus.MATCHING.value)
        except WorkflowAlreadyStartedError:
            pass
        desc = await self.handle(mentee.id).describe()
        status = _status(desc)
        if desc.status is WorkflowExecutionStatus.RUNNING or not again:
            return EnrolOutcome(mentee.id, False, status)
        enrolment = await self._last_enrolment(mentee.id, desc) + 1
        try:
            await self.start(mentee, program, enrolment=enrolment)
        except WorkflowAlreadyStartedError:  # someone else just did
            return EnrolOutcome(mentee.id, False, TandemStatus.MATCHING.value)
        return EnrolOutcome(mentee.id, True, TandemStatus.MATCHING.value, enrolment)

    async def _last_enrolment(self, mentee_id: str, desc: WorkflowExecutionDescription) -> int:
        if desc.status is WorkflowExecutionStatus.COMPLETED:
            result = await self.handle(mentee_id).result()
            return result.enrolment
        # Terminated or failed: no state to read; a number no earlier enrolment can have.
        return int(desc.start_time.timestamp())

    # -- answers and operator commands ----------------------------------------------------

    async def answer(
        self,
        mentee_id: str,
        answer: Answer,
        *,
        on_accepted: Callable[[], None] | None = None,
    ) -> AnswerResult:
        """The ``answer`` update; its id is the answer's, so a retry is dropped by the server
        (and, after a continue-as-new, by the workflow's own list of answer ids).
        ``on_accepted`` runs once the workflow's validator accepted it."""
        update_id = f"answer-{answer.answer_id}"
        try:
            if on_accepted is None:
                result: AnswerResult = await self._update(
                    mentee_id, TandemWorkflow.answer, answer, update_id=update_id
                )
                return result
            with _mapped_errors(mentee_id):
                handle = await self.handle(mentee_id).start_update(
                    TandemWorkflow.answer,
                    answer,
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                    id=update_id,
                )
                on_accepted()
                return await handle.result()
        except TandemNotFound:
            # The run took the answer and then closed (completed, continued as new) before
            # its result came back: the tandem's state says whether it was taken.
            taken = await self._taken(mentee_id, answer.answer_id)
            if taken is None:
                raise
            return taken

    async def _taken(self, mentee_id: str, answer_id: str) -> AnswerResult | None:
        try:
            state = await self.state(mentee_id)
        except Exception:  # no such tandem, or nobody to answer the query: not known taken
            return None
        if answer_id not in state.answer_ids:
            return None
        return AnswerResult(duplicate=True, status=state.status, message="already taken")

    async def office_answer(
        self, mentee_id: str, role: Role, intent: Intent, details: AnswerDetails, today: date
    ) -> tuple[Answer, AnswerResult]:
        """An answer the office took by phone. It names the request it answers (resolved from
        the state now); its id is derived from what was said and the day, so the same command
        run twice (after a timeout, say) is one answer, even after the tandem moved on."""
        state = await self.state(mentee_id)
        rid = office_request(state, role, intent)
        basis: dict[str, Any] = {
            "tandem": [mentee_id, state.enrolment],
            "role": role.value,
            "intent": intent.value,
            "details": details.model_dump(mode="json"),
            "day": today.isoformat(),
        }
        digest = hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:32]
        answer = Answer(
            role=role,
            request_id=rid,
            intent=intent,
            details=details,
            answer_id=f"office-{digest}",
        )
        return answer, await self.answer(mentee_id, answer)

    async def decide_proposal(self, mentee_id: str, approve: bool) -> AnswerResult:
        """``tandem approve`` / ``tandem reject``: the coordinator's answer to the proposal
        waiting now; its id is the proposal's, so a retried command is one answer."""
        state = await self.state(mentee_id)
        rid = request_id(RequestKind.PROPOSAL, state.rematches)
        word = "approve" if approve else "reject"
        answer = Answer(
            role=Role.COORDINATOR,
            request_id=rid,
            intent=Intent.CONTINUE if approve else Intent.DECLINE,
            answer_id=f"office-{word}-{state.enrolment}-{rid}",
        )
        return await self.answer(mentee_id, answer)

    async def advance(self, mentee_id: str, phase: str) -> OperatorResult:
        result: OperatorResult = await self._update(
            mentee_id, TandemWorkflow.advance, AdvanceRequest(phase=phase)
        )
        return result

    async def pause(self, mentee_id: str, request: PauseRequest) -> OperatorResult:
        result: OperatorResult = await self._update(mentee_id, TandemWorkflow.pause, request)
        return result

    async def resume(self, mentee_id: str) -> OperatorResult:
        result: OperatorResult = await self._update(mentee_id, TandemWorkflow.resume)
        return result

    async def retry(self, mentee_id: str) -> OperatorResult:
        result: OperatorResult = await self._update(mentee_id, TandemWorkflow.retry)
        return result

    async def end(self, mentee_id: str, reason: str) -> OperatorResult:
        result: OperatorResult = await self._update(
            mentee_id, TandemWorkflow.end, EndRequest(reason=reason)
        )
        return result

    async def rematch(self, mentee_id: str) -> OperatorResult:
        """Rematch the pair the office sees now: a retry after a timeout cannot do it twice."""
        state = await self.state(mentee_id)
        request = RematchRequest(expected_rematches=state.rematches)
        result: OperatorResult = await self._update(
            mentee_id,
            TandemWorkflow.rematch,
            request,
            update_id=f"rematch-{state.enrolment}-{state.rematches}",
        )
        return result

    async def forget(self, mentee_id: str, person_id: str) -> OperatorResult:
        """Take ``person_id`` (this tandem's mentee or a mentor) out of the running tandem."""
        digest = hashlib.sha256(person_id.encode()).hexdigest()[:16]
        result: OperatorResult = await self._update(
            mentee_id,
            TandemWorkflow.forget,
            ForgetRequest(person_id=person_id),
            update_id=f"forget-{digest}",
        )
        return result

    async def cadence(self, mentee_id: str, days: float) -> OperatorResult:
        result: OperatorResult = await self._update(
            mentee_id, TandemWorkflow.cadence, CadenceRequest(days=days)
        )
        return result

    async def _update(
        self, mentee_id: str, update: Any, arg: Any = None, *, update_id: str | None = None
    ) -> Any:
        args = [] if arg is None else [arg]
        for _ in range(UPDATE_TRIES_ACROSS_RUNS):
            try:
                with _mapped_errors(mentee_id):
                    return await self.handle(mentee_id).execute_update(
                        update, args=args, id=update_id
                    )
            except TandemNotFound:
                # An update that meets a run just continuing as new is told "not found";
                # the tandem's next run takes it (the update id makes the retry harmless).
                if not await self._runs(mentee_id):
                    raise
        raise TandemNotFound(mentee_id)

    async def _runs(self, mentee_id: str) -> bool:
        try:
            desc = await self.handle(mentee_id).describe()
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return False
            raise
        return desc.status is WorkflowExecutionStatus.RUNNING

    # -- looking -------------------------------------------------------------------------

    async def state(self, mentee_id: str) -> TandemState:
        try:
            return await self.handle(mentee_id).query(
                TandemWorkflow.state, rpc_timeout=timedelta(seconds=10)
            )
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise TandemNotFound(mentee_id) from None
            raise

    async def status(self, mentee_id: str) -> str:
        """The tandem's status from its search attributes (works without a worker)."""
        return _status(await self.handle(mentee_id).describe())

    async def list(self, query: str, limit: int = 1000) -> AsyncIterator[dict[str, Any]]:
        async for wf in self.client.list_workflows(query, limit=limit):
            attrs = wf.typed_search_attributes
            yield {
                "mentee_id": mentee_id_of(wf.id),
                "status": attrs.get(sa.TANDEM_STATUS),
                "phase": attrs.get(sa.TANDEM_PHASE),
                "program": attrs.get(sa.TANDEM_PROGRAM),
                "mentor_id": attrs.get(sa.MENTOR_ID),
                "next_nudge_at": attrs.get(sa.NEXT_NUDGE_AT),
            }

    async def wake(self, mentee_id: str) -> bool:
        """Tell a waiting tandem that mentors changed; False if it does not run."""
        try:
            await self.handle(mentee_id).signal(TandemWorkflow.mentors_changed)
            return True
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                raise
            return False


@contextlib.contextmanager
def _mapped_errors(mentee_id: str) -> Iterator[None]:
    """Temporal's errors as ours: a refusal by the rules, or no such (running) tandem."""
    try:
        yield
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        message = str(getattr(cause, "message", None) or cause)
        if getattr(cause, "type", None) == "NeedsAttention":
            raise TandemNeedsAttention(message) from None
        raise TandemRefused(message) from None
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            raise TandemNotFound(mentee_id) from None
        raise


def _status(desc: WorkflowExecutionDescription) -> str:
    status = desc.typed_search_attributes.get(sa.TANDEM_STATUS)
    if desc.status not in (None, WorkflowExecutionStatus.RUNNING) and status is None:
        return desc.status.name.lower()
    return status or "unknown"
