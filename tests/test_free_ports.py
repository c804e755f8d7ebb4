"""Free ports for tests and benches (casem.devtools.ports, tests/support/ports.py) lie outside the kernel's ephemeral
range, each pytest-xdist worker has a share no other touches, and no port is handed out twice in a process."""

from __future__ import annotations

import socket

import pytest

from casem.devtools import ports
from tests.support.ports import free_port


def test_worker_shares_lie_outside_the_ephemeral_range_and_never_overlap() -> None:
    low, high = ports._ephemeral_range()
    shares = [ports.share(worker, 4) for worker in range(4)]
    for one in shares:
        assert len(one) > 100 and (one.stop <= low or one.start > high)
    for i, one in enumerate(shares):
        for other in shares[i + 1 :]:
            assert not set(one) & set(other)


def test_this_workers_ports_are_its_own_and_never_handed_out_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw2")
    picked = [free_port() for _ in range(50)]
    pair = free_port(pair=True)
    assert len(set(picked)) == 50 and pair not in picked and pair + 1 not in picked
    assert all(port in ports.share(2, 3) for port in [*picked, pair])
    with socket.socket() as first, socket.socket() as second:  # both ports of the pair are free to bind
        first.bind(("127.0.0.1", pair))
        second.bind(("127.0.0.1", pair + 1))
