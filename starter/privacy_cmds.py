"""Data-protection duties of the programme office: ``tandem export PERSON_ID`` (Art. 15/20)
and ``tandem forget PERSON_ID`` (Art. 17)."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import typer
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.api.common.v1 import WorkflowExecution as ExecutionRef
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.erasure import erase, erasure_plan, new_pseudonym, scan
from activities.privacy import UnknownPerson, person_export
from starter.common import CommandError, connect_temporal, database_url, print_json, run
from tandem.settings import get_settings
from workflows.client import TandemClient, TandemNotFound, TandemRefused
from workflows.ids import mentee_id_of, workflow_id


async def export_of(dsn: str, person_id: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return await person_export(conn, person_id)
    except UnknownPerson:
        raise CommandError(f"nothing is stored about {person_id}") from None
    finally:
        await conn.close()


def export(
    person_id: Annotated[str, typer.Argument(help="The mentee's or mentor's id.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file (readable by you only), not stdout."
        ),
    ] = None,
) -> None:
    """Everything stored about one person, as JSON: their data on file, their tandems with
    what happened when, the mails sent to them, their replies as decided (GDPR Art. 15/20)."""
    data = run(export_of(database_url(), person_id))
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.exists():
        raise typer.BadParameter(f"{output} exists already", param_hint="--output")
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    typer.echo(f"written: {output}", err=True)


# -- erasure (Art. 17) --------------------------------------------------------------------

#: How long ``forget`` waits for a tandem to let go of the person (its update is done at
#: once; closing or continuing as new follows within seconds when workers run).
LET_GO_PATIENCE = 60.0
#: How long ``forget`` waits for Temporal to carry out the deletions it asked for (they run
#: in the background of the server; the dev server takes about half a minute).
DELETE_PATIENCE = 180.0


@dataclass
class ForgetReport:
    """What ``tandem forget`` did (or, with ``--dry-run``, would do): ids and counts only."""

    person_id: str
    dry_run: bool
    ended: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    executions_deleted: int = 0
    #: Deletions Temporal had not carried out yet when the command stopped waiting.
    deletions_pending: int = 0
    #: Where the person is still found afterwards (tables and Temporal): empty when done.
    still_found: dict[str, int] = field(default_factory=dict)


async def _runs(client: Client, workflow_id: str) -> list[tuple[str, bool]]:
    """Every run of a tandem as (run id, still running), its status asked of the run itself:
    visibility may lag behind a run that just closed or just began."""
    run_ids = [run.run_id async for run in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    latest = await _running(client, workflow_id)
    if latest is not None and latest not in run_ids:
        run_ids.append(latest)
    runs = []
    for run_id in run_ids:
        try:
            desc = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                continue  # deleted already; visibility has not caught up
            raise
        runs.append((run_id, desc.status is WorkflowExecutionStatus.RUNNING))
    return runs


async def _running(client: Client, workflow_id: str) -> str | None:
    """The run id of the tandem's running execution, or None."""
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    return desc.run_id if desc.status is WorkflowExecutionStatus.RUNNING else None


async def _let_go(client: Client, workflow_id: str, run_id: str) -> None:
    """Until the run that took the update has closed (ended, or continued as new)."""
    deadline = asyncio.get_running_loop().time() + LET_GO_PATIENCE
    while await _running(client, workflow_id) == run_id:
        if asyncio.get_running_loop().time() > deadline:
            raise CommandError(
                f"tandem {mentee_id_of(workflow_id)} did not let go within"
                f" {LET_GO_PATIENCE:g} s: is a worker running? Nothing was erased yet;"
                " run the command again"
            )
        await asyncio.sleep(0.2)


async def _deleted(client: Client, runs: list[tuple[str, str]]) -> int:
    """Wait until Temporal has deleted these runs; how many it had not when patience ran out."""
    deadline = asyncio.get_running_loop().time() + DELETE_PATIENCE
    pending = list(runs)
    while pending:
        still = []
        for wid, run_id in pending:
            try:
                await client.get_workflow_handle(wid, run_id=run_id).describe()
            except RPCError as err:
                if err.status is RPCStatusCode.NOT_FOUND:
                    continue
                raise
            still.append((wid, run_id))
        pending = still
        if not pending or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(1.0)
    return len(pending)


async def _history_mentions(
    client: Client, workflow_id: str, run_id: str, needles: list[str]
) -> bool:
    """Whether a run's history (payloads decoded, decrypted if a codec is set) holds one of
    the needles."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    history = await handle.fetch_history()
    codec = client.data_converter.payload_codec
    texts: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "data" in node and "metadata" in node:
                texts.append(json.dumps(node))
                payloads.append(json_format.ParseDict(node, Payload()))
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        else:
            texts.append(str(node))

    payloads: list[Payload] = []
    walk(json.loads(history.to_json()))
    if codec is not None and payloads:
        payloads = list(await codec.decode(payloads))
    texts += [p.data.decode("utf-8", "replace") for p in payloads]
    words = [n.lower() for n in needles]
    return any(w in t.lower() for t in texts for w in words)


async def forget_person(dsn: str, person_id: str, *, dry_run: bool) -> ForgetReport:
    conn = await asyncpg.connect(dsn)
    try:
        try:
            plan = await erasure_plan(conn, person_id)
        except UnknownPerson:
            raise CommandError(f"nothing is stored about {person_id}") from None
        needles = [person_id]
        for row in await conn.fetch(
            "SELECT email, first_name || ' ' || last_name AS name FROM mentees WHERE id = $1"
            " UNION SELECT email, first_name || ' ' || last_name FROM mentors WHERE id = $1",
            person_id,
        ):
            needles += [row["email"], row["name"]]
        client = await connect_temporal()
        tandems = TandemClient(client, get_settings().task_queue)
        report = ForgetReport(person_id, dry_run, rows=dict(plan.rows))
        running = {t: await _running(client, workflow_id(t)) for t in plan.tandems}
        for tandem, run_id in running.items():
            if run_id is not None:
                (report.ended if tandem == person_id else report.left).append(tandem)
        closed = [
            run_id
            for tandem in plan.tandems
            for run_id, running_now in await _runs(client, workflow_id(tandem))
            if not running_now
        ]
        if dry_run:
            report.executions_deleted = len(closed) + len(report.ended)
            return report
        # 1. The workflows let go of the person (the other side is told, neutrally).
        for tandem, run_id in running.items():
            if run_id is None:
                continue
            try:
                await tandems.forget(tandem, person_id)
            except TandemNotFound:
                continue  # it closed meanwhile
            except TandemRefused as err:
                raise CommandError(f"tandem {tandem} refused: {err.message}") from None
            await _let_go(client, workflow_id(tandem), run_id)
        # 2. The database: deleted or pseudonymised in one transaction.
        report.rows = await erase(conn, person_id, new_pseudonym())
        # 3. Temporal: every closed run of those tandems (the person's id is in them).
        deleted: list[tuple[str, str]] = []
        for tandem in plan.tandems:
            wid = workflow_id(tandem)
            for run_id, running_now in await _runs(client, wid):
                if running_now:
                    continue
                await client.workflow_service.delete_workflow_execution(
                    DeleteWorkflowExecutionRequest(
                        namespace=client.namespace,
                        workflow_execution=ExecutionRef(workflow_id=wid, run_id=run_id),
                    )
                )
                deleted.append((wid, run_id))
                report.executions_deleted += 1
        report.deletions_pending = await _deleted(client, deleted)
        # 4. The proof: no table and no remaining run of those tandems names them.
        report.still_found = await scan(conn, needles)
        for tandem in plan.tandems:
            wid = workflow_id(tandem)
            for run_id, running_now in await _runs(client, wid):
                if running_now and await _history_mentions(client, wid, run_id, needles):
                    key = "temporal.running_histories"
                    report.still_found[key] = report.still_found.get(key, 0) + 1
        return report
    finally:
        await conn.close()


def forget(
    person_id: Annotated[str, typer.Argument(help="The mentee's or mentor's id.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be erased.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Erase one person (GDPR Art. 17): their running tandems end (as mentee) or get a new
    mentor (as mentor), the other side told neutrally; their data on file, mails and reply
    addresses go, their id is replaced by a random pseudonym in the counts, and the closed
    workflow executions of their tandems are deleted in Temporal. Cannot be undone."""
    if not dry_run and not yes:
        typer.confirm(f"Erase {person_id} for good? This cannot be undone", abort=True)
    report = run(forget_person(database_url(), person_id, dry_run=dry_run))
    if as_json:
        print_json(asdict(report))
    else:
        _print_forget(report)
    if report.still_found:
        raise typer.Exit(1)


def _print_forget(report: ForgetReport) -> None:
    would = "would be " if report.dry_run else ""
    lines = [f"{'dry run: ' if report.dry_run else ''}{report.person_id}"]
    if report.ended:
        lines.append(f"  tandem {would}ended (the mentor told): {', '.join(report.ended)}")
    if report.left:
        lines.append(f"  {would}left as mentor (mentee told): {', '.join(report.left)}")
    for table, count in sorted(report.rows.items()):
        lines.append(f"  {table}: {count} row(s) {would}erased or pseudonymised")
    lines.append(f"  Temporal: {report.executions_deleted} execution(s) {would}deleted")
    if report.deletions_pending:
        lines.append(
            f"  Temporal: {report.deletions_pending} deletion(s) still under way on the server"
        )
    if not report.dry_run:
        if report.still_found:
            where = ", ".join(f"{k} ({v})" for k, v in sorted(report.still_found.items()))
            lines.append(f"  NOT DONE: still found in {where}")
        else:
            lines.append("  scan: found nowhere (tables and remaining runs)")
    typer.echo("\n".join(lines))
