"""What the topology says is built matches what the code runs: a workload is built when `casem run` can
start its service and, for a case-event-handler flavor, the flavor registry has it. The Helm chart and the
report read the topology's answer, so a stale NOT_BUILT_YET would deploy a crash-looping workload or hide a
built one."""

from __future__ import annotations

import pytest

from casem.cli.runtime import RUNNABLE
from casem.services.case_event_handler.framework import FLAVORS
from casem.services.case_event_handler.service import load_flavor
from casem.topology.config import workloads
from casem.topology.services import EVENT_HANDLER_FLAVORS, NOT_BUILT_YET, built

load_flavor("audit-trail")  # imports every flavor module, filling the registry


def _runs(service: str, flavor: str | None) -> bool:
    if service not in RUNNABLE:
        return False
    if flavor is not None and service == "case-event-handler":
        return flavor in FLAVORS
    return True


@pytest.mark.parametrize(("service", "flavor"), workloads(), ids=lambda w: str(w))
def test_built_status_matches_the_code(service: str, flavor: str | None) -> None:
    assert built(service, flavor) == _runs(service, flavor), (
        f"{service} {flavor or ''}: the topology says {'built' if built(service, flavor) else 'not built yet'}; "
        "update casem/topology/services.py NOT_BUILT_YET"
    )


def test_every_not_built_entry_is_a_workload() -> None:
    assert set(workloads()) >= NOT_BUILT_YET
    assert set(workloads(built_only=True)) == set(workloads()) - NOT_BUILT_YET
    assert built("case-event-handler")  # a service with a built flavor is built
    assert len([f for f in EVENT_HANDLER_FLAVORS if built("case-event-handler", f)]) == len(FLAVORS)
