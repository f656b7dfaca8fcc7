"""The real ``Answerer``: the tandem workflow's ``answer`` update over Temporal.

A validator's refusal arrives as ``WorkflowUpdateFailedError`` and an unknown (or finished)
workflow as ``RPCError(NOT_FOUND)``: both final. Everything else (no worker yet, Temporal
away, a timeout) is transient: the durable inbox tries again later, and the update is
idempotent on ``answer_id``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from replies.pipeline import AnswerRefused, TandemGone
from tandem.answers import Answer, AnswerResult

#: The update's name and the workflow id scheme (see workflows/tandem.py).
UPDATE_NAME = "answer"


def workflow_id(mentee_id: str) -> str:
    return f"tandem-{mentee_id}"


class TemporalAnswerer:
    def __init__(self, client: Client, *, timeout: float = 30.0) -> None:
        self._client = client
        self._timeout = timeout

    async def answer(self, mentee_id: str, answer: Answer) -> AnswerResult:
        handle = self._client.get_workflow_handle(workflow_id(mentee_id))
        try:
            return await asyncio.wait_for(
                handle.execute_update(
                    UPDATE_NAME,
                    answer,
                    result_type=AnswerResult,
                    rpc_timeout=timedelta(seconds=self._timeout),
                ),
                timeout=self._timeout,
            )
        except WorkflowUpdateFailedError as err:
            raise AnswerRefused(_reason(err)) from None
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise TandemGone() from None
            raise


def _reason(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    return str(getattr(cause, "message", "") or cause or "refused")[:200]
