"""Builders shared by the domain tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from casem.domain.cases import STANDARD_TYPE_ID, Case
from casem.domain.events import DomainEvent

ASSIGNEE = "5f0c6e1a-2b3c-4d5e-8f90-a1b2c3d4e5f6"


def new_case(**overrides: Any) -> Case:
    """An open case with its creation event already collected."""
    fields: dict[str, Any] = dict(
        id="c1", org_id="o1", project_id="p1", number=1, key="SEC-1", title="Disk full", type_id=STANDARD_TYPE_ID
    )
    fields.update(overrides)
    case = Case.open(actor_id="u1", **fields)
    case.collect_events()
    return case


def only_event(case: Case, change: Callable[[Case], object]) -> DomainEvent:
    """Apply one change to the case and return the single event it recorded."""
    change(case)
    [event] = case.collect_events()
    return event
