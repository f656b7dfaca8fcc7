"""The bare workflows the benchmark puts beside Tandem's: the same timers and activities (by
count and order), nothing else — no state model, no search attributes, no lock, no sandbox
passthrough beyond what the worker configures for both. Activities are named by string, so
this module imports nothing but the SDK (the sandbox re-runs it for every new run).

Each step is an activity kind: ``noop`` workers do nothing for every kind; ``io`` workers do
the least real I/O the kind stands for (``tests/bench_worker.py``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow

#: Today's enrol → introduced as the issue measured it: five activities.
ENROL_STEPS = ["event", "seat", "mail", "mail", "event"]
#: A check-in: one mail to each of the pair (the second also writes the event row).
NUDGE_STEPS = ["mail", "mail+event"]
ACTIVITY_TIMEOUT = timedelta(seconds=60)
#: What a parked bare workflow waits for (Tandem's first-meeting window, its cadence).
PARK = timedelta(days=30)
CADENCE = timedelta(days=91)


@dataclass
class BareInput:
    """Ids only, like a minimal workflow would carry."""

    key: str
    steps: list[str] = field(default_factory=list)
    #: Nudge burst: when the check-in is due (seconds since the epoch), as Tandem's
    #: ``next_nudge_at``: the same instant for every workflow, however late it started.
    due_at: float = 0.0
    #: Year and lifecycle shapes: (seconds to sleep, activity steps after it) per period.
    periods: list[tuple[float, list[str]]] = field(default_factory=list)
    #: Lifecycle: continue as new after this many periods (0: never), keeping the rest.
    continue_after: list[int] = field(default_factory=list)
    #: Enrol: park on a timer once the steps are done (a tandem waits for the first meeting).
    park: bool = True


async def _run_steps(key: str, steps: list[str]) -> None:
    for step in steps:
        await workflow.execute_activity(
            "bare_step", args=[key, step], start_to_close_timeout=ACTIVITY_TIMEOUT
        )


@workflow.defn
class BareSleeping:
    """Started, then asleep: the least a cached workflow can be."""

    @workflow.run
    async def run(self, input: BareInput) -> None:
        await asyncio.sleep(PARK.total_seconds())


@workflow.defn
class BareEnrol:
    """Enrol → introduced: the steps in order, then asleep until the first meeting is over."""

    @workflow.run
    async def run(self, input: BareInput) -> None:
        await _run_steps(input.key, input.steps)
        if input.park:
            await asyncio.sleep(PARK.total_seconds())


@workflow.defn
class BareNudge:
    """Asleep until a check-in is due, its mails, asleep until the next one."""

    @workflow.run
    async def run(self, input: BareInput) -> None:
        await asyncio.sleep(max(input.due_at - workflow.now().timestamp(), 0.001))
        await _run_steps(input.key, input.steps)
        await asyncio.sleep(CADENCE.total_seconds())


@workflow.defn
class BarePeriods:
    """A year or a whole lifecycle: per period a timer and its activities; continue as new
    where Tandem does (its phase changes); an ``answer`` update per answer, as Tandem takes."""

    def __init__(self) -> None:
        self.answers = 0

    @workflow.run
    async def run(self, input: BareInput) -> int:
        periods = list(input.periods)
        cut = input.continue_after[0] if input.continue_after else 0
        for i, (sleep, steps) in enumerate(periods):
            if cut and i == cut:
                workflow.continue_as_new(
                    BareInput(
                        key=input.key,
                        periods=periods[i:],
                        continue_after=[c - i for c in input.continue_after[1:]],
                    )
                )
            if sleep > 0:
                await asyncio.sleep(sleep)
            await _run_steps(input.key, steps)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.answers

    @workflow.update
    async def answer(self, answer_id: str) -> int:
        self.answers += 1
        return self.answers


BARE_WORKFLOWS = [BareSleeping, BareEnrol, BareNudge, BarePeriods]
