"""The search attributes the Temporal UI filters on. Ids and status only: they are plain text."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from tandem.models import TandemState

TANDEM_STATUS = SearchAttributeKey.for_keyword("TandemStatus")
TANDEM_PHASE = SearchAttributeKey.for_keyword("TandemPhase")
TANDEM_PROGRAM = SearchAttributeKey.for_keyword("TandemProgram")
MENTOR_ID = SearchAttributeKey.for_keyword("MentorId")
NEXT_NUDGE_AT = SearchAttributeKey.for_datetime("NextNudgeAt")
LAST_CONTACT_AT = SearchAttributeKey.for_datetime("LastContactAt")

ALL: tuple[SearchAttributeKey[Any], ...] = (
    TANDEM_STATUS,
    TANDEM_PHASE,
    TANDEM_PROGRAM,
    MENTOR_ID,
    NEXT_NUDGE_AT,
    LAST_CONTACT_AT,
)


#: What ``TandemStatus`` shows while an activity's final error waits for ``tandem retry``.
NEEDS_ATTENTION = "needs_attention"


def shown_status(state: TandemState) -> str:
    """The status the UI filters on: ``needs_attention`` wins over the lifecycle status."""
    return NEEDS_ATTENTION if state.attention is not None else state.status.value


def initial(state: TandemState) -> TypedSearchAttributes:
    """What a tandem shows in the UI from the moment it is enrolled."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(TANDEM_STATUS, state.status.value),
            SearchAttributePair(TANDEM_PHASE, state.phase),
            SearchAttributePair(TANDEM_PROGRAM, state.program),
        ]
    )


def updates(state: TandemState, current: TypedSearchAttributes) -> list[SearchAttributeUpdate[Any]]:
    """Only the attributes that differ from ``state``: each upsert is kept in history."""
    wanted: list[tuple[SearchAttributeKey[Any], str | datetime | None]] = [
        (TANDEM_STATUS, shown_status(state)),
        (TANDEM_PHASE, state.phase),
        (TANDEM_PROGRAM, state.program),
        (MENTOR_ID, state.mentor_id),
        (NEXT_NUDGE_AT, state.next_nudge_at),
        (LAST_CONTACT_AT, state.last_contact_at),
    ]
    result: list[SearchAttributeUpdate[Any]] = []
    for key, value in wanted:
        have = current.get(key)
        if value is None:
            if have is not None:
                result.append(key.value_unset())
        elif have != value:
            result.append(key.value_set(value))
    return result
