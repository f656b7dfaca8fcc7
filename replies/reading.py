"""How a reply mail is read: the one path the gateway and ``tandem reply read`` share.

Body (plain, else HTML reduced to what a reader sees), our marker, quotes and signature cut,
the subject when the body says nothing, then the grammar in ``tandem/reply_grammar.py``. The
result is an action: ``apply`` the answer, ``confirm`` (a destructive answer that was not
said plainly enough: we ask back instead of acting) or ``refuse`` (a help mail lists the
words the request allows). Pure and deterministic; nothing here keeps or logs the text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from enum import StrEnum
from typing import Any

from replies.screening import header
from replies.text import UndecodableBody, body_text, reply_text
from tandem.answers import AnswerDetails, Intent, RequestKind
from tandem.reply_grammar import Reading, read_reply


class Action(StrEnum):
    APPLY = "apply"
    CONFIRM = "confirm"
    REFUSE = "refuse"


@dataclass(frozen=True)
class MailReading:
    """What the gateway would do with a reply, and why (a short code, never the text)."""

    action: Action
    intent: Intent | None
    details: AnswerDetails = field(default_factory=AnswerDetails)
    reason: str = "understood"
    #: For ``refuse``: the intent read when the request does not allow it.
    found: Intent | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "intent": self.intent.value if self.intent else None,
            "details": self.details.model_dump(mode="json", exclude_none=True),
            "reason": self.reason,
        }


class UnreadableMail(ValueError):
    """The text cannot be decoded or read (the code says why); the mail is quarantined."""


def read_message(msg: EmailMessage, kind: RequestKind, received_at: datetime) -> MailReading:
    """The reading of one parsed mail answering a request of ``kind``."""
    try:
        text = reply_text(body_text(msg))
    except UndecodableBody:
        raise UnreadableMail("undecodable_body") from None
    try:
        reading = read_reply(
            text, kind, today=received_at.date(), subject=header(msg, "Subject")[:300]
        )
    except Exception as err:
        raise UnreadableMail(f"unreadable:{type(err).__name__}") from None
    return of_reading(reading)


def of_reading(reading: Reading) -> MailReading:
    if reading.intent is None:
        return MailReading(
            Action.REFUSE, None, reason=reading.problem or "not_understood", found=reading.found
        )
    if reading.unsure:
        return MailReading(
            Action.CONFIRM, reading.intent, reading.details, reason="needs_confirmation"
        )
    return MailReading(Action.APPLY, reading.intent, reading.details)
