"""Where a benchmarked process spends its CPU time and memory, without adding a dependency.

CPU: a statistical profiler on ``ITIMER_PROF`` (no py-spy here, and cProfile sees one thread
while the SDK runs workflow activations on a thread pool). The kernel sends SIGPROF every 5 ms
of the process's CPU time; the handler takes the main thread's frame, or, when the main thread
is idle (its event loop in ``select``), the frames of the other threads that are not idle, or
counts the sample as outside Python (the SDK's Rust core, C code). Per sample it counts the
innermost project function on the stack, the library of the top frame and the top function.
A sampler of ``sys._current_frames()`` on a thread of its own would mostly see where threads
release the GIL (socket writes), not where CPU goes.

Memory: ``tracemalloc`` snapshots on SIGUSR1 (the first is the baseline, the second is
compared to it), by file, to show what a cached workflow is made of.
"""

from __future__ import annotations

import atexit
import collections
import json
import signal
import sys
import threading
import tracemalloc
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_PACKAGES = ("activities", "workflows", "tandem", "replies", "starter")
#: Where project code lives (prefixes of frame file names).
PROJECT = (
    *(f"{ROOT / d}/" for d in _PACKAGES),
    str(ROOT / "worker.py"),
    str(ROOT / "tests" / "bench_"),
)
#: (file name ending, function) of frames a thread sits in while it has nothing to do.
IDLE = {
    ("selectors.py", "select"),
    ("thread.py", "_worker"),
    ("threading.py", "wait"),
    ("queue.py", "get"),
    ("threading.py", "_wait_for_tstate_lock"),
}
INTERVAL = 0.005
#: Project frames that only wrap the SDK and the event loop (a sample whose innermost
#: project frame is one of them ran no project code).
OUTER = {
    "starter.common.run",
    "worker.main",
    "worker.run_worker",
    "worker.build_worker",
    "tests.bench_worker.main",
    "tests.bench_worker.bare_worker",
}


def _library(filename: str) -> str:
    """``temporalio/worker/workflow_sandbox``, ``pydantic``, ``asyncio``: a frame's package."""
    if filename.startswith(str(ROOT) + "/") and "site-packages" not in filename:
        rel = filename[len(str(ROOT)) + 1 :]
        return rel.rsplit("/", 1)[0] if "/" in rel else rel
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in filename:
            rel = filename.split(marker, 1)[1]
            parts = rel.split("/")
            if parts[0] == "temporalio" and len(parts) > 2:
                return "/".join(parts[:3]) if parts[1] == "worker" else "/".join(parts[:2])
            return parts[0].removesuffix(".py")
    return filename.rsplit("/", 1)[-1]


def _frame_name(frame: FrameType) -> str:
    code = frame.f_code
    rel = code.co_filename[len(str(ROOT)) + 1 :]
    return f"{rel.removesuffix('.py').replace('/', '.')}.{code.co_qualname}"


class Sampler:
    """Samples while started; ``stop`` writes the figures to ``out`` (state ``done``).
    ``on_signal`` makes SIGUSR2 start it and the next SIGUSR2 stop it, so that a benchmark
    samples its measured window only, not the worker's start. Main thread only."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.busy = 0.0
        self.samples = 0
        self.project: collections.Counter[str] = collections.Counter()
        self.library: collections.Counter[str] = collections.Counter()
        self.function: collections.Counter[str] = collections.Counter()
        self._running = False
        self._done = False

    def start(self) -> None:
        if self._running or self._done:
            return
        self._running = True
        self._main = threading.get_ident()
        signal.signal(signal.SIGPROF, self._sample_now)
        signal.setitimer(signal.ITIMER_PROF, INTERVAL, INTERVAL)
        atexit.register(self.stop)

    def stop(self) -> None:
        if not self._running:
            return
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, signal.SIG_IGN)
        self._running, self._done = False, True
        self.out.write_text(json.dumps(self.figures()), encoding="utf-8")

    def on_signal(self) -> None:
        signal.signal(signal.SIGUSR2, self._toggle)

    def _toggle(self, _signum: int, _frame: object) -> None:
        if self._running:
            self.stop()
        else:
            self.start()

    def figures(self) -> dict[str, Any]:
        return {
            "state": "done",
            "busy": self.busy,
            "samples": self.samples,
            "project": dict(self.project.most_common(40)),
            "library": dict(self.library.most_common(40)),
            "function": dict(self.function.most_common(40)),
        }

    def _sample_now(self, _signum: int, frame: FrameType | None) -> None:
        self.samples += 1
        if frame is not None and not _idle(frame):
            self._count(frame, 1.0)
            return
        others = [
            f for ident, f in sys._current_frames().items() if ident != self._main and not _idle(f)
        ]
        for other in others:
            self._count(other, 1.0 / len(others))
        if not others:
            self.busy += 1
            for view in (self.project, self.library, self.function):
                view["(outside Python: the SDK's Rust core, C)"] += 1

    def _count(self, top: FrameType, weight: float) -> None:
        code = top.f_code
        self.busy += weight
        self.library[_library(code.co_filename)] += weight
        self.function[f"{_library(code.co_filename)}:{code.co_qualname}"] += weight
        frame: FrameType | None = top
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith(PROJECT) and "site-packages" not in name:
                where = _frame_name(frame)
                if where not in OUTER:
                    self.project[where] += weight
                    return
                break
            frame = frame.f_back
        self.project["(no project code) " + _library(code.co_filename)] += weight


def _idle(frame: FrameType) -> bool:
    code = frame.f_code
    return (code.co_filename.rsplit("/", 1)[-1], code.co_name) in IDLE


class MemorySnapshots:
    """SIGUSR1: baseline, then the difference to it by file (top 15) into ``out``."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.base: tracemalloc.Snapshot | None = None

    def install(self) -> None:
        tracemalloc.start(1)
        signal.signal(signal.SIGUSR1, self._on_signal)

    def _on_signal(self, _signum: int, _frame: object) -> None:
        snap = tracemalloc.take_snapshot()
        if self.base is None:
            self.base = snap
            self.out.write_text(json.dumps({"state": "baseline"}), encoding="utf-8")
            return
        stats = snap.compare_to(self.base, "filename")
        top = [
            {
                "file": _library(s.traceback[0].filename)
                + "/"
                + Path(s.traceback[0].filename).name,
                "bytes": s.size_diff,
                "blocks": s.count_diff,
            }
            for s in stats[:15]
        ]
        total = sum(s.size_diff for s in stats)
        self.out.write_text(json.dumps({"state": "done", "total": total, "top": top}))


def top_costs(figures: dict[str, Any], view: str, n: int = 5) -> list[tuple[str, float]]:
    """The ``n`` largest shares of busy samples, in per cent."""
    busy = figures.get("busy") or 1
    ranked = sorted(figures[view].items(), key=lambda kv: -kv[1])
    return [(k, 100.0 * v / busy) for k, v in ranked[:n]]
