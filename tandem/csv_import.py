"""Reading the people CSV files: every row checked, every bad row named by its line number.

Pure: takes the file's bytes and the known programmes, returns valid rows and errors.
Error reasons name the column and the rule, never the person's name or address, so they
may be logged and shown on shared screens.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from pydantic import ValidationError

from tandem.models import Mentee, Mentor
from tandem.programs import Program
from tandem.salutation import parse_salutation, parse_title

Kind = Literal["mentors", "mentees"]

MENTOR_COLUMNS: tuple[str, ...] = (
    "id",
    "first_name",
    "last_name",
    "email",
    "programs",
    "region",
    "specialty",
    "capacity",
    "language",
    "salutation",
    "title",
)
MENTEE_COLUMNS: tuple[str, ...] = (
    "id",
    "first_name",
    "last_name",
    "email",
    "program",
    "phase",
    "region",
    "specialty",
    "expected_phase_end",
    "language",
    "salutation",
    "title",
)
COLUMNS: dict[Kind, tuple[str, ...]] = {"mentors": MENTOR_COLUMNS, "mentees": MENTEE_COLUMNS}
#: Columns a file may leave out: files written before they existed keep working. Without
#: ``phase`` (or with it empty) a mentee starts in the programme's first phase, so a
#: one-phase programme needs no phase column at all.
PERSON_OPTIONAL: tuple[str, ...] = ("salutation", "title")
OPTIONAL_COLUMNS: dict[Kind, frozenset[str]] = {
    "mentors": frozenset(PERSON_OPTIONAL),
    "mentees": frozenset({"phase", *PERSON_OPTIONAL}),
}

# Values matching these may be echoed in a reason: programme/phase/id shapes, never names or
# addresses (names start upper-case, addresses hold '@').
_SAFE_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_COLUMN_NAME = re.compile(r"[a-z_][a-z0-9_]{0,39}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_WHOLE = re.compile(r"[0-9]{1,9}")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEP_HINT = re.compile(r'"?sep=(.)"?\s*', re.IGNORECASE)

P = TypeVar("P", Mentor, Mentee)


class RowError(NamedTuple):
    """One problem: the physical line in the file (header = 1) and a short, name-free reason."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class ParseResult(Generic[P]):
    """Valid rows (never a bad one) and every error found; apply only when ``ok``."""

    rows: list[P] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


RowHook = Callable[[], None]


def parse_mentors(
    data: bytes, programs: Mapping[str, Program], *, on_row: RowHook | None = None
) -> ParseResult[Mentor]:
    """Parse a mentors file; ``on_row`` is called once per data row (for progress bars)."""
    return _parse(data, _MentorRows(programs), on_row)


def parse_mentees(
    data: bytes, programs: Mapping[str, Program], *, on_row: RowHook | None = None
) -> ParseResult[Mentee]:
    """Parse a mentees file; ``on_row`` is called once per data row (for progress bars)."""
    return _parse(data, _MenteeRows(programs), on_row)


def count_lines(data: bytes) -> int:
    """Physical lines as this module counts them (``\\r\\n``, ``\\r`` or ``\\n`` end a line)."""
    text = data.decode("utf-8", errors="replace")
    if not text:
        return 0
    breaks = len(_LINE_BREAK.findall(text))
    return breaks if _LINE_BREAK.search(text[-1:]) else breaks + 1


# --- reading -------------------------------------------------------------------------------


def _parse(data: bytes, spec: _Rows[P], on_row: RowHook | None) -> ParseResult[P]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = _line_of(data, err.start)
        return ParseResult(errors=[RowError(line, "not UTF-8 text: save the file as 'CSV UTF-8'")])
    delimiter, records = _open(text)
    header_line, header = next(records, (1, None))
    if header is None:
        return ParseResult(errors=[RowError(1, "the file is empty: expected a header row")])
    columns = header if isinstance(header, RowError) else _read_header(header, spec, header_line)
    if isinstance(columns, RowError):
        return ParseResult(errors=[columns])

    result: ParseResult[P] = ParseResult()
    seen_ids: dict[str, int] = {}
    for line, record in records:
        if isinstance(record, RowError):
            result.errors.append(record)
        elif any(cell.strip() for cell in record):  # skip blank lines and rows of empty cells
            if on_row is not None:
                on_row()
            _add_row(result, spec, columns, line, record, delimiter, seen_ids)
    return result


def _open(text: str) -> tuple[str, Iterator[tuple[int, list[str] | RowError]]]:
    """Delimiter (Excel's ``sep=;`` line, else ';' or ',' by count in the header), records."""
    buffer = io.StringIO(text, newline="")
    first = buffer.readline()
    hint = _SEP_HINT.fullmatch(first)
    if hint and hint.group(1) in ";,":
        return hint.group(1), _records(buffer, hint.group(1), offset=1)
    buffer.seek(0)
    delimiter = ";" if first.count(";") > first.count(",") else ","
    return delimiter, _records(buffer, delimiter, offset=0)


def _add_row(
    result: ParseResult[P],
    spec: _Rows[P],
    columns: list[str],
    line: int,
    record: list[str],
    delimiter: str,
    seen_ids: dict[str, int],
) -> None:
    """Check one data row; a bad row only adds errors, a good one only adds its model."""
    if len(record) > len(columns) and any(c.strip() for c in record[len(columns) :]):
        reason = (
            f"{len(record)} values but the header has {len(columns)} columns"
            f" (a '{delimiter}' inside a value needs double quotes)"
        )
        result.errors.append(RowError(line, reason))
        return
    cells = {name: (record[i].strip() if i < len(record) else "") for i, name in enumerate(columns)}
    problems: dict[str, str] = {
        name: "must not contain line breaks or control characters"
        for name, value in cells.items()
        if _CONTROL.search(value)
    }
    row_id = cells["id"]
    if row_id in seen_ids:
        shown = f"'{row_id}' " if _SAFE_ID.fullmatch(row_id) else ""
        problems.setdefault("id", f"{shown}already used on line {seen_ids[row_id]}")
    elif row_id:
        seen_ids[row_id] = line
    model = spec.build(cells, problems)
    if model is not None and not problems:
        result.rows.append(model)
        return
    order = {name: i for i, name in enumerate(spec.columns)}
    for name in sorted(problems, key=lambda n: order.get(n, len(order))):
        result.errors.append(RowError(line, f"{name}: {problems[name]}"))


def _records(
    buffer: io.StringIO, delimiter: str, offset: int
) -> Iterator[tuple[int, list[str] | RowError]]:
    """Each CSV record with the physical line it starts on; unreadable ones become errors."""
    reader = csv.reader(buffer, delimiter=delimiter, strict=True)
    while True:
        start = offset + reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield start, RowError(start, f"not readable as CSV ({_csv_reason(err)})")
            continue
        yield start, record


def _csv_reason(err: csv.Error) -> str:
    message = str(err)
    if "field larger than field limit" in message:
        return "a value is too long"
    if "end of data" in message:
        return "a double quote is never closed"
    if "expected after" in message:
        return "a closing double quote must be followed by the delimiter"
    return "malformed quotes"


def _read_header(header: list[str], spec: _Rows[P], line: int) -> list[str] | RowError:
    """The normalised column names, or one error naming every header problem."""
    expected = spec.columns
    required = [n for n in expected if n not in spec.optional]
    optional = [n for n in expected if n in spec.optional]
    hint = f"expected: {','.join(required)}; optional: {','.join(optional)}"
    names = [re.sub(r"[\s-]+", "_", cell.replace("\ufeff", "").strip().lower()) for cell in header]
    while names and not names[-1]:
        names.pop()  # trailing delimiters
    if any("@" in cell for cell in header):
        return RowError(line, f"no header row: the first line must name the columns ({hint})")
    problems: list[str] = []
    if "" in names:
        problems.append(f"column {names.index('') + 1} has no name")
    duplicates = sorted({n for n in names if n and names.count(n) > 1})
    if duplicates:
        problems.append(f"column(s) listed twice: {', '.join(duplicates)}")
    missing = [n for n in required if n not in names]
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    unknown = [n for n in names if n and n not in expected]
    if unknown:
        shown = [
            n if _COLUMN_NAME.fullmatch(n) else f"column {names.index(n) + 1}" for n in unknown
        ]
        problems.append(f"unknown column(s): {', '.join(dict.fromkeys(shown))}")
    if problems:
        return RowError(line, "; ".join(problems) + f" ({hint})")
    return names


def _line_of(data: bytes, position: int) -> int:
    prefix = data[:position].decode("utf-8", errors="replace")
    return len(_LINE_BREAK.findall(prefix)) + 1


# --- rows ----------------------------------------------------------------------------------


class _Rows(Generic[P]):
    """How one kind of row becomes a model; problems are recorded per column."""

    columns: tuple[str, ...]
    #: Columns the header may leave out.
    optional: frozenset[str]
    model: type[P]

    def __init__(self, programs: Mapping[str, Program]) -> None:
        self.programs = programs

    def prepare(self, cells: dict[str, str], problems: dict[str, str]) -> dict[str, Any]:
        raise NotImplementedError

    def build(self, cells: dict[str, str], problems: dict[str, str]) -> P | None:
        data = {
            "id": cells["id"],
            "first_name": cells["first_name"],
            "last_name": cells["last_name"],
            "region": cells["region"],
            "specialty": cells["specialty"],
        }
        if cells["email"]:
            data["email"] = cells["email"]
        else:
            problems.setdefault("email", "required")
        language = cells["language"].lower()
        if language:
            data["language"] = language
        # Only a file that has the column sets them: one without keeps what is on file.
        for name, parse in (("salutation", parse_salutation), ("title", parse_title)):
            if name in cells:
                try:
                    data[name] = parse(cells[name])
                except ValueError as err:
                    problems.setdefault(name, str(err))
        data.update(self.prepare(cells, problems))
        try:
            model = self.model.model_validate(data)
        except ValidationError as err:
            for item in err.errors(include_url=False):
                name = str(item["loc"][0]) if item["loc"] else "row"
                problems.setdefault(name, _reason(name, item["type"], item.get("ctx") or {}))
            return None
        return None if problems else model

    def unknown_programs(self, raw: list[str]) -> str | None:
        """A reason naming unknown programme ids (echoed only when shaped like an id)."""
        unknown = [p for p in raw if p.lower() not in self.programs]
        if not unknown:
            return None
        shown = ", ".join(f"'{p}'" for p in unknown if _SAFE_CODE.fullmatch(p))
        known = ", ".join(sorted(self.programs)) or "none"
        noun = "programme" if len(unknown) == 1 else "programmes"
        return f"unknown {noun} {shown} (known: {known})".replace("  ", " ")


class _MentorRows(_Rows[Mentor]):
    columns = MENTOR_COLUMNS
    optional = OPTIONAL_COLUMNS["mentors"]
    model = Mentor

    def prepare(self, cells: dict[str, str], problems: dict[str, str]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        raw = [p.strip() for p in cells["programs"].split("|") if p.strip()]
        data["programs"] = list(dict.fromkeys(p.lower() for p in raw))
        unknown = self.unknown_programs(raw)
        if unknown:
            problems["programs"] = unknown
        capacity = cells["capacity"]
        if _WHOLE.fullmatch(capacity):
            data["capacity"] = int(capacity)
        else:
            problems["capacity"] = "required" if not capacity else "must be a whole number ≥ 0"
        return data


class _MenteeRows(_Rows[Mentee]):
    columns = MENTEE_COLUMNS
    optional = OPTIONAL_COLUMNS["mentees"]
    model = Mentee

    def prepare(self, cells: dict[str, str], problems: dict[str, str]) -> dict[str, Any]:
        raw_program, raw_phase = cells["program"], cells.get("phase", "")
        program_id, phase = raw_program.lower(), raw_phase.lower()
        unknown = self.unknown_programs([raw_program]) if raw_program else None
        if unknown:
            problems["program"] = unknown
        program = self.programs[program_id] if program_id and not unknown else None
        if program is not None and not phase:
            phase = program.phases[0].name  # empty: the programme's first phase
        elif program is not None and not program.has_phase(phase):
            shown = f"'{raw_phase}' " if _SAFE_CODE.fullmatch(raw_phase) else ""
            phases = ", ".join(p.name for p in program.phases)
            problems["phase"] = f"programme {program_id} has no phase {shown}(phases: {phases})"
        # Without a known programme there is no first phase: the row fails on its programme.
        data: dict[str, Any] = {"program": program_id, "phase": phase or "-"}
        end = cells["expected_phase_end"]
        if end:
            try:
                if not _ISO_DATE.fullmatch(end):
                    raise ValueError(end)
                data["expected_phase_end"] = date.fromisoformat(end)
            except ValueError:
                problems["expected_phase_end"] = "must be a date like 2026-03-31 (or empty)"
        return data


_TYPE_REASONS = {
    "missing": "required",
    "int_parsing": "must be a whole number ≥ 0",
    "int_type": "must be a whole number ≥ 0",
    "enum": "must be de or en (or empty for de)",
    "date_parsing": "must be a date like 2026-03-31 (or empty)",
    "date_from_datetime_parsing": "must be a date like 2026-03-31 (or empty)",
}


def _reason(name: str, error_type: str, ctx: Mapping[str, Any]) -> str:
    """A short reason from a pydantic error, built from the rule only (never from the input)."""
    if name == "email":
        return "not a valid e-mail address"
    if name == "id" and error_type == "string_pattern_mismatch":
        return "only letters, digits, '.', '_' and '-' allowed"
    if error_type in ("string_too_short", "too_short"):
        return "at least one programme required" if name == "programs" else "required"
    if error_type == "string_too_long":
        return f"too long (at most {ctx.get('max_length')} characters)"
    if error_type == "greater_than_equal":
        return f"must be a whole number ≥ {ctx.get('ge')}"
    if error_type == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    return _TYPE_REASONS.get(error_type, "not a valid value")


__all__ = [
    "COLUMNS",
    "MENTEE_COLUMNS",
    "MENTOR_COLUMNS",
    "OPTIONAL_COLUMNS",
    "PERSON_OPTIONAL",
    "Kind",
    "ParseResult",
    "RowError",
    "count_lines",
    "parse_mentees",
    "parse_mentors",
]
