"""Free loopback ports for tests and benches that start servers and processes.

A port the kernel hands out for a bind to port 0 comes from its ephemeral range, the same range it takes the local
port of every outgoing connection from. Between the moment a caller picks such a port and the moment its server
binds it, any connection made meanwhile (a test's client, an engine's own) may be given that very port, and the
server fails with "Address already in use": CI saw Kafka's controller (tests/outage) and `casem up` (tests/cli) fail
so. The ports handed out here lie below the ephemeral range instead, where the kernel never picks one on its own;
callers running side by side (pytest-xdist workers) each take them from a share of their own, so that two never
pick the same one.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10_000  # above the well-known and most registered ports
# Linux's default ephemeral range, where /proc does not say (macOS's, 49152-65535, lies above it too).
DEFAULT_EPHEMERAL = (32_768, 60_999)

# No port leaves here twice in one process.
_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(part) for part in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL
    return low, high


def share(worker: int = 0, workers: int = 1) -> range:
    """The ports of `worker` (0-based) of `workers` side by side: below the ephemeral range (or above it, where it
    starts too low), split evenly between them."""
    low, high = _ephemeral_range()
    start, stop = (LOWEST, low - 1) if low - LOWEST >= 2_000 else (high + 1, 65_534)
    workers = max(1, workers)
    worker %= workers
    size = (stop - start) // workers
    return range(start + worker * size, start + (worker + 1) * size)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(pair: bool = False, worker: int = 0, workers: int = 1) -> int:
    """A port nothing listens on now, outside the kernel's ephemeral range, in this worker's share, never handed out
    before in this process; with `pair`, the next port is free too (Kafka's controller listens on port + 1)."""
    ports = share(worker, workers)
    for _ in range(1_000):
        port = random.randrange(ports.start, ports.stop - 1)
        wanted = {port, port + 1} if pair else {port}
        if wanted & _HANDED_OUT or not all(_bindable(p) for p in wanted):
            continue
        _HANDED_OUT.update(wanted)
        return port
    raise RuntimeError(f"no free loopback port in {ports.start}-{ports.stop - 1}")
