"""Every service takes what its start-up made out of the cyclic collector's reach before its work begins
(casem/cli/runtime.py, `_freeze_startup_objects`): a full collection walking the modules, classes and engines of
the process cost case creation about an eighth of its CPU."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Iterator

import pytest

from casem.cli import runtime


@pytest.fixture
def collector_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector_restored")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    gc.unfreeze()
    _, older, oldest = gc.get_threshold()
    made_at_start_up = [[] for _ in range(100)]  # objects the collector tracks

    runtime._freeze_startup_objects()

    assert gc.get_freeze_count() > len(made_at_start_up)
    assert gc.get_threshold() == (runtime.YOUNG_GENERATION_THRESHOLD, older, oldest)
    assert runtime.YOUNG_GENERATION_THRESHOLD > 700  # Python's default, which the batches outran
    gc.collect()
    # A full collection leaves the frozen objects where they are: ours are still out of every generation it walks.
    # (Not the frozen count before and after: another thread of the test process may free a frozen object meanwhile.)
    walked = {id(tracked) for tracked in gc.get_objects()}
    assert not any(id(made) in walked for made in made_at_start_up)


@pytest.mark.parametrize("service", sorted(runtime.RUNNABLE))
def test_each_service_freezes_its_start_up_before_it_works(service: str) -> None:
    source = inspect.getsource(runtime.RUNNABLE[service].main)
    assert "_freeze_startup_objects()" in source, f"{service} starts without freezing what its start-up made"
    # After its imports: the modules it loads are most of what start-up makes.
    last_import = max(i for i, line in enumerate(source.splitlines()) if line.lstrip().startswith("from "))
    freeze = next(i for i, line in enumerate(source.splitlines()) if "_freeze_startup_objects()" in line)
    assert freeze > last_import


def test_casem_up_freezes_once_its_services_started() -> None:
    source = inspect.getsource(runtime._run_stack)
    assert source.index("_print_banner(") < source.index("_freeze_startup_objects()") < source.index("stop.wait()")
