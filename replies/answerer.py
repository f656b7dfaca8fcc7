"""The real ``Answerer``: the tandem workflow's ``answer`` update over Temporal.

A refusal by the workflow's rules and an unknown (or finished) workflow are final. Everything
else (no worker yet, Temporal away, a timeout) is transient: the durable inbox tries again
later, and the update is idempotent on ``answer_id`` (it is also the update's id). So is a
tandem that needs attention: its answers wait in the inbox until the office's ``tandem retry``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio.client import Client

from replies.pipeline import AnswerRefused, TandemGone
from tandem.answers import Answer, AnswerResult
from workflows.client import (
    TandemClient,
    TandemNeedsAttention,
    TandemNotFound,
    TandemRefused,
)


class AnswerWaits(Exception):
    """The tandem needs attention: transient for the inbox (tried again with back-off)."""


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
        except TandemNeedsAttention:
            raise AnswerWaits() from None  # kept in the inbox, tried again after the fix
        except TandemRefused as err:
            raise AnswerRefused(err.message[:200]) from None
        except TandemNotFound:
            raise TandemGone() from None
