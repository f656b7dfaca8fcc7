"""Workflow ids, both directions: one tandem per mentee, so enrolling twice starts one."""

from __future__ import annotations

PREFIX = "tandem-"


def workflow_id(mentee_id: str) -> str:
    return f"{PREFIX}{mentee_id}"


def mentee_id_of(workflow_id: str) -> str:
    if not workflow_id.startswith(PREFIX):
        raise ValueError(f"not a tandem workflow id: {workflow_id!r}")
    return workflow_id.removeprefix(PREFIX)
