"""Benchmark: what a tandem costs Temporal per year — history events and bytes, activities,
timers and billable actions — on the time-skipping server with the real worker.

    make bench-lifecycle     (or: .venv/bin/python -m tests.bench_lifecycle --tandems 3)

Each tandem is introduced, both say yes by phone, and then it runs in the study phase with no
answers (so the office gets one at-risk alert). The history of year 1 (with the decision) and
of years 2 and 3 (steady state: four check-ins a year) are measured apart. Figures, not
assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import uuid
from datetime import timedelta

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from starter.tandem_cmds import start_tandem
from tandem.answers import Answer, Intent
from tandem.models import Role, TandemState
from tandem.settings import Settings
from tests.bench_support import bench_stack
from tests.support import eventually, mentee, mentor, put_people, running_worker

YEAR = timedelta(days=365)
BY_TYPE = False
#: What Temporal bills as an action (approximately): starts, activities, timers, signals,
#: updates, search-attribute upserts, continue-as-new.
BILLABLE = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}


async def history_of(client: Client, workflow_id: str) -> list[tuple[int, int, int]]:
    """(event type, serialized size, event time in s) of every event of every run so far."""
    rows: list[tuple[int, int, int]] = []
    desc = (await client.get_workflow_handle(workflow_id).describe()).raw_description
    run_id: str | None = (
        desc.workflow_execution_info.first_run_id or desc.workflow_execution_info.execution.run_id
    )
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        for event in history.events:
            rows.append((event.event_type, event.ByteSize(), event.event_time.seconds))
        last = history.events[-1]
        attrs = last.workflow_execution_continued_as_new_event_attributes
        run_id = attrs.new_execution_run_id or None
    return rows


def summarise(rows: list[tuple[int, int, int]]) -> dict[str, float]:
    return {
        "events": len(rows),
        "kib": sum(size for _, size, _ in rows) / 1024,
        "activities": sum(t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for t, _, _ in rows),
        "timers": sum(t == EventType.EVENT_TYPE_TIMER_STARTED for t, _, _ in rows),
        "billable": sum(t in BILLABLE for t, _, _ in rows),
    }


async def one_tandem(env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool) -> tuple:
    s, m = f"S-{uuid.uuid4().hex[:6]}", f"M-{uuid.uuid4().hex[:6]}"
    await put_people(pool, [mentor(m)], [mentee(s)])
    client = env.client
    handle = await start_tandem(client, mentee(s), settings)

    async def status() -> str:
        state = await handle.query("state", result_type=TandemState)
        return state.status.value

    await eventually(status, lambda v: v == "introduced", timeout=60)
    for role in (Role.MENTEE, Role.MENTOR):
        answer = Answer(
            role=role, request_id="office:phone", intent=Intent.CONTINUE, answer_id=f"b-{role}"
        )
        await handle.execute_update("answer", answer)
    await eventually(status, lambda v: v == "active", timeout=60)
    await env.sleep(YEAR)
    year1 = await history_of(client, handle.id)
    await env.sleep(2 * YEAR)
    year3 = await history_of(client, handle.id)
    await handle.terminate("bench over")
    steady = year3[len(year1) :]
    if BY_TYPE:
        totals: dict[str, int] = {}
        for t, size, _ in steady:
            name = EventType.Name(t).removeprefix("EVENT_TYPE_")
            totals[name] = totals.get(name, 0) + size
        for name, size in sorted(totals.items(), key=lambda kv: -kv[1]):
            print(f"  {name:45} {size / 2:7.0f} B/year")
    return summarise(year1), {k: v / 2 for k, v in summarise(steady).items()}


async def bench(tandems: int) -> None:
    async with bench_stack(time_skipping=True) as stack:
        results = []
        async with running_worker(stack.env.client, stack.settings, stack.pool):
            for _ in range(tandems):
                results.append(await one_tandem(stack.env, stack.settings, stack.pool))
    for label, index in (("year 1 (match, decision)", 0), ("per steady year", 1)):
        keys = results[0][index].keys()
        figures = {k: statistics.median(r[index][k] for r in results) for k in keys}
        print(
            f"{label:26} events {figures['events']:6.0f}  history {figures['kib']:6.1f} KiB"
            f"  activities {figures['activities']:4.0f}  timers {figures['timers']:3.0f}"
            f"  billable actions {figures['billable']:4.0f}   (median of {len(results)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tandems", type=int, default=3)
    parser.add_argument("--by-type", action="store_true", help="history bytes by event type")
    args = parser.parse_args()
    global BY_TYPE
    BY_TYPE = args.by_type
    asyncio.run(bench(args.tandems))


if __name__ == "__main__":
    main()
