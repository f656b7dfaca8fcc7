"""The programme office's report: aggregates of the event log, with small cells suppressed.

Pure: ``build_report`` takes plain rows (one per tandem, without any id: see
``activities/report.py``) and returns a ``Report``; rendering is the command's business. A
tandem is one enrolment of a mentee (a returning mentee's new tandem counts on its own).

Suppression, so that no person can be singled out: a count below ``THRESHOLD`` is shown as
``<5``; where a table publishes its total and only one of its cells is hidden, the next
smallest is hidden too (``≥5``), else that cell could be worked out by subtraction. A derived
figure (a rate, a median, a mean) is not shown when it rests on fewer than ``THRESHOLD``
tandems or would reveal a hidden count.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from tandem.models import FINAL_STATUSES, TandemStatus

THRESHOLD = 5
SMALL = f"<{THRESHOLD}"
#: A cell hidden only so that a ``<5`` cell of the same table cannot be worked out.
HIDDEN = f"≥{THRESHOLD}"
SUPPRESSED = "suppressed"

#: Event kinds (``tandem/lifecycle/machine.py``) the figures are made of.
ENROLLED = "enrolled"
INTRODUCED = "introduced"
ACTIVATED = "activated"
DECLINE_PREFIX = "decision_decline_"  # decision_decline_mentee / _mentor: a "no"
REMATCH_KINDS = frozenset({"rematching", "rematch_by_office"})
#: One check-in mail round: ``at_risk`` is recorded instead of ``nudged`` for the round that
#: flags the tandem (two periods in a row without contact).
CHECK_IN_KINDS = frozenset({"nudged", "at_risk"})
AT_RISK = "at_risk"
CONTACT = "contact"
#: What answers a check-in: "we met" (contact) or "ask me later".
ANSWER_KINDS = frozenset({CONTACT, "snoozed"})

#: Time to match, in days: each range includes its lower bound.
MATCH_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("under 1 day", 0.0, 1.0),
    ("1-7 days", 1.0, 7.0),
    ("7-30 days", 7.0, 30.0),
    ("30-90 days", 30.0, 90.0),
    ("90 days and more", 90.0, float("inf")),
)
_DAY = 86_400.0


# -- input ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TandemRow:
    """One tandem as the event log and projection hold it, without ids."""

    status: str
    phase: str
    enrolled_at: datetime | None
    #: (when, kind) of every event of the tandem, in the order recorded.
    events: Sequence[tuple[datetime, str]] = ()


@dataclass(frozen=True)
class RatingRow:
    """A programme's anonymous ratings: only how many and their sum are kept."""

    count: int
    total: int


@dataclass(frozen=True)
class MailRow:
    sent: int = 0
    refused: int = 0
    waiting: int = 0


# -- output -----------------------------------------------------------------------------


class Count(BaseModel):
    """A count as published: ``value`` is None when it is suppressed."""

    model_config = ConfigDict(frozen=True)

    value: int | None
    shown: str

    @classmethod
    def of(cls, n: int) -> Count:
        return cls(value=None, shown=SMALL) if n < THRESHOLD else cls(value=n, shown=str(n))

    @classmethod
    def hidden(cls) -> Count:
        return cls(value=None, shown=HIDDEN)


class Figure(BaseModel):
    """A derived figure (rate, median, mean); ``value`` is None when suppressed."""

    model_config = ConfigDict(frozen=True)

    value: float | None
    shown: str
    unit: str

    @classmethod
    def of(cls, value: float | None, unit: str) -> Figure:
        if value is None:
            return cls(value=None, shown=SUPPRESSED, unit=unit)
        rounded = round(value, 1)
        return cls(value=rounded, shown=f"{rounded:.1f}", unit=unit)


class Row(BaseModel):
    label: str
    count: Count


class Share(BaseModel):
    """``count`` of ``of`` tandems, and the rate in per cent."""

    count: Count
    of: Count
    rate: Figure


class TimeToMatch(BaseModel):
    #: Tandems introduced to a mentor (the basis of the figures below).
    matched: Count
    median_days: Figure
    p90_days: Figure
    distribution: list[Row]


class Decisions(BaseModel):
    #: Tandems with a "no" at a first-meeting decision, of those that reached a decision.
    declined: Share
    #: Tandems that got another mentor at least once, of those introduced to a mentor.
    rematched: Share


class QuarterRow(BaseModel):
    quarter: str
    sent: Count
    answered: Count
    rate: Figure


class CheckIns(BaseModel):
    quarters: list[QuarterRow]
    total: QuarterRow


class AtRisk(BaseModel):
    #: Tandems flagged at risk at least once.
    flagged: Count
    #: Open tandems flagged and without contact since.
    now: Count


class Ratings(BaseModel):
    count: Count
    mean: Figure


class Mails(BaseModel):
    sent: Count
    refused: Count
    waiting: Count


class Report(BaseModel):
    """Aggregates only: no id, name or address of anyone."""

    program: str | None
    since: date | None
    generated_at: datetime
    threshold: int
    tandems: Count
    completed: Count
    by_status: list[Row]
    by_phase: list[Row]
    time_to_match: TimeToMatch
    decisions: Decisions
    check_ins: CheckIns
    at_risk: AtRisk
    ratings: Ratings
    mails: Mails
    notes: list[str]

    def rows(self) -> list[tuple[str, str, str, str]]:
        """Every figure as (section, item, measure, shown): the flat form of CSV."""
        out: list[tuple[str, str, str, str]] = [
            ("report", "", "programme", self.program or "all"),
            ("report", "", "since", self.since.isoformat() if self.since else ""),
            ("report", "", "generated_at", self.generated_at.isoformat(timespec="seconds")),
            ("report", "", "threshold", str(self.threshold)),
            ("tandems", "", "total", self.tandems.shown),
            ("tandems", "", "completed", self.completed.shown),
        ]
        out += [("status", r.label, "tandems", r.count.shown) for r in self.by_status]
        out += [("phase", r.label, "tandems", r.count.shown) for r in self.by_phase]
        ttm = self.time_to_match
        out += [
            ("time_to_match", "", "matched", ttm.matched.shown),
            ("time_to_match", "", "median_days", ttm.median_days.shown),
            ("time_to_match", "", "p90_days", ttm.p90_days.shown),
        ]
        out += [("time_to_match", r.label, "tandems", r.count.shown) for r in ttm.distribution]
        for name, share in (
            ("declined", self.decisions.declined),
            ("rematched", self.decisions.rematched),
        ):
            out += [
                (name, "", "tandems", share.count.shown),
                (name, "", "of", share.of.shown),
                (name, "", "rate_percent", share.rate.shown),
            ]
        for q in [*self.check_ins.quarters, self.check_ins.total]:
            out += [
                ("check_ins", q.quarter, "sent", q.sent.shown),
                ("check_ins", q.quarter, "answered", q.answered.shown),
                ("check_ins", q.quarter, "rate_percent", q.rate.shown),
            ]
        out += [
            ("at_risk", "", "flagged", self.at_risk.flagged.shown),
            ("at_risk", "", "now", self.at_risk.now.shown),
            ("ratings", "", "count", self.ratings.count.shown),
            ("ratings", "", "mean", self.ratings.mean.shown),
            ("mails", "", "sent", self.mails.sent.shown),
            ("mails", "", "refused", self.mails.refused.shown),
            ("mails", "", "waiting", self.mails.waiting.shown),
        ]
        out += [("notes", str(i), "note", note) for i, note in enumerate(self.notes, 1)]
        return out


# -- suppression ------------------------------------------------------------------------


def suppressed_group(values: Sequence[int]) -> list[Count]:
    """The cells of a table whose total is published: if exactly one cell is below the
    threshold, the smallest other cell is hidden as well (secondary suppression)."""
    cells = [Count.of(v) for v in values]
    small = [i for i, v in enumerate(values) if v < THRESHOLD]
    if len(small) == 1 and len(values) > 1:
        j = min((i for i in range(len(values)) if i != small[0]), key=lambda i: values[i])
        cells[j] = Count.hidden()
    return cells


def share(count: Count, of: Count) -> Figure:
    """``count`` of ``of`` in per cent; suppressed if either count is."""
    if count.value is None or of.value is None or of.value == 0:
        return Figure.of(None, "%")
    return Figure.of(100.0 * count.value / of.value, "%")


# -- aggregation ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tandem:
    """What one tandem contributes, worked out once from its events."""

    days_to_match: float | None
    decided: bool
    declined: bool
    introduced: bool
    rematched: bool
    flagged: bool
    at_risk_now: bool
    #: (quarter, answered) of each check-in.
    check_ins: tuple[tuple[str, bool], ...]

    @classmethod
    def of(cls, row: TandemRow) -> _Tandem:
        kinds = [kind for _, kind in row.events]
        enrolled = row.enrolled_at or next((at for at, k in row.events if k == ENROLLED), None)
        introduced = next((at for at, k in row.events if k == INTRODUCED), None)
        days = None
        if enrolled is not None and introduced is not None and introduced >= enrolled:
            days = (introduced - enrolled).total_seconds() / _DAY
        declined = any(k.startswith(DECLINE_PREFIX) for k in kinds)
        last_flag = max((i for i, k in enumerate(kinds) if k == AT_RISK), default=-1)
        last_contact = max((i for i, k in enumerate(kinds) if k == CONTACT), default=-1)
        is_open = row.status not in {s.value for s in FINAL_STATUSES}
        rounds = [i for i, k in enumerate(kinds) if k in CHECK_IN_KINDS]
        check_ins = []
        for n, i in enumerate(rounds):
            until = rounds[n + 1] if n + 1 < len(rounds) else len(kinds)
            answered = any(k in ANSWER_KINDS for k in kinds[i + 1 : until])
            check_ins.append((quarter_of(row.events[i][0]), answered))
        return cls(
            days_to_match=days,
            decided=declined or ACTIVATED in kinds,
            declined=declined,
            introduced=introduced is not None,
            rematched=any(k in REMATCH_KINDS for k in kinds),
            flagged=last_flag >= 0,
            at_risk_now=is_open and last_flag > last_contact,
            check_ins=tuple(check_ins),
        )


def quarter_of(at: datetime) -> str:
    """The calendar quarter of a moment (given in UTC by the database)."""
    return f"{at.year}-Q{(at.month - 1) // 3 + 1}"


def _ordered(counter: Counter[str], order: Sequence[str]) -> list[tuple[str, int]]:
    """The labels that occur: those named in ``order`` first, in that order, then the rest."""
    known = [label for label in dict.fromkeys(order) if counter[label]]
    rest = sorted(label for label in counter if label not in known)
    return [(label, counter[label]) for label in [*known, *rest]]


def _rows(pairs: list[tuple[str, int]]) -> list[Row]:
    cells = suppressed_group([n for _, n in pairs])
    return [Row(label=label, count=cell) for (label, _), cell in zip(pairs, cells, strict=True)]


def _time_to_match(tandems: list[_Tandem]) -> TimeToMatch:
    days = sorted(t.days_to_match for t in tandems if t.days_to_match is not None)
    matched = Count.of(len(days))
    median = p90 = None
    if matched.value is not None:
        median = statistics.median(days)
        # Linear interpolation between closest ranks (NumPy's and R's default, type 7).
        p90 = statistics.quantiles(days, n=10, method="inclusive")[8]
    in_bucket = [sum(1 for d in days if low <= d < high) for _, low, high in MATCH_BUCKETS]
    cells = suppressed_group(in_bucket)
    return TimeToMatch(
        matched=matched,
        median_days=Figure.of(median, "days"),
        p90_days=Figure.of(p90, "days"),
        distribution=[
            Row(label=label, count=cell)
            for (label, _, _), cell in zip(MATCH_BUCKETS, cells, strict=True)
        ],
    )


def _share(flags: list[bool], basis: list[bool]) -> Share:
    count = Count.of(sum(f and b for f, b in zip(flags, basis, strict=True)))
    of = Count.of(sum(basis))
    return Share(count=count, of=of, rate=share(count, of))


def _check_ins(tandems: list[_Tandem]) -> CheckIns:
    sent: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    who: defaultdict[str, set[int]] = defaultdict(set)
    for n, t in enumerate(tandems):
        for quarter, ok in t.check_ins:
            sent[quarter] += 1
            answered[quarter] += ok
            who[quarter].add(n)
    quarters = sorted(sent)
    sent_cells = suppressed_group([sent[q] for q in quarters])
    answered_cells = suppressed_group([answered[q] for q in quarters])
    rows = []
    for q, s, a in zip(quarters, sent_cells, answered_cells, strict=True):
        enough = len(who[q]) >= THRESHOLD  # a rate from fewer tandems is not shown
        rows.append(
            QuarterRow(
                quarter=q, sent=s, answered=a, rate=share(a, s) if enough else Figure.of(None, "%")
            )
        )
    all_who = set().union(*who.values()) if who else set()
    total_sent, total_answered = Count.of(sum(sent.values())), Count.of(sum(answered.values()))
    total = QuarterRow(
        quarter="all",
        sent=total_sent,
        answered=total_answered,
        rate=share(total_answered, total_sent)
        if len(all_who) >= THRESHOLD
        else Figure.of(None, "%"),
    )
    return CheckIns(quarters=rows, total=total)


def build_report(
    tandems: Sequence[TandemRow],
    ratings: Sequence[RatingRow],
    mails: MailRow,
    *,
    program: str | None,
    since: date | None,
    now: datetime,
    phase_order: Sequence[str] = (),
) -> Report:
    """The report over ``tandems`` (already limited to the programme and cohort asked for)."""
    each = [_Tandem.of(row) for row in tandems]
    statuses = Counter(row.status for row in tandems)
    phases = Counter(row.phase for row in tandems)
    rating_count = sum(r.count for r in ratings)
    rating_cell = Count.of(rating_count)
    mean = sum(r.total for r in ratings) / rating_count if rating_cell.value is not None else None
    return Report(
        program=program,
        since=since,
        generated_at=now,
        threshold=THRESHOLD,
        tandems=Count.of(len(tandems)),
        completed=Count.of(statuses[TandemStatus.COMPLETED.value]),
        by_status=_rows(_ordered(statuses, [s.value for s in TandemStatus])),
        by_phase=_rows(_ordered(phases, phase_order)),
        time_to_match=_time_to_match(each),
        decisions=Decisions(
            declined=_share([t.declined for t in each], [t.decided for t in each]),
            rematched=_share([t.rematched for t in each], [t.introduced for t in each]),
        ),
        check_ins=_check_ins(each),
        at_risk=AtRisk(
            flagged=Count.of(sum(t.flagged for t in each)),
            now=Count.of(sum(t.at_risk_now for t in each)),
        ),
        ratings=Ratings(count=rating_cell, mean=Figure.of(mean, "of 5")),
        mails=Mails(
            sent=Count.of(mails.sent),
            refused=Count.of(mails.refused),
            waiting=Count.of(mails.waiting),
        ),
        notes=notes(program, since),
    )


def notes(program: str | None, since: date | None) -> list[str]:
    """What every figure means, as the report prints it."""
    scope = f"programme {program}" if program else "all programmes"
    cohort = f"enrolled on or after {since.isoformat()} (UTC)" if since else "ever enrolled"
    return [
        f"Tandems of {scope} {cohort}. A tandem is one enrolment of a mentee: a returning "
        "mentee's new tandem counts on its own. Status and phase are as of now.",
        f'Small cells: a count below {THRESHOLD} is shown as "{SMALL}"; where a table\'s '
        f"total is shown and only one cell is hidden, the next smallest is hidden too "
        f'("{HIDDEN}"). Rates, medians and means resting on fewer than {THRESHOLD} tandems, '
        'or on a hidden count, are not shown ("suppressed"). No id, name or address appears.',
        "Time to match: days from enrolment to the first introduction to a mentor, for the "
        "tandems introduced so far; median and 90th percentile (linear interpolation between "
        "ranks). Each range of the distribution includes its lower bound.",
        "Declined: tandems where someone said no at a first-meeting decision at least once, "
        "of the tandems that reached a decision (both said yes, or one said no). Rematched: "
        "tandems that got another mentor at least once (after a no, or `tandem rematch`), of "
        "the tandems introduced to a mentor; a mentor who left by erasure does not count.",
        "Check-ins: one check-in is one round of check-in mails to a tandem (event nudged, or "
        "at_risk for the round that flags it). It counts as answered when the tandem records "
        'contact ("we met", by mail or `tandem answer`) or a request to be asked later '
        "(snoozed) after it and before its next check-in. Quarters are calendar quarters (UTC) "
        "of the check-in; a late answer counts in its check-in's quarter. A quarter's rate "
        f"needs check-ins of at least {THRESHOLD} tandems.",
        "At risk: flagged when two check-in periods in a row passed without contact; now: "
        "still open, flagged, and no contact since. Completed: tandems whose last phase ended.",
        'Ratings: the anonymous 1-5 ratings given with "we met", kept only as a count and '
        "total per programme, so they are all-time and --since does not apply.",
        "Mails: mails of these tandems' mentees (to them, their mentors and the office), "
        "created on or after --since: sent, refused by the relay for good, not sent yet.",
    ]
