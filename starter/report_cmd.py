"""``tandem report``: the programme office's figures as a table, CSV, JSON or one HTML file.

Aggregates only (``tandem/report.py`` suppresses small cells); the SQL is in
``activities/report.py``. The HTML file is self-contained: its charts are inline SVG made by
Matplotlib, its style is inline, and it loads nothing when opened.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import asyncpg
import typer
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from rich.console import Console
from rich.table import Table

from activities.report import known_programs, report_rows
from starter.common import CommandError, console, database_url, run
from tandem.mail import TEMPLATES_DIR
from tandem.programs import ProgramError, load_program
from tandem.report import Count, Report, build_report
from tandem.settings import Settings, get_settings

if TYPE_CHECKING:  # Matplotlib is imported only when a chart is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

REPORT_TEMPLATES = TEMPLATES_DIR / "report"


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    HTML = "html"


def report(
    program: Annotated[
        str | None, typer.Option("--program", help="Only this programme (its id).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="DATE", help="Only tandems enrolled on or after DATE (YYYY-MM-DD)."
        ),
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format", "-f", help="table, csv, json or html (default: from -o's suffix, or table)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this new file, not stdout.")
    ] = None,
) -> None:
    """Aggregate figures for the programme office: tandems by status and phase, time to
    match, decline and rematch rates, check-ins answered per quarter, at risk, completed,
    ratings. Counts below 5 are shown as "<5"; no id or name appears."""
    day = parse_since(since)
    chosen = fmt or format_of(output) or Format.TABLE
    if output is not None:
        if output.exists():
            raise typer.BadParameter(f"{output} exists already", param_hint="--output")
        if not output.parent.is_dir():
            raise typer.BadParameter(f"no directory {output.parent}", param_hint="--output")
    settings = get_settings()
    result = run(collect(settings, program, day))
    if output is None:
        if chosen is Format.TABLE:
            print_table(result, console)
        else:
            typer.echo(render(result, chosen), nl=False)
        return
    text = render(result, chosen)
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise typer.BadParameter(f"{output} exists already", param_hint="--output") from None
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
        out.write(text)
    typer.echo(f"written: {output}", err=True)


def parse_since(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--since"
        ) from None


def format_of(output: Path | None) -> Format | None:
    """The format a file name asks for: ``report.html`` is HTML."""
    if output is None:
        return None
    suffix = output.suffix.lower().lstrip(".")
    return Format(suffix) if suffix in {"csv", "json", "html"} else None


async def collect(settings: Settings, program: str | None, since: date | None) -> Report:
    """Check the programme, read the rows, build the report."""
    conn = await asyncpg.connect(database_url(settings))
    try:
        files = {p.stem for p in settings.programs_dir.glob("*.yaml")}
        known = files | await known_programs(conn)
        if program is not None and program not in known:
            names = ", ".join(sorted(known)) or "none"
            raise CommandError(f"unknown programme {program!r} (known: {names})")
        start = datetime.combine(since, time(), UTC) if since else None
        tandems, ratings, mails = await report_rows(conn, program, start)
    finally:
        await conn.close()
    return build_report(
        tandems,
        ratings,
        mails,
        program=program,
        since=since,
        now=datetime.now(UTC),
        phase_order=phase_order(settings, [program] if program else sorted(files)),
    )


def phase_order(settings: Settings, programs: Sequence[str]) -> list[str]:
    """The phases of the programmes in their files' order (a bad file is left out)."""
    order: list[str] = []
    for program_id in programs:
        try:
            order += [p.name for p in load_program(settings.programs_dir, program_id).phases]
        except ProgramError:
            continue
    return order


def render(result: Report, fmt: Format) -> str:
    if fmt is Format.JSON:
        return result.model_dump_json(indent=2) + "\n"
    if fmt is Format.CSV:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["section", "item", "measure", "value"])
        writer.writerows(result.rows())
        return buf.getvalue()
    if fmt is Format.HTML:
        return render_html(result)
    buf = io.StringIO()
    print_table(result, Console(file=buf, width=100, color_system=None, force_terminal=False))
    return buf.getvalue()


# -- table ------------------------------------------------------------------------------


def print_table(result: Report, out: Console) -> None:
    scope = f"programme {result.program}" if result.program else "all programmes"
    cohort = f", enrolled since {result.since.isoformat()}" if result.since else ""
    out.print(f"[bold]Tandem report[/bold]: {scope}{cohort}", highlight=False)
    out.print(f"generated {result.generated_at:%Y-%m-%d %H:%M} UTC", highlight=False)

    ttm, dec = result.time_to_match, result.decisions
    figures = Table(title="Figures", title_justify="left", show_header=False)
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    for label, shown in (
        ("tandems", result.tandems.shown),
        ("completed", result.completed.shown),
        ("at risk (ever flagged)", result.at_risk.flagged.shown),
        ("at risk now", result.at_risk.now.shown),
        ("matched (introduced to a mentor)", ttm.matched.shown),
        ("time to match, median (days)", ttm.median_days.shown),
        ("time to match, 90th percentile (days)", ttm.p90_days.shown),
        ("declined", f"{dec.declined.count.shown} of {dec.declined.of.shown}"),
        ("decline rate (%)", dec.declined.rate.shown),
        ("rematched", f"{dec.rematched.count.shown} of {dec.rematched.of.shown}"),
        ("rematch rate (%)", dec.rematched.rate.shown),
        ("ratings", result.ratings.count.shown),
        ("rating, mean (1-5)", result.ratings.mean.shown),
        (
            "mails sent / refused / waiting",
            " / ".join(
                c.shown for c in (result.mails.sent, result.mails.refused, result.mails.waiting)
            ),
        ),
    ):
        figures.add_row(label, shown)
    out.print(figures)

    for title, rows in (
        ("By status", result.by_status),
        ("By phase", result.by_phase),
        ("Time to match", ttm.distribution),
    ):
        table = Table(title=title, title_justify="left")
        table.add_column("")
        table.add_column("tandems", justify="right")
        for row in rows:
            table.add_row(row.label, row.count.shown)
        out.print(table)

    checks = Table(title="Check-ins per quarter", title_justify="left")
    for name in ("quarter", "sent", "answered", "answered (%)"):
        checks.add_column(name, justify="left" if name == "quarter" else "right")
    for q in [*result.check_ins.quarters, result.check_ins.total]:
        checks.add_row(q.quarter, q.sent.shown, q.answered.shown, q.rate.shown)
    out.print(checks)

    out.print("[bold]Notes[/bold]")
    for i, note in enumerate(result.notes, 1):
        out.print(f"{i}. {note}", highlight=False, markup=False)


# -- HTML -------------------------------------------------------------------------------

_BAR = "#3b6ea5"
_SECOND = "#e0a030"
_MUTED = "#8a8f98"


def render_html(result: Report) -> str:
    env = Environment(
        loader=FileSystemLoader(REPORT_TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    charts = {
        "status": status_chart(result),
        "time_to_match": time_to_match_chart(result),
        "check_ins": check_ins_chart(result),
    }
    return env.get_template("report.html.j2").render(report=result, charts=charts)


def _axes(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure of its own (no pyplot state), drawn by the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.patch.set_alpha(0)
    ax = fig.add_subplot()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _svg(fig: Figure) -> Markup:
    """The figure as an inline ``<svg>`` element: text as paths (no font to load), no date,
    ids salted the same way every time."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "tandem-report"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    return Markup(text[text.index("<svg") :])  # noqa: S704 - Matplotlib's own SVG


def _bars(
    ax: Axes,
    positions: Sequence[float],
    cells: Sequence[Count],
    *,
    color: str,
    width: float,
    horizontal: bool = False,
) -> None:
    """Bars for the shown counts; a hidden count gets no bar, only its label ("<5", "≥5")."""
    heights = [c.value or 0 for c in cells]
    top = max(heights, default=0) or 1
    if horizontal:
        ax.barh(positions, heights, height=width, color=color)
        ax.set_xlim(0, max(top * 1.15, ax.get_xlim()[1]))
    else:
        ax.bar(positions, heights, width=width, color=color)
        ax.set_ylim(0, max(top * 1.15, ax.get_ylim()[1]))
    for pos, cell in zip(positions, cells, strict=True):
        shade = "black" if cell.value is not None else _MUTED
        at = (cell.value or 0) + top * 0.02
        if horizontal:
            ax.text(at, pos, cell.shown, va="center", ha="left", fontsize=9, color=shade)
        else:
            ax.text(pos, at, cell.shown, ha="center", va="bottom", fontsize=9, color=shade)


def _no_empty_scale(ax: Axes, cells: Sequence[Count], *, horizontal: bool = False) -> None:
    """Every count hidden (or none at all): a scale would only show zero."""
    if all(not c.value for c in cells):
        (ax.set_xticks if horizontal else ax.set_yticks)([])


def status_chart(result: Report) -> Markup:
    rows = result.by_status
    fig, ax = _axes(6.4, 0.45 * max(len(rows), 2) + 0.9)
    positions = list(range(len(rows)))
    _bars(ax, positions, [r.count for r in rows], color=_BAR, width=0.6, horizontal=True)
    ax.set_yticks(positions, [r.label.replace("_", " ") for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("tandems")
    ax.set_title("Tandems by status", loc="left", fontsize=11)
    _no_empty_scale(ax, [r.count for r in rows], horizontal=True)
    return _svg(fig)


def time_to_match_chart(result: Report) -> Markup:
    ttm = result.time_to_match
    fig, ax = _axes(6.4, 3.2)
    positions = list(range(len(ttm.distribution)))
    _bars(ax, positions, [r.count for r in ttm.distribution], color=_BAR, width=0.7)
    ax.set_xticks(positions, [r.label for r in ttm.distribution], fontsize=8)
    ax.set_ylabel("tandems")
    ax.set_title(
        f"Time to match (days; median {ttm.median_days.shown},"
        f" 90th percentile {ttm.p90_days.shown})",
        loc="left",
        fontsize=11,
    )
    _no_empty_scale(ax, [r.count for r in ttm.distribution])
    return _svg(fig)


def check_ins_chart(result: Report) -> Markup:
    from matplotlib.patches import Patch

    quarters = result.check_ins.quarters
    fig, ax = _axes(6.4, 3.2)
    if quarters:
        x = list(range(len(quarters)))
        _bars(ax, [i - 0.2 for i in x], [q.sent for q in quarters], color=_MUTED, width=0.4)
        _bars(ax, [i + 0.2 for i in x], [q.answered for q in quarters], color=_SECOND, width=0.4)
        ax.set_xticks(x, [q.quarter for q in quarters], fontsize=8)
        ax.legend(
            handles=[Patch(color=_MUTED, label="sent"), Patch(color=_SECOND, label="answered")],
            frameon=False,
            fontsize=8,
            ncols=2,
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
        )
    else:
        ax.text(0.5, 0.5, "no check-ins yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
    ax.set_ylabel("check-ins")
    ax.set_title("Check-ins sent and answered per quarter", loc="left", fontsize=11)
    _no_empty_scale(ax, [c for q in quarters for c in (q.sent, q.answered)])
    return _svg(fig)
