"""Replay recorded workflow histories: a non-deterministic change to a workflow fails here.

To re-record after an intended, versioned change:
    CASEM_RECORD_HISTORIES=1 .venv/bin/python -m pytest tests/caseworker/test_workflows.py -k runs_to_deletion
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from casem.services.caseworker.workflows import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_committed() -> None:
    assert [p.name for p in HISTORIES] == ["file_lifecycle.json"]


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", json.loads(path.read_text()))
    # The recorded run went through every step: a history that skips them would prove little.
    assert len(history.events) > 20
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
