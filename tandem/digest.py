"""The coordinator's digest: what needs the office, tandem by tandem, with the command that
acts on it. Pure: the rows come from the database (``activities/digest.py``), the names are
filled in there too; this module only decides what is a line and when a digest is due.

Sections, in the order the mail shows them:
- proposed matches waiting for the office's "ok";
- waiting for a mentor (matching or no mentor free), since when;
- decisions still open after the escalation;
- tandems at risk (check-ins unanswered);
- phase checks nobody answered;
- tandems that need the office (an effect failed for good, or the pair asked for help);
- mails the relay refused (a wrong address).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tandem.models import FINAL_STATUSES, TandemStatus


class DigestFrequency(StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    OFF = "off"


class Section(StrEnum):
    PROPOSAL = "proposal"
    WAITING = "waiting"
    DECISION = "decision"
    AT_RISK = "at_risk"
    PHASE_CHECK = "phase_check"
    ATTENTION = "attention"
    FAILED_MAIL = "failed_mail"


SECTION_ORDER = list(Section)


def period_key(frequency: DigestFrequency, at: datetime) -> str | None:
    """The period a digest sent at ``at`` covers (its idempotency key), or None when none is
    due: weekly every week; monthly in the first week of the month only; off never."""
    if frequency is DigestFrequency.WEEKLY:
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    if frequency is DigestFrequency.MONTHLY and at.day <= 7:
        return f"{at.year}-{at.month:02d}"
    return None


@dataclass(frozen=True)
class TandemRow:
    mentee_id: str
    status: str
    phase: str
    mentor_id: str | None


@dataclass(frozen=True)
class EventRow:
    kind: str
    status: str
    at: datetime


@dataclass(frozen=True)
class FailedMailRow:
    mentee_id: str
    role: str
    person_id: str | None
    template: str
    failure: str | None
    failed_at: datetime


@dataclass(frozen=True)
class DigestLine:
    """One thing for the office: about which tandem (and person), since when, what to run."""

    section: Section
    mentee_id: str
    since: datetime | None
    command: str
    #: For a refused mail: to whom (role and id) and the code.
    detail: str = ""


_WAITING = {TandemStatus.MATCHING.value, TandemStatus.WAITING_FOR_MENTOR.value}
_DECIDING = {TandemStatus.INTRODUCED.value, TandemStatus.DECIDING.value}
_FINAL = {s.value for s in FINAL_STATUSES}


def _last(events: list[EventRow], *kinds: str) -> EventRow | None:
    for event in reversed(events):
        if event.kind in kinds:
            return event
    return None


def _after(event: EventRow | None, other: EventRow | None) -> bool:
    return event is not None and (other is None or event.at >= other.at)


def lines_for(tandem: TandemRow, events: list[EventRow]) -> list[DigestLine]:
    """The digest lines of one running tandem, from its events (oldest first)."""
    if tandem.status in _FINAL:
        return []
    m = tandem.mentee_id
    lines: list[DigestLine] = []
    if tandem.status == TandemStatus.PROPOSED.value:
        proposed = _last(events, "proposed")
        lines.append(
            DigestLine(
                Section.PROPOSAL,
                m,
                proposed.at if proposed else None,
                f"tandem approve {m} / tandem reject {m}",
            )
        )
    if tandem.status in _WAITING:
        since = None
        for event in reversed(events):
            if event.status not in _WAITING:
                break
            since = event.at
        lines.append(DigestLine(Section.WAITING, m, since, f"tandem status {m}"))
    if tandem.status in _DECIDING:
        escalated = _last(events, "decision_escalated")
        if _after(escalated, _last(events, "introduced")):
            assert escalated is not None
            lines.append(
                DigestLine(
                    Section.DECISION, m, escalated.at, f"tandem answer {m} … / tandem rematch {m}"
                )
            )
    if tandem.status == TandemStatus.ACTIVE.value:
        risk = _last(events, "at_risk")
        if _after(risk, _last(events, "contact", "activated")):
            assert risk is not None
            lines.append(DigestLine(Section.AT_RISK, m, risk.at, f"tandem status {m}"))
    unanswered = _last(events, "phase_check_unanswered")
    if unanswered is not None and events and events[-1].kind == "phase_check_unanswered":
        lines.append(DigestLine(Section.PHASE_CHECK, m, unanswered.at, f"tandem advance {m} PHASE"))
    attention = _last(events, "needs_attention", "needs_coordinator")
    if tandem.status == TandemStatus.NEEDS_COORDINATOR.value or _after(
        attention, _last(events, "retried")
    ):
        at = attention.at if attention is not None else None
        fix = f"tandem retry {m}" if attention and attention.kind == "needs_attention" else ""
        lines.append(
            DigestLine(Section.ATTENTION, m, at, fix or f"tandem status {m}  (help asked)")
        )
    return lines


def failed_mail_lines(rows: list[FailedMailRow]) -> list[DigestLine]:
    """A line per mail the relay refused that no resend has fixed yet."""
    return [
        DigestLine(
            Section.FAILED_MAIL,
            r.mentee_id,
            r.failed_at,
            f"tandem import … (correct the address), then tandem retry {r.mentee_id}",
            detail=f"{r.role} {r.person_id or ''} · {r.template} · {r.failure or 'refused'}",
        )
        for r in rows
    ]
