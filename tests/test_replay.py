"""Replay the stored histories (``tests/histories/``) against today's workflow code.

A change to ``TandemWorkflow`` that is not behind ``workflow.patched`` makes these fail.
Record new histories with ``TANDEM_RECORD_HISTORIES=1 make test``: files that exist are never
overwritten. The histories start a new baseline with the lifecycle core of issue 7.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, WorkflowRunner

from tandem.settings import Settings
from tests.support import HISTORIES
from worker import sandboxed_runner, workflow_runner
from workflows.codec import data_converter
from workflows.tandem import TandemWorkflow

FILES = sorted(HISTORIES.glob("*.json"))


def test_there_is_a_history_per_main_path() -> None:
    names = {p.stem.rsplit("-", 1)[0] for p in FILES}
    assert {
        "full-medical",  # automatic resume, phase confirmed, advanced, completed
        "decline-rematch",
        "needs-coordinator",
        "stop",
        "waiting-signal",
        "waiting-continued",
        "snooze",
        "undecided",
        "help",
        "pause-resume",
        "shadowing",
        "phase-check-later",
        "cadence-rematch",
        "re-enrolment",
    } <= names


#: What the worker runs (no sandbox), and the sandbox: every stored branch of the workflow
#: code is replayed in it, so a clock, random or I/O call in any of them fails here.
RUNNERS = {"worker": workflow_runner, "sandbox": sandboxed_runner}


@pytest.mark.parametrize("runner", sorted(RUNNERS))
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_history_replays(path: Path, runner: str) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    history = WorkflowHistory.from_json(f"replay-{path.stem}", data)
    chosen: WorkflowRunner = RUNNERS[runner]()
    replayer = Replayer(
        workflows=[TandemWorkflow],
        data_converter=data_converter(Settings()),
        workflow_runner=chosen,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


async def test_plain_histories_replay_when_payload_encryption_is_on() -> None:
    """Turning on TANDEM_PAYLOAD_KEYS must not break tandems that started without it: the
    codec passes payloads that are not encrypted through unchanged."""
    key = base64.b64encode(bytes(range(32))).decode()
    converter = data_converter(Settings(payload_keys=SecretStr(f"k1:{key}")))
    assert converter.payload_codec is not None
    replayer = Replayer(
        workflows=[TandemWorkflow], data_converter=converter, workflow_runner=workflow_runner()
    )

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for path in FILES:
            data = json.loads(path.read_text(encoding="utf-8"))
            yield WorkflowHistory.from_json(f"replay-{path.stem}", data)

    results = await replayer.replay_workflows(histories(), raise_on_replay_failure=False)
    assert len(FILES) > 10 and results.replay_failures == {}


def test_stored_histories_hold_no_participant_names_or_addresses() -> None:
    """The people of the tests (tests/support.py) never reach a workflow history."""
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        decoded = json.dumps(_decoded(json.loads(text)))
        for secret in ("Henrike", "MentorinM", "Jonas", "BeispielS", "example.org"):
            if secret == "example.org":
                # Only the programme office's functional address may appear (programme rules).
                leaked = [w for w in decoded.split('"') if w.endswith("example.org")]
                assert all(w.startswith("mentoring-hausarzt@") for w in leaked), path.name
            else:
                assert secret not in decoded, f"{secret!r} in {path.name}"


def _decoded(node: object) -> object:
    """Payload data is base64 in history JSON: decode it so the check sees the contents."""
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).decode("utf-8", "replace")
            if k == "data" and isinstance(v, str)
            else _decoded(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_decoded(v) for v in node]
    return node
