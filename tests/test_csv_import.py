"""The CSV parser: both delimiters, Excel's habits, and every bad row named by its line."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem.csv_import import (
    MENTEE_COLUMNS,
    MENTOR_COLUMNS,
    RowError,
    count_lines,
    parse_mentees,
    parse_mentors,
)
from tandem.models import Language
from tandem.programs import Program


def _program(program_id: str, phases: list[str]) -> Program:
    return Program.model_validate(
        {
            "id": program_id,
            "name": program_id.title(),
            "coordinator_email": "koordination@example.org",
            "phases": [{"name": p, "cadence": "30d", "duration": "180d"} for p in phases],
            "first_meeting_window": "14d",
        }
    )


PROGRAMS = {
    "demo": _program("demo", ["study", "residency", "employment"]),
    "uni-mentoring": _program("uni-mentoring", ["tandem"]),
}

MENTOR_HEADER = ",".join(MENTOR_COLUMNS)
MENTEE_HEADER = ",".join(MENTEE_COLUMNS)


def _lines(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_comma_file() -> None:
    data = _lines(
        MENTOR_HEADER,
        "m-1,Mara,Beispiel,mara@example.org,demo|uni-mentoring,Nord,Innere,2,en",
        "m-2,Jonas,Muster,jonas@example.org,demo,,,0,",
    )
    result = parse_mentors(data, PROGRAMS)
    assert result.ok
    first, second = result.rows
    assert first.programs == ["demo", "uni-mentoring"]
    assert (first.region, first.specialty, first.capacity, first.language) == (
        "Nord",
        "Innere",
        2,
        Language.EN,
    )
    assert (second.region, second.specialty, second.language) == ("", "", Language.DE)


def test_semicolon_file() -> None:
    data = _lines(
        MENTEE_HEADER.replace(",", ";"),
        "e-1;Mara;Beispiel;mara@example.org;demo;study;Süd;Chirurgie;2026-03-31;de",
        "e-2;Jonas;Muster;jonas@example.org;uni-mentoring;tandem;;;;",
    )
    result = parse_mentees(data, PROGRAMS)
    assert result.ok, result.errors
    assert [m.id for m in result.rows] == ["e-1", "e-2"]
    assert result.rows[0].expected_phase_end == date(2026, 3, 31)
    assert result.rows[0].region == "Süd"
    assert result.rows[1].expected_phase_end is None


def test_excel_bom_crlf_semicolon() -> None:
    text = "\r\n".join(
        [
            MENTOR_HEADER.replace(",", ";"),
            "m-1;Mara;Beispiel;mara@example.org;demo;;;1;de",
            ";;;;;;;;",  # Excel writes empty rows as bare delimiters
            "",
        ]
    )
    result = parse_mentors(b"\xef\xbb\xbf" + text.encode(), PROGRAMS)
    assert result.ok, result.errors
    assert [m.id for m in result.rows] == ["m-1"]


def test_excel_sep_hint_line() -> None:
    data = _lines("sep=;", MENTOR_HEADER.replace(",", ";"), "m-1;Mara;Beispiel;m@example.org;demo")
    result = parse_mentors(data, PROGRAMS)
    assert [str(e) for e in result.errors] == ["line 3: capacity: required"]


def test_quoted_fields_keep_delimiters() -> None:
    data = _lines(
        MENTOR_HEADER.replace(",", ";"),
        'm-1;"Mara";"Beispiel";mara@example.org;demo;"Nord; Ost";"Innere, Kardio";3;de',
    )
    result = parse_mentors(data, PROGRAMS)
    assert result.ok, result.errors
    assert (result.rows[0].region, result.rows[0].specialty) == ("Nord; Ost", "Innere, Kardio")


def test_bad_rows_are_named_by_line_and_never_leak() -> None:
    data = _lines(
        MENTOR_HEADER,
        "m-1,Mara,Beispiel,mara@example.org,demo,,,2,de",
        "m-2,Jonas,Muster,jonas.example.org,demo,,,2,de",
        "m-3,Lea,Probe,lea@example.org,demo,,,viele,de",
        "m-4,,Probe,leo@example.org,demo,,,1,fr",
        "m-5,Ida,Test,ida@example.org,demo,,,1,de",
    )
    result = parse_mentors(data, PROGRAMS)
    assert [m.id for m in result.rows] == ["m-1", "m-5"]
    assert [str(e) for e in result.errors] == [
        "line 3: email: not a valid e-mail address",
        "line 4: capacity: must be a whole number ≥ 0",
        "line 5: first_name: required",
        "line 5: language: must be de or en (or empty for de)",
    ]
    for error in result.errors:
        for secret in ("Jonas", "Muster", "jonas", "Lea", "Probe", "leo@", "Ida"):
            assert secret not in error.reason


def test_capacity_bounds() -> None:
    data = _lines(
        MENTOR_HEADER,
        "m-1,Mara,Beispiel,mara@example.org,demo,,,-1,de",
        "m-2,Mara,Beispiel,mara@example.org,demo,,,51,de",
        "m-3,Mara,Beispiel,mara@example.org,demo,,,1.5,de",
    )
    reasons = [e.reason for e in parse_mentors(data, PROGRAMS).errors]
    assert reasons == [
        "capacity: must be a whole number ≥ 0",
        "capacity: must be at most 50",
        "capacity: must be a whole number ≥ 0",
    ]


def test_duplicate_id_is_reported_on_the_later_line() -> None:
    data = _lines(
        MENTOR_HEADER,
        "m-1,Mara,Beispiel,mara@example.org,demo,,,2,de",
        "m-2,Jonas,Muster,jonas@example.org,demo,,,2,de",
        "m-1,Lea,Probe,lea@example.org,demo,,,2,de",
    )
    result = parse_mentors(data, PROGRAMS)
    assert [m.id for m in result.rows] == ["m-1", "m-2"]
    assert result.errors == [RowError(4, "id: 'm-1' already used on line 2")]


def test_unknown_programme() -> None:
    data = _lines(
        MENTOR_HEADER,
        "m-1,Mara,Beispiel,mara@example.org,demo|nope,,,2,de",
        "m-2,Mara,Beispiel,mara@example.org,Mara Beispiel,,,2,de",
    )
    result = parse_mentors(data, PROGRAMS)
    assert result.rows == []
    assert result.errors[0] == RowError(
        2, "programs: unknown programme 'nope' (known: demo, uni-mentoring)"
    )
    assert result.errors[1].line == 3
    assert "Mara" not in result.errors[1].reason  # a misplaced name is never echoed


def test_programme_ids_are_case_insensitive() -> None:
    data = _lines(MENTOR_HEADER, "m-1,Mara,Beispiel,mara@example.org, Demo | demo ,,,2,de")
    assert parse_mentors(data, PROGRAMS).rows[0].programs == ["demo"]


def test_mentee_phase_must_exist_in_programme() -> None:
    data = _lines(
        MENTEE_HEADER,
        "e-1,Mara,Beispiel,mara@example.org,uni-mentoring,study,,,,de",
        "e-2,Mara,Beispiel,mara@example.org,demo,study,,,31.03.2026,de",
        "e-3,Mara,Beispiel,mara@example.org,unknown,study,,,,de",
        "e-4,Mara,Beispiel,mara@example.org,demo,,,,,de",
    )
    result = parse_mentees(data, PROGRAMS)
    assert result.rows == []
    assert [str(e) for e in result.errors] == [
        "line 2: phase: programme uni-mentoring has no phase 'study' (phases: tandem)",
        "line 3: expected_phase_end: must be a date like 2026-03-31 (or empty)",
        "line 4: program: unknown programme 'unknown' (known: demo, uni-mentoring)",
        "line 5: phase: required",
    ]


def test_missing_and_unknown_columns() -> None:
    data = _lines("id,first_name,last_name,email,programs,capacity,colour", "m-1,Mara")
    errors = parse_mentors(data, PROGRAMS).errors
    assert len(errors) == 1
    assert errors[0].line == 1
    assert "missing column(s): region, specialty, language" in errors[0].reason
    assert "unknown column(s): colour" in errors[0].reason


def test_header_row_missing() -> None:
    data = _lines("m-1,Mara,Beispiel,mara@example.org,demo,,,2,de")
    (error,) = parse_mentors(data, PROGRAMS).errors
    assert error.line == 1
    assert error.reason.startswith("no header row")
    assert "mara" not in error.reason.lower()


def test_header_names_are_forgiving() -> None:
    header = "ID;First Name;last-name;EMAIL;Programs;Region;Specialty;Capacity;Language;;"
    data = _lines(header, "m-1;Mara;Beispiel;mara@example.org;demo;;;1;de;;")
    assert parse_mentors(data, PROGRAMS).ok


def test_not_utf8() -> None:
    data = (
        MENTOR_HEADER + "\nm-1,Mara,Beispiel,mara@example.org,demo,,,1,de\n"
        "m-2,Jürgen,Müller,j@example.org,demo,,,1,de\n"
    ).encode("cp1252")
    result = parse_mentors(data, PROGRAMS)
    assert result.rows == []
    assert result.errors == [RowError(3, "not UTF-8 text: save the file as 'CSV UTF-8'")]


def test_too_many_values_and_broken_quotes() -> None:
    data = _lines(
        MENTOR_HEADER,
        "m-1,Mara,Beispiel,mara@example.org,demo,Nord, Ost,,1,de",
        'm-2,"Mara" B,Beispiel,mara@example.org,demo,,,1,de',
        "m-3,Mara,Beispiel,mara@example.org,demo,,,1,de",
    )
    result = parse_mentors(data, PROGRAMS)
    assert [m.id for m in result.rows] == ["m-3"]
    assert [e.line for e in result.errors] == [2, 3]
    assert "10 values but the header has 9 columns" in result.errors[0].reason


def test_multiline_quoted_value_counts_physical_lines() -> None:
    data = _lines(
        MENTOR_HEADER,
        'm-1,Mara,Beispiel,mara@example.org,demo,"Nord',
        'Ost",,1,de',
        "m-2,Mara,Beispiel,bad,demo,,,1,de",
    )
    result = parse_mentors(data, PROGRAMS)
    assert [str(e) for e in result.errors] == [
        "line 2: region: must not contain line breaks or control characters",
        "line 4: email: not a valid e-mail address",
    ]


def test_empty_file_and_header_only() -> None:
    assert parse_mentors(b"", PROGRAMS).errors == [
        RowError(1, "the file is empty: expected a header row")
    ]
    header_only = parse_mentees(MENTEE_HEADER.encode(), PROGRAMS)
    assert header_only.ok
    assert header_only.rows == []


def test_progress_hook_counts_data_rows() -> None:
    calls: list[int] = []
    data = _lines(MENTOR_HEADER, "m-1,Mara,Beispiel,mara@example.org,demo,,,1,de", "", "x")
    parse_mentors(data, PROGRAMS, on_row=lambda: calls.append(1))
    assert len(calls) == 2


# -- properties ----------------------------------------------------------------------------

_GOOD_CELLS = ["m-1", "Mara", "mara@example.org", "demo", "demo|uni-mentoring", "study", "2"]
_ODD_CELLS = ["", " ", '"', '"a;b"', "x,y", "-1", "2026-03-31", "\ufeff", "é", "\x00", "\r", "@"]
_CELLS = st.sampled_from([*_GOOD_CELLS, *_ODD_CELLS])


@st.composite
def _csv_like(draw: st.DrawFn) -> bytes:
    header = draw(st.sampled_from([MENTOR_HEADER, MENTEE_HEADER, "id;name", ""]))
    delimiter = draw(st.sampled_from([",", ";"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    rows = draw(st.lists(st.lists(_CELLS, max_size=12), max_size=8))
    text = newline.join([header.replace(",", delimiter)] + [delimiter.join(r) for r in rows])
    prefix = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"sep=;\n"]))
    junk = draw(st.sampled_from([b"", b"\xff", b"\xe9\n"]))
    return prefix + text.encode() + junk


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), _csv_like()))
@pytest.mark.parametrize("parse", [parse_mentors, parse_mentees])
def test_parse_never_raises_and_errors_point_into_the_file(parse: Any, data: bytes) -> None:
    result = parse(data, PROGRAMS)
    last_line = max(1, count_lines(data))
    for error in result.errors:
        assert 1 <= error.line <= last_line, (error, data)
        assert error.reason
    bad_lines = {e.line for e in result.errors}
    assert len(result.rows) + len(bad_lines) <= max(0, last_line)
