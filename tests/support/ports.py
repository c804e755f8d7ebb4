"""Free loopback ports for tests that start servers and processes: below the kernel's ephemeral range
(casem/devtools/ports.py says why), each pytest-xdist worker taking them from a share of its own, so that two workers
never pick the same one."""

from __future__ import annotations

import os

from casem.devtools import ports


def _xdist_worker() -> tuple[int, int]:
    """This process's worker number and the number of workers (0 of 1 without xdist)."""
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    number = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return (int(number) if number.isdigit() else 0), workers


def free_port(pair: bool = False) -> int:
    """A port nothing listens on now, outside the kernel's ephemeral range and in this worker's share, never handed
    out before in this process; with `pair`, the next port is free too (Kafka's controller listens on port + 1)."""
    worker, workers = _xdist_worker()
    return ports.free_port(pair, worker=worker, workers=workers)
