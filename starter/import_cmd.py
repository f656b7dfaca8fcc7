"""``tandem import mentors|mentees FILE.csv``: check every row, then apply all of them or none."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, cast

import asyncpg
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from activities.people import (
    Conn,
    ImportCounts,
    ProgressHook,
    apply_mentees,
    apply_mentors,
    upsert_programs,
)
from starter.common import CommandError, database_url, err_console, fail, print_json, run
from tandem.csv_import import RowError, count_lines, parse_mentees, parse_mentors
from tandem.models import Mentee, Mentor
from tandem.programs import Program, ProgramError, load_programs
from tandem.settings import get_settings

Kind = Literal["mentors", "mentees"]
People = Sequence[Mentor] | Sequence[Mentee]

#: Files with more data rows than this get a progress bar (never in ``--json`` mode).
PROGRESS_ABOVE = 500

app = typer.Typer(
    help="Import mentors or mentees from a CSV file: every row is checked, all or nothing applied.",
    no_args_is_help=True,
)


class ImportRejected(CommandError):
    """The file has bad rows, so nothing was applied; ``errors`` names each by line."""

    def __init__(self, path: Path, errors: list[RowError]) -> None:
        self.errors = errors
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{path.name}: nothing imported: {errors[0]}{more}")


def read_csv(path: Path) -> bytes:
    """The file's bytes, or a one-line refusal."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise CommandError(f"{path} is a directory, not a CSV file") from None
    except OSError as err:
        raise CommandError(f"cannot read {path}: {err.strerror or err}") from None


def validate(
    kind: Kind, data: bytes, programs: dict[str, Program], on_row: Callable[[], None] | None = None
) -> tuple[People, list[RowError]]:
    """Every valid row and every error of a file of this kind."""
    if kind == "mentors":
        mentors = parse_mentors(data, programs, on_row=on_row)
        return mentors.rows, mentors.errors
    mentees = parse_mentees(data, programs, on_row=on_row)
    return mentees.rows, mentees.errors


async def apply(
    conn: Conn,
    kind: Kind,
    rows: People,
    programs: dict[str, Program],
    on_progress: ProgressHook | None = None,
) -> ImportCounts:
    """Store the programmes and the people in one transaction."""
    async with conn.transaction():
        await upsert_programs(conn, programs)
        if kind == "mentors":
            return await apply_mentors(conn, cast(Sequence[Mentor], rows), on_progress=on_progress)
        return await apply_mentees(conn, cast(Sequence[Mentee], rows), on_progress=on_progress)


async def import_file(
    pool_or_conn: asyncpg.Pool | Conn,
    kind: Kind,
    path: Path,
    programs: dict[str, Program],
) -> ImportCounts:
    """Read, check and apply one file; raises ``ImportRejected`` (nothing applied) on bad rows.

    Does not wake waiting tandems: a caller importing mentors into a running system calls
    ``starter.tandem_cmds.wake_waiting_tandems`` itself when ``counts.changed``.
    """
    rows, errors = validate(kind, read_csv(path), programs)
    if errors:
        raise ImportRejected(path, errors)
    if isinstance(pool_or_conn, asyncpg.Pool):
        async with pool_or_conn.acquire() as conn:
            return await apply(conn, kind, rows, programs)
    return await apply(pool_or_conn, kind, rows, programs)


# -- commands ------------------------------------------------------------------------------

FileArg = Annotated[Path, typer.Argument(help="The CSV file (UTF-8, ';' or ',').", metavar="FILE")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Only check the file; apply nothing.")]


@app.command("mentors")
def mentors(file: FileArg, as_json: JsonOpt = False, dry_run: DryRunOpt = False) -> None:
    """Import mentors from a CSV file: all rows or none.

    Columns: id, first_name, last_name, email, programs, region, specialty, capacity, language.

    programs: ids separated by |. language: de or en (empty = de). Optional: salutation
    (Frau, Herr or empty) and title (Dr., Prof. Dr., ...), for the greeting of every mail.
    """
    _import("mentors", file, as_json=as_json, dry_run=dry_run)


@app.command("mentees")
def mentees(file: FileArg, as_json: JsonOpt = False, dry_run: DryRunOpt = False) -> None:
    """Import mentees from a CSV file: all rows or none.

    Columns: id, first_name, last_name, email, program, phase, region, specialty,
    expected_phase_end, language.

    phase: empty (or no column) = the programme's first phase. expected_phase_end:
    YYYY-MM-DD or empty. language: de or en (empty = de). Optional: salutation (Frau, Herr
    or empty) and title (Dr., Prof. Dr., ...), for the greeting of every mail.
    """
    _import("mentees", file, as_json=as_json, dry_run=dry_run)


def _import(kind: Kind, path: Path, *, as_json: bool, dry_run: bool) -> None:
    try:
        programs = load_programs(get_settings().programs_dir)
        data = read_csv(path)
    except (CommandError, ProgramError) as err:
        fail(str(err))
    rows = _check(kind, path, data, programs, as_json=as_json)
    result: dict[str, Any] = {"kind": kind, "file": str(path), "ok": True, "rows": len(rows)}
    if dry_run:
        result["dry_run"] = True
        _report(result, f"{kind}: {len(rows)} rows valid, nothing applied (dry run)", as_json)
        return
    try:
        dsn = database_url()
    except CommandError as err:
        fail(str(err))
    with _progress(enabled=not as_json and len(rows) > PROGRESS_ABOVE) as progress:
        task = progress.add_task(f"importing {kind}", total=len(rows))
        counts = run(
            _apply_file(
                dsn, kind, rows, programs, lambda done: progress.update(task, completed=done)
            )
        )
    result.update(counts.as_dict())
    if kind == "mentors" and counts.changed:
        woken, warning = run(_wake(dsn))
        result["woken_tandems"] = woken
        if warning:
            result["warning"] = warning
            err_console.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)
    if counts.updated:
        resent, warning = run(_resend(dsn))
        if resent:
            result["tandems_resending_mail"] = resent
        if warning:
            result["warning"] = warning
            err_console.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)
    summary = f"{kind}: {counts.created} created, {counts.updated} updated, "
    _report(result, summary + f"{counts.unchanged} unchanged", as_json)


def _check(
    kind: Kind, path: Path, data: bytes, programs: dict[str, Program], *, as_json: bool
) -> People:
    """The valid rows; on any bad row, every error is printed and the command exits 1."""
    lines = count_lines(data)
    with _progress(enabled=not as_json and lines > PROGRESS_ABOVE + 1) as progress:
        task = progress.add_task("checking rows", total=max(lines - 1, 0))
        rows, errors = validate(kind, data, programs, on_row=lambda: progress.advance(task))
    if errors:
        _reject(kind, path, errors, as_json=as_json)
    return rows


async def _apply_file(
    dsn: str,
    kind: Kind,
    rows: People,
    programs: dict[str, Program],
    on_progress: ProgressHook,
) -> ImportCounts:
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.PostgresError as err:
        raise CommandError(f"cannot use the database: {_first_line(err)}") from None
    try:
        return await apply(conn, kind, rows, programs, on_progress)
    except asyncpg.PostgresError as err:
        raise CommandError(f"nothing imported: database error: {_first_line(err)}") from None
    finally:
        await conn.close()


async def _wake(dsn: str) -> tuple[int | None, str | None]:
    """Tell tandems waiting for a mentor to look again. Best effort: the import is committed."""
    try:
        from starter.tandem_cmds import wake_waiting_tandems

        return await wake_waiting_tandems(dsn), None
    except Exception as err:  # they retry on their own schedule anyway
        reason = _first_line(err) or err.__class__.__name__
        return (
            None,
            f"mentors imported; waiting tandems will retry on their daily schedule: {reason}",
        )


async def _resend(dsn: str) -> tuple[int, str | None]:
    """Refused mails go out again to corrected addresses. Best effort: the import is committed
    and ``tandem retry ID`` does the same."""
    try:
        from starter.tandem_cmds import resend_corrected_mail

        return await resend_corrected_mail(dsn), None
    except Exception as err:
        reason = _first_line(err) or err.__class__.__name__
        return 0, f"people imported; refused mails were not sent again ({reason}): tandem retry ID"


def _reject(kind: Kind, path: Path, errors: list[RowError], *, as_json: bool) -> NoReturn:
    """Every bad row on stderr (and as JSON on stdout if asked), then exit 1."""
    if as_json:
        print_json(
            {
                "kind": kind,
                "file": str(path),
                "ok": False,
                "errors": [{"line": e.line, "reason": e.reason} for e in errors],
            }
        )
    for error in errors:
        err_console.print(str(error), highlight=False, markup=False, soft_wrap=True)
    bad_lines = len({e.line for e in errors})
    err_console.print(
        f"error: {path.name}: {bad_lines} bad line(s), nothing imported",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    raise typer.Exit(1)


def _report(result: dict[str, Any], summary: str, as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        typer.echo(summary)


@contextmanager
def _progress(*, enabled: bool) -> Iterator[Progress]:
    """A transient bar on stderr for long files; a silent stand-in otherwise."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
        disable=not enabled,
    )
    with progress:
        yield progress


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else ""
