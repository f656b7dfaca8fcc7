"""Every activity error leaves the worker without personal data.

Whatever an activity raises becomes the failure Temporal stores (history, the UI's "last
failure") and the worker logs. Our own errors are written without names or addresses; all
others are reduced here to their type and a code, with no message and no chained cause,
because a library's text can repeat what it was given (pydantic's ``input_value``, a
relay's "<anna@example.org>: no such user", a database's key values).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from pydantic import ValidationError
from temporalio import exceptions
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)


class InvalidRecord(Exception):
    """A row on file does not validate; the message names the id and fields, not values."""


def validation_summary(err: ValidationError) -> str:
    """``email (value_error), phase (missing)``: where and what kind, never the input."""
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '-'} ({e['type']})" for e in err.errors()[:10]
    ]
    return ", ".join(parts)


def scrubbed(err: BaseException) -> ApplicationError:
    """``err`` as a failure that says only what kind of error it was."""
    if isinstance(err, ApplicationError):
        # Ours, with a clean message; drop any chained cause (it could be a library's text).
        return ApplicationError(
            err.message,
            type=err.type,
            non_retryable=err.non_retryable,
            next_retry_delay=err.next_retry_delay,
        )
    if isinstance(err, InvalidRecord):
        return ApplicationError(str(err), type="InvalidRecord", non_retryable=True)
    if isinstance(err, ValidationError):
        return ApplicationError(
            f"invalid {err.title}: {validation_summary(err)}",
            type="InvalidData",
            non_retryable=True,
        )
    kind = type(err).__name__
    if isinstance(err, asyncpg.PostgresError):
        return ApplicationError(f"database error {err.sqlstate} ({kind})", type=kind)
    if isinstance(err, OSError) and err.errno is not None:
        return ApplicationError(f"{kind} (errno {err.errno})", type=kind)
    return ApplicationError(kind, type=kind)


class ScrubFailures(Interceptor):
    """Worker interceptor: activity errors leave as ``scrubbed`` ones."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ScrubbingInbound(next)


class _ScrubbingInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except (asyncio.CancelledError, exceptions.CancelledError):
            raise
        except Exception as err:
            raise scrubbed(err) from None
