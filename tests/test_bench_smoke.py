"""The benchmark cannot rot: its quick form (tiny numbers, one repetition) runs through the
real code path — dev server, worker processes, time-skipping server — and prints every row of
its table. Figures are not checked: no test asserts a speed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.bench import ROWS

ROOT = Path(__file__).resolve().parent.parent
#: A figure in a table cell: "3.1 /s", "0.6 s", "427 KiB", "48 events".
FIGURE = re.compile(r"\d+(\.\d+)?")


def test_the_quick_benchmark_prints_every_row_of_its_table(tmp_path: Path) -> None:
    figures = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--quick", "--json", str(figures)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for key, label in ROWS.items():
        row = next((line for line in lines if line.startswith(f"| {label}")), None)
        assert row is not None, f"no row {label!r} in:\n{done.stdout[-3000:]}"
        tandem = row.split("|")[2]
        assert FIGURE.search(tandem), f"row {key} has no figure for Tandem: {row}"
    path = re.compile(r"\| (enrol|burst|scale|gateway|13-year lifecycle) · ")
    cpu = [line for line in lines if path.match(line)]
    assert {line.split(" · ")[0].removeprefix("| ") for line in cpu} == {
        "enrol",
        "burst",
        "scale",
        "gateway",
        "13-year lifecycle",
    }, "a CPU row per path"
    written = json.loads(figures.read_text(encoding="utf-8"))
    assert set(written["table"]) <= set(lines), "the JSON holds the table printed"
    assert set(written["figures"]) == {"enrol", "burst", "memory", "scale", "gateway"}
