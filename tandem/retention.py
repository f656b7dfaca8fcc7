"""How long Tandem keeps what it keeps: the retention periods and the cut-offs they give.

A sweep (``workflows/retention.py``, run daily by a Temporal Schedule) removes what is past
its period: the text and address of a mail N days after it was sent (the outbox
row keeps its key, Message-ID and dates, so a retried send still finds it done), and the
gateway's verdicts on replies after M days, and the mentee of a tandem closed longer ago
than its programme's ``closed_tandem_retention`` (erased as ``tandem forget`` does: their
row, addresses and mail texts go, their id becomes a pseudonym in the counts). Mails not sent
(yet, or refused) are never touched: they still have to go out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from tandem.settings import Settings


class RetentionPolicy(BaseModel):
    #: Days a sent mail keeps its subject, body and address.
    mail_body_days: int = Field(default=90, ge=1)
    #: Days the gateway's verdict on a reply (when, what was decided, why) is kept.
    reply_verdict_days: int = Field(default=365, ge=1)

    def mail_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.mail_body_days)

    def verdict_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.reply_verdict_days)


def retention_policy(settings: Settings) -> RetentionPolicy:
    """The periods this installation keeps things for (``TANDEM_RETENTION_*``)."""
    return RetentionPolicy(
        mail_body_days=settings.retention_mail_body_days,
        reply_verdict_days=settings.retention_reply_verdict_days,
    )


class SweepResult(BaseModel):
    """What a sweep removed (or, as a dry run, would remove): counts only."""

    dry_run: bool
    mail_bodies: int = 0
    reply_verdicts: int = 0
    #: Mentees of tandems closed longer than their programme keeps them, erased.
    closed_tandems: int = 0
