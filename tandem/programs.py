"""Programme rules are data: one YAML file per programme in ``programs/``, validated here.

The files are written by programme offices, so they are read strictly (an unknown key is a
typo, not an extension) and every problem is one plain line naming file, key and reason.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Hashable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from tandem.digest import DigestFrequency
from tandem.models import Language

_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds", "w": "weeks"}
_DURATION_HINT = "e.g. 91d, 12h, 3m, 2w"


def _parse_duration(value: Any) -> timedelta:
    """Accept ``91d``, ``12h``, ``3m``, ``2w`` (or a plain number of days) in programme files."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(days=value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhmsw])\s*", value)
        if match:
            return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    if value is None:
        raise PydanticCustomError("empty_duration", f"empty: give a duration ({_DURATION_HINT})")
    raise PydanticCustomError("not_a_duration", f"not a duration ({_DURATION_HINT})")


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise PydanticCustomError("duration_not_positive", "must be longer than 0")
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise PydanticCustomError("duration_negative", "must not be negative")
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration), AfterValidator(_positive)]
#: A lead time may be zero (ask at the very end of the phase).
Lead = Annotated[timedelta, BeforeValidator(_parse_duration), AfterValidator(_not_negative)]


class _RulesBroken(ValueError):
    """Checks across keys, each with the key it is about, so the error line can name it."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {reason}" for key, reason in problems))


def _cross_problems(
    names: list[Any], last_duration: Any, reminder: Any, escalation: Any
) -> list[tuple[str, str]]:
    """The rules that span keys, as (key, reason); ``None`` for what is not known."""
    problems: list[tuple[str, str]] = []
    first: dict[Any, int] = {}
    for i, name in enumerate(names):
        if isinstance(name, str) and name in first:
            problems.append(
                (f"phases.{i}.name", f"not unique (phases.{first[name]} is also called {name})")
            )
        if isinstance(name, str):
            first.setdefault(name, i)
    if names and last_duration is None:
        problems.append(
            (
                f"phases.{len(names) - 1}.duration",
                "required for the last phase (it ends the tandem)",
            )
        )
    if reminder is not None and escalation is not None and escalation <= reminder:
        problems.append(("decision_escalation_after", "must be later than decision_reminder_after"))
    return problems


class Phase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    #: What mails call the phase, per language (falls back to ``name``).
    labels: dict[str, str] = Field(default_factory=dict)
    #: How often both are nudged to check in while the tandem is active.
    cadence: Duration
    #: Expected length of the phase; the last phase's duration ends the tandem.
    duration: Duration | None = None


class Program(BaseModel):
    """The rules of one mentoring programme."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    name: str
    language: Language = Language.DE
    coordinator_email: EmailStr
    phases: list[Phase] = Field(min_length=1)
    first_meeting_window: Duration
    decision_reminder_after: Duration = timedelta(days=7)
    decision_escalation_after: Duration = timedelta(days=21)
    max_rematches: int = Field(default=2, ge=0)
    waiting_retry_every: Duration = timedelta(days=1)
    phase_check_lead: Lead = timedelta(days=30)
    reply_token_valid_for: Duration = timedelta(days=60)
    #: How long a closed tandem's mentee stays on file (name, address, the tandem's mail
    #: texts); then the retention sweep erases them as ``tandem forget`` does, counts stay.
    closed_tandem_retention: Duration = timedelta(days=730)
    #: ``coordinator``: every match waits for the coordinator's "ok" before anyone is told.
    approval: Literal["none", "coordinator"] = "none"
    #: A match scoring below this waits for the coordinator too (``None``: any score).
    min_score: float | None = Field(default=None, ge=0)
    #: The coordinator's digest (``tandem digest``): weekly, monthly (first week) or off.
    digest: DigestFrequency = DigestFrequency.WEEKLY

    @model_validator(mode="after")
    def _check(self) -> Program:
        problems = _cross_problems(
            [p.name for p in self.phases],
            self.phases[-1].duration,
            self.decision_reminder_after,
            self.decision_escalation_after,
        )
        if problems:
            raise _RulesBroken(problems)
        return self

    def phase(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(f"programme {self.id} has no phase {name!r}")

    def has_phase(self, name: str) -> bool:
        return any(p.name == name for p in self.phases)

    def cadence(self, phase: str) -> timedelta:
        return self.phase(phase).cadence


def phase_label(program: Program, phase: str, language: str) -> str:
    if not program.has_phase(phase):
        return phase
    return program.phase(phase).labels.get(language, phase)


class ProgramError(ValueError):
    """One or more programme files are missing or break the rules.

    ``lines`` holds one self-contained line per problem (``file: key: reason``); ``str()``
    is those lines joined by newlines, so a caller printing it shows each on its own line.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines: tuple[str, ...] = tuple(lines)
        super().__init__("\n".join(self.lines))


def load_program(directory: Path, program_id: str) -> Program:
    path = directory / f"{program_id}.yaml"
    if not path.is_file():
        raise ProgramError([f"unknown programme {program_id!r}"])
    program, problems = _read(path)
    if program is None:
        raise ProgramError(problems)
    if program.id != path.stem:
        raise ProgramError([_id_problem(path, program, None)])
    return program


class ProgramCatalog:
    """The programme files, read on demand: a file added (or changed) while the workers run
    is used from its next mail on, with no restart."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._cache: dict[str, tuple[float, Program]] = {}

    def get(self, program_id: str, /) -> Program | None:
        """The programme, or ``None`` if no such file; ``ProgramError`` if the file is bad."""
        if not _PROGRAM_ID.fullmatch(program_id):
            return None
        path = self._directory / f"{program_id}.yaml"
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            self._cache.pop(program_id, None)
            return None
        cached = self._cache.get(program_id)
        if cached is None or cached[0] != mtime:
            program, problems = _read(path)
            if program is None:
                raise ProgramError(problems)
            if program.id != path.stem:
                raise ProgramError([_id_problem(path, program, None)])
            cached = (mtime, program)
            self._cache[program_id] = cached
        return cached[1]


_PROGRAM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def load_programs(directory: Path) -> dict[str, Program]:
    """Every programme of the directory, or ``ProgramError`` listing every problem of every
    file (not just the first), so an office fixes them in one go."""
    if not directory.is_dir():
        raise ProgramError([f"no programme directory at {directory} (TANDEM_PROGRAMS_DIR)"])
    read: list[tuple[Path, Program | None, list[str]]] = []
    problems: list[str] = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() in {".yml", ".yaml"} and path.suffix != ".yaml":
            read.append((path, None, [f"{_shown(path)}: not read: programme files end in .yaml"]))
        elif path.suffix == ".yaml":
            read.append((path, *_read(path)))
    owners = {p.id: path for path, p, _ in read if p is not None and p.id == path.stem}
    programs: dict[str, Program] = {}
    for path, program, file_problems in read:
        problems.extend(file_problems)
        if program is None:
            continue
        if program.id != path.stem:
            problems.append(_id_problem(path, program, owners.get(program.id)))
        elif not file_problems:
            programs[program.id] = program
    if problems:
        raise ProgramError(problems)
    return programs


# -- reading one file ----------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """YAML as usual, but a key given twice is an error (YAML would keep the last quietly)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Hashable, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{key} is given twice (also on line {seen[key] + 1})",
                key_node.start_mark,
            )
        if isinstance(key, Hashable):
            seen[key] = key_node.start_mark.line
    return dict(loader.construct_pairs(node))


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _read(path: Path) -> tuple[Program | None, list[str]]:
    """The programme, or ``None`` and its problems, one line each."""
    shown = _shown(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None, [f"{shown}: not UTF-8 text (save the file as UTF-8)"]
    except OSError as err:
        return None, [f"{shown}: cannot read the file ({err.strerror or type(err).__name__})"]
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        return None, [f"{shown}: {_yaml_problem(err)}"]
    if data is None:
        return None, [f"{shown}: the file is empty"]
    if not isinstance(data, dict):
        found = "a list" if isinstance(data, list) else "a single value"
        return None, [f"{shown}: not a programme: expected lines of 'key: value', found {found}"]
    try:
        program = Program.model_validate(data)
    except ValidationError as err:
        lines = _validation_lines(err)
        reported = {line.split(": ", 1)[0] for line in lines}
        lines += [f"{key}: {why}" for key, why in _raw_cross_problems(data) if key not in reported]
        return None, [f"{shown}: {line}" for line in lines]
    return program, []


def _raw_cross_problems(data: dict[Any, Any]) -> list[tuple[str, str]]:
    """The rules across keys, checked on the file's raw values where they can be: the model
    checks them only once every key is valid, and the office should see all at once."""
    phases = data.get("phases")
    if not isinstance(phases, list) or not phases or not all(isinstance(p, dict) for p in phases):
        return []

    def duration(key: str) -> timedelta | None:
        if key not in data:
            return Program.model_fields[key].default  # type: ignore[no-any-return]
        try:
            return _parse_duration(data[key])
        except PydanticCustomError:
            return None

    return _cross_problems(
        [p.get("name") for p in phases],
        phases[-1].get("duration"),
        duration("decision_reminder_after"),
        duration("decision_escalation_after"),
    )


def _id_problem(path: Path, program: Program, owner: Path | None) -> str:
    """A file whose id is not its name: ``tandem`` finds programmes by file name, and a
    copied file keeps the id of the one it was copied from."""
    shown = _shown(path)
    if owner is not None:
        return (
            f"{shown}: id: {program.id} is already the id of {_shown(owner)}"
            f" (this file's id must be {path.stem})"
        )
    return f"{shown}: id: {program.id} must be the file's name ({path.stem})"


def _shown(path: Path) -> str:
    """The file as the office knows it: as configured if relative, else relative to the
    working directory, else ``programs/x.yaml`` (no machine paths in error lines)."""
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


# -- plain words for YAML's and pydantic's errors ----------------------------------------------


def _yaml_problem(err: yaml.YAMLError) -> str:
    """``line N: what is wrong``, from PyYAML's error (which spans several lines)."""
    if not isinstance(err, yaml.MarkedYAMLError):
        return f"not readable as YAML ({type(err).__name__})"
    problem = (err.problem or "").strip()
    context = (err.context or "").strip()
    mark = err.problem_mark
    if "\\t" in problem or "\t" in problem:
        what = "a tab character: indent with spaces only"
    elif "quoted scalar" in context:
        what = "a quotation mark is not closed"
        mark = err.context_mark or mark
    elif "flow mapping" in context or "flow sequence" in context:
        what = "a '{' or '[' is not closed, or a ',' is missing between its items"
        mark = err.context_mark or mark
    elif problem == "mapping values are not allowed here":
        what = "a ':' where none can be (check the indentation, or quote the value)"
    elif problem == "could not find expected ':'":
        what = "expected 'key: value' (is a ':' missing?)"
        mark = err.context_mark or mark  # where the key began, not the line after
    elif problem.startswith(("expected <block end>", "did not find expected")):
        what = "the indentation does not line up with the lines above"
    else:
        what = problem or context or "not readable as YAML"
    return f"line {mark.line + 1}: {what}" if mark is not None else what


def _validation_lines(err: ValidationError) -> list[str]:
    lines: list[str] = []
    for error in err.errors(include_url=False, include_input=True):
        rules = error.get("ctx", {}).get("error")
        if isinstance(rules, _RulesBroken):
            lines.extend(f"{key}: {reason}" for key, reason in rules.problems)
            continue
        key = ".".join(str(part) for part in error["loc"])
        line = f"{key}: {_reason(error)}" if key else _reason(error)
        if line not in lines:
            lines.append(line)
    return lines


def _reason(error: ErrorDetails) -> str:
    """What is wrong, in plain words; never the value itself (it may be long or personal)."""
    kind, loc, ctx = error["type"], error["loc"], error.get("ctx", {})
    field = str(loc[-1]) if loc else ""
    if kind == "missing":
        return "required"
    if kind in {"extra_forbidden", "invalid_key"}:
        return _unknown_key(loc)
    if field == "coordinator_email" and kind == "value_error":
        return "not a valid e-mail address"
    if kind == "string_pattern_mismatch":
        if field == "id":
            return "only lower-case letters, digits and '-', starting with a letter"
        return "only lower-case letters, digits, '_' and '-', starting with a letter"
    if kind in {"string_type", "int_type", "model_type", "dict_type", "list_type"} and (
        error.get("input") is None
    ):
        return "empty"
    if kind == "string_type":
        return "must be text"
    if kind == "enum":
        return f"must be {ctx.get('expected', 'one of the listed values')}"
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return "not a whole number"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "too_short" and field == "phases":
        return "needs at least one phase"
    if kind == "list_type":
        return "must be a list (one item per line, starting with '- ')"
    if kind in {"model_type", "dict_type"}:
        if field == "labels":
            return "must be a mapping like {de: Studium, en: medical school}"
        if _model_at(loc) is Phase:
            return "must be a phase with keys such as name, cadence, duration"
        return "must be lines of 'key: value'"
    message = error["msg"].removeprefix("Value error, ").strip()
    return message.splitlines()[0] if message else kind.replace("_", " ")


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    """``unknown key``, with the key meant when it is a near miss or sits in the wrong place."""
    key = str(loc[-1])
    model = _model_at(loc[:-1]) or Program
    known = list(model.model_fields)
    plain = re.sub(r"[\s-]+", "_", key.strip().lower())
    other = Phase if model is Program else Program
    if plain in known:
        return f"unknown key (did you mean {plain}?)"
    if plain in other.model_fields:
        if model is Phase:
            return "unknown key in a phase (it belongs at the top level: check the indentation)"
        return "unknown key at the top level (it belongs in a phase under phases:)"
    close = difflib.get_close_matches(plain, known, n=1)
    if not close and len(plain) >= 4:  # "email" for coordinator_email
        containing = [name for name in known if plain in name]
        close = containing if len(containing) == 1 else []
    return f"unknown key (did you mean {close[0]}?)" if close else "unknown key"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model that holds the keys at ``loc`` (``()``: the programme; ``phases.1``: a phase)."""
    model: type[BaseModel] = Program
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        inner = _model_in(field.annotation) if field is not None else None
        if inner is None:
            return None
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
