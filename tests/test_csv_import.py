"""The CSV parser: both delimiters, Excel's habits, and every bad row named by its line."""

from __future__ import annotations

from datetime import date
from pathlib import Path
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

#: The headers offices have written since the first release (no salutation or title).
MENTOR_HEADER = "id,first_name,last_name,email,programs,region,specialty,capacity,language"
MENTEE_HEADER = (
    "id,first_name,last_name,email,program,phase,region,specialty,expected_phase_end,language"
)


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
        "e-4,Mara,Beispiel,mara@example.org,demo,Studium,,,,de",
        "e-5,Mara,Beispiel,mara@example.org,,,,,,de",
    )
    result = parse_mentees(data, PROGRAMS)
    assert result.rows == []
    assert [str(e) for e in result.errors] == [
        "line 2: phase: programme uni-mentoring has no phase 'study' (phases: tandem)",
        "line 3: expected_phase_end: must be a date like 2026-03-31 (or empty)",
        "line 4: program: unknown programme 'unknown' (known: demo, uni-mentoring)",
        "line 5: phase: programme demo has no phase (phases: study, residency, employment)",
        "line 6: program: required",  # no programme, so no first phase to start in either
    ]


# -- salutation, title and the empty phase (issue 11) ----------------------------------------


def test_salutation_and_title_columns_as_offices_write_them() -> None:
    data = _lines(
        "id;salutation;title;first_name;last_name;email;programs;region;specialty;capacity;language",
        "m-1;Frau;Dr. med.;Anna;Weber;anna.weber@klinikum.example.org;demo;Nord;Innere;2;de",
        "m-2;Hr.;Prof.Dr.;Konrad;Albrecht;k.albrecht@uni.example.org;demo;;;1;de",
        "m-3;Mrs;Dr;Sarah;Miller;s.miller@example.org;demo;;;1;en",
        "m-4;mr;;Tom;Baker;t.baker@example.org;demo;;;1;en",
        "m-5;Ms.;PD  Dr. med.;Eva;Lindqvist;e.lindqvist@example.org;demo;;;1;en",
        "m-6;;;Alex;Kaya;a.kaya@example.org;demo;;;1;de",
    )
    result = parse_mentors(data, PROGRAMS)
    assert result.ok, result.errors
    assert [(m.salutation, m.title) for m in result.rows] == [
        ("Frau", "Dr. med."),
        ("Herr", "Prof. Dr."),
        ("Frau", "Dr."),
        ("Herr", ""),
        ("Frau", "PD Dr. med."),
        ("", ""),
    ]


def test_old_files_without_the_new_columns_still_import() -> None:
    mentors = parse_mentors(
        _lines(MENTOR_HEADER, "m-1,Mara,Beispiel,mara@example.org,demo,,,2,de"), PROGRAMS
    )
    mentees = parse_mentees(
        _lines(MENTEE_HEADER, "e-1,Ida,Test,ida@example.org,demo,residency,,,,de"), PROGRAMS
    )
    assert mentors.ok and mentees.ok
    [m], [e] = mentors.rows, mentees.rows
    assert (m.salutation, m.title, e.salutation, e.title) == ("", "", "", "")
    # Not given at all (so an import keeps what is on file), rather than given as empty.
    assert "salutation" not in m.model_fields_set and "title" not in e.model_fields_set


def test_the_demo_files_still_import() -> None:
    from tandem.programs import load_programs

    root = Path(__file__).parent.parent
    programs = load_programs(root / "programs")
    mentors = parse_mentors((root / "demo" / "mentors.csv").read_bytes(), programs)
    mentees = parse_mentees((root / "demo" / "mentees.csv").read_bytes(), programs)
    assert mentors.ok and mentees.ok, (mentors.errors, mentees.errors)
    assert mentors.rows and mentees.rows


def test_an_empty_phase_is_the_programmes_first_phase() -> None:
    data = _lines(
        MENTEE_HEADER,
        "e-1,Ida,Test,ida@example.org,demo,,,,,de",
        "e-2,Ben,Versuch,ben@example.org,uni-mentoring,,,,,en",
        "e-3,Eva,Probe,eva@example.org,demo,Residency,,,,de",
    )
    result = parse_mentees(data, PROGRAMS)
    assert result.ok, result.errors
    assert [m.phase for m in result.rows] == ["study", "tandem", "residency"]


def test_a_one_phase_programme_needs_no_phase_column() -> None:
    data = _lines(
        "id;first_name;last_name;email;program;region;specialty;expected_phase_end;language",
        "u-1;Lina;Vogt;lina.vogt@uni.example.org;uni-mentoring;;Germanistik;;de",
    )
    [row] = parse_mentees(data, PROGRAMS).rows
    assert (row.program, row.phase) == ("uni-mentoring", "tandem")


def test_a_bad_salutation_or_title_is_one_line_naming_row_and_column() -> None:
    data = _lines(
        "id,salutation,title,first_name,last_name,email,program,phase,region,specialty,"
        "expected_phase_end,language",
        "e-1,Frau,Dr.,Anna,Weber,anna@example.org,demo,study,,,,de",
        "e-2,Madame,,Chloé,Martin,chloe@example.org,demo,study,,,,de",
        "e-3,Dr.,,Jonas,Muster,jonas@example.org,demo,study,,,,de",
        "e-4,Herr Dr.,,Lukas,Brandt,lukas@example.org,demo,study,,,,de",
        "e-5,,Frau Dr.,Lea,Probe,lea@example.org,demo,study,,,,de",
        "e-6,,Prof. Dr. med. habil. Dr. h. c. mult. Dr.-Ing.,Ida,Test,ida@example.org,demo,"
        "study,,,,de",
        "e-7,Weber,,Anna,Weber,anna2@example.org,demo,study,,,,de",
    )
    result = parse_mentees(data, PROGRAMS)
    assert [m.id for m in result.rows] == ["e-1"]
    assert [str(e) for e in result.errors] == [
        "line 3: salutation: must be Frau or Herr (also Fr., Hr., Mrs, Ms, Mr), or empty",
        "line 4: salutation: only Frau or Herr here (a title such as Dr. belongs in the title"
        " column)",
        "line 5: salutation: only Frau or Herr here (a title such as Dr. belongs in the title"
        " column)",
        "line 6: title: Frau or Herr belongs in the salutation column",
        "line 7: title: too long (at most 40 characters)",
        "line 8: salutation: must be Frau or Herr (also Fr., Hr., Mrs, Ms, Mr), or empty",
    ]
    for error in result.errors:
        assert "\n" not in str(error)
        for secret in ("Madame", "Chloé", "Weber", "Muster"):
            assert secret not in error.reason


def test_a_neutral_salutation_is_addressed_without_one() -> None:
    data = _lines(
        "id,first_name,last_name,email,programs,region,specialty,capacity,language,salutation",
        "m-1,Alex,Kaya,alex@example.org,demo,,,1,de,divers",
        "m-2,Sam,Reed,sam@example.org,demo,,,1,en,Mx",
    )
    assert [m.salutation for m in parse_mentors(data, PROGRAMS).rows] == ["", ""]


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

_GOOD_CELLS = [
    *("m-1", "Mara", "mara@example.org", "demo", "demo|uni-mentoring", "study", "2"),
    *("Fr.", "Herr", "Dr. med.", "Prof. Dr."),
]
_ODD_CELLS = ["", " ", '"', '"a;b"', "x,y", "-1", "2026-03-31", "\ufeff", "é", "\x00", "\r", "@"]
_CELLS = st.sampled_from([*_GOOD_CELLS, *_ODD_CELLS])


@st.composite
def _csv_like(draw: st.DrawFn) -> bytes:
    header = draw(
        st.sampled_from(
            [
                MENTOR_HEADER,
                MENTEE_HEADER,
                ",".join(MENTOR_COLUMNS),
                ",".join(MENTEE_COLUMNS),
                "id;name",
                "",
            ]
        )
    )
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
