"""What the operator reads: a tandem's state as a short block (``tandem status``) and the
list of tandems narrow enough for an 80-column terminal (``tandem list``). Ids and status
only, as everything the workflow holds; ``tandem who`` gives names."""

from __future__ import annotations

import textwrap
from datetime import datetime
from typing import Any

from tandem.durations import every
from tandem.models import TandemState, TandemStatus


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at is not None else "-"


def match_explanation(state: TandemState) -> str | None:
    """Why this mentor, in words: the match's reasons and its score (None before a match)."""
    if state.mentor_id is None or not state.match_reasons:
        return None
    because = ", ".join(state.match_reasons)
    score = "" if state.match_score is None else f" (score {state.match_score:g})"
    return f"matched with {state.mentor_id} because: {because}{score}"


def status_lines(state: TandemState) -> list[str]:
    """The block ``tandem status`` prints: status first, then who, rhythm, what is next."""
    s = state
    head = f"tandem {s.mentee_id} (no. {s.enrolment}): {s.status.value}"
    if s.at_risk:
        head += ", AT RISK"
    lines = [head]
    if s.attention is not None:
        lines.append(
            f"  NEEDS ATTENTION since {_when(s.attention_since)}: {s.attention}"
            f" — fix it, then `tandem retry {s.mentee_id}`"
        )
    since = f" since {_when(s.phase_started_at)}" if s.phase_started_at else ""
    lines.append(f"  programme {s.program}, phase {s.phase}{since}")
    why = match_explanation(s)
    if why is not None:
        lines += textwrap.wrap(why, 78, initial_indent="  ", subsequent_indent="    ")
    elif s.mentor_id is not None:
        lines.append(f"  mentor {s.mentor_id}")
    else:
        lines.append("  no mentor yet")
    if s.status is TandemStatus.PROPOSED:
        lines.append(
            f"  waiting for the office: `tandem approve {s.mentee_id}`"
            f" or `tandem reject {s.mentee_id}`"
        )
    lines.append(
        f"  check-ins {every(s.cadence_days, 'en')}"
        + (" (the pair's own rhythm)" if s.own_cadence_days is not None else "")
        + f"; {s.nudges_sent} sent, last contact {_when(s.last_contact_at)}"
    )
    if s.next_nudge_at is not None:
        lines.append(f"  next check-in {_when(s.next_nudge_at)}")
    if s.paused_until is not None:
        lines.append(f"  paused until {_when(s.paused_until)}")
    if s.requests:
        lines.append(f"  waiting for answers to: {', '.join(sorted(s.requests))}")
    if s.rematches or s.excluded_mentor_ids:
        lines.append(
            f"  rematches {s.rematches}; not again: {', '.join(s.excluded_mentor_ids) or '-'}"
        )
    if s.failed_mails:
        lines.append(
            f"  {len(s.failed_mails)} mail(s) refused by the relay:"
            f" correct the address, then `tandem retry {s.mentee_id}`"
        )
    if s.end_reason:
        lines.append(f"  ended: {s.end_reason}")
    lines.append(f"  enrolled {_when(s.enrolled_at)}, last change {_when(s.updated_at)}")
    return lines


#: ``tandem list`` columns: (key, title, widest). Ids are never cut (they are what people
#: search for and type); the other columns are as wide as their widest value. With ids of
#: up to 16 characters a line fits 80 columns.
LIST_COLUMNS = (
    ("mentee_id", "mentee", None),
    ("status", "status", 18),
    ("phase", "phase", 12),
    ("mentor_id", "mentor", None),
    ("next_nudge_at", "next check-in", 13),
)


def _cell(value: Any, width: int | None) -> str:
    text = "-" if value in (None, "") else str(value)
    if width is None or len(text) <= width:
        return text
    return text[: width - 1] + "…"


def list_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per tandem, columns as wide as their content."""
    cells = [
        [
            _cell(str(row.get(k))[:10] if k == "next_nudge_at" and row.get(k) else row.get(k), w)
            for (k, _, w) in LIST_COLUMNS
        ]
        for row in rows
    ]
    titles = [t for (_, t, _) in LIST_COLUMNS]
    widths = [max([len(t), *(len(r[i]) for r in cells)]) for i, t in enumerate(titles)]
    return [
        " ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [titles, *cells]
    ]
