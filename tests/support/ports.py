"""Free loopback ports for tests that start servers and processes."""

from __future__ import annotations

import socket

# The kernel can hand a just-closed ephemeral port out again at the next bind: a test asking for several ports
# could give two services one port. No port leaves here twice in one test process.
_HANDED_OUT: set[int] = set()


def free_port(pair: bool = False) -> int:
    """A port nothing listens on now and never handed out before in this process; with `pair`, the next port is
    free too (Kafka's controller listens on port + 1)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        wanted = {port, port + 1} if pair else {port}
        if wanted & _HANDED_OUT or port >= 65535:
            continue
        if pair:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        _HANDED_OUT.update(wanted)
        return port
