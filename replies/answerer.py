"""The real ``Answerer``: the tandem workflow's ``answer`` update over Temporal.

A refusal by the workflow's rules and an unknown (or finished) workflow are final. Everything
else (no worker yet, Temporal away, a timeout) is transient: the durable inbox tries again
later, and the update is idempotent on ``answer_id`` (it is also the update's id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio.client import Client

from replies.pipeline import AnswerRefused, TandemGone
from tandem.answers import Answer, AnswerResult
from workflows.client import TandemClient, TandemNotFound, TandemRefused


class TemporalAnswerer:
    def __init__(
        self,
        client: Client,
        *,
        timeout: float = 30.0,
        on_accepted: Callable[[], None] | None = None,
    ) -> None:
        self._tandems = TandemClient(client)  # updates only
        self._timeout = timeout
        #: Runs when the workflow accepted an answer (tests wait for it, not for the result).
        self._on_accepted = on_accepted

    async def answer(self, mentee_id: str, answer: Answer) -> AnswerResult:
        try:
            return await asyncio.wait_for(
                self._tandems.answer(mentee_id, answer, on_accepted=self._on_accepted),
                timeout=self._timeout,
            )
        except TandemRefused as err:
            raise AnswerRefused(err.message[:200]) from None
        except TandemNotFound:
            raise TandemGone() from None
