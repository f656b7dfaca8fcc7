"""What the operator reads: ``tandem status`` as a short block, ``tandem list`` within 80
columns, durations in words (never "0.000694444 days")."""

from __future__ import annotations

from datetime import UTC, datetime

from starter.views import list_lines, status_lines
from tandem.models import TandemState, TandemStatus

AT = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)


def state(**kw: object) -> TandemState:
    data: dict[str, object] = {
        "mentee_id": "S-2027-0042",
        "program": "stipendium-hausarzt",
        "phase": "study",
        "cadence_days": 91,
        "status": TandemStatus.ACTIVE,
        "mentor_id": "M-0007",
        "match_score": 9.5,
        "match_reasons": ["same region", "same specialty"],
        "enrolled_at": AT,
        "phase_started_at": AT,
        "next_nudge_at": AT,
    }
    data.update(kw)
    return TandemState.model_validate(data)


def test_status_reads_as_a_block_with_the_rhythm_in_words() -> None:
    lines = status_lines(state())
    assert lines[0] == "tandem S-2027-0042 (no. 1): active"
    text = "\n".join(lines)
    assert "matched with M-0007 because: same region, same specialty (score 9.5)" in text
    assert "check-ins every 91 days" in text and "next check-in 2027-03-01 09:30" in text
    demo = "\n".join(status_lines(state(cadence_days=1 / 1440, program="demo")))
    assert "every minute" in demo and "0.000694" not in demo


def test_status_says_what_the_office_has_to_do() -> None:
    proposed = "\n".join(status_lines(state(status=TandemStatus.PROPOSED)))
    assert "`tandem approve S-2027-0042` or `tandem reject S-2027-0042`" in proposed
    stalled = "\n".join(status_lines(state(attention="UnknownProgram", attention_since=AT)))
    assert "NEEDS ATTENTION" in stalled and "`tandem retry S-2027-0042`" in stalled
    refused = "\n".join(status_lines(state(failed_mails=["S-2027-0042/e1/2/nudge/mentor"])))
    assert "1 mail(s) refused by the relay" in refused


def test_the_list_fits_80_columns_and_never_cuts_an_id() -> None:
    rows = [
        {
            "mentee_id": f"demo-mentee-{n:02d}",
            "status": status,
            "phase": "residency",
            "program": "demo",
            "mentor_id": "demo-mentor-01" if n else None,
            "next_nudge_at": "2027-06-01T09:00:00+00:00" if n else None,
        }
        for n, status in enumerate(["waiting_for_mentor", "needs_coordinator", "active"])
    ]
    lines = list_lines(rows)
    assert all(len(line) <= 80 for line in lines), max(len(x) for x in lines)
    assert lines[0].split() == ["mentee", "status", "phase", "mentor", "next", "check-in"]
    assert [line.split()[0] for line in lines[1:]] == [
        "demo-mentee-00",
        "demo-mentee-01",
        "demo-mentee-02",
    ]
    assert lines[1].split()[3] == "-" and "2027-06-01" in lines[2]
    long = list_lines([{**rows[0], "mentee_id": "studierende-universitaet-2027-000123"}])
    assert long[1].startswith("studierende-universitaet-2027-000123 "), "never cut"
