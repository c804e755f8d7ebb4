"""Binding listening ports so that two servers never share one, and a taken port is one clear error.

gRPC servers are created with `grpc.so_reuseport` off (grpc_server.server_options): with it on, the default,
a second server on the same port binds without complaint and the kernel splits the connections between the
two. HTTP servers get a socket bound here and handed to uvicorn, so a taken port raises `PortInUse` in the
caller instead of uvicorn logging the error and exiting from inside the event loop.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import Any

IDLE_TICK_S = 1.0  # how often an idle HTTP server wakes (uvicorn's own loop: every 0.1 s)


class PortInUse(OSError):
    """A listener could not bind its port because something else listens there."""

    def __init__(self, what: str, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"{what}: port {port} on {host} is already in use")
        self.what = what
        self.host = host
        self.port = port


def split_address(address: str) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" -> (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def bind_tcp(host: str, port: int, what: str) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free one). SO_REUSEADDR only lets a restarted server
    take over its own port from connections still in TIME_WAIT: on Linux it never lets two sockets listen on
    one port (SO_REUSEPORT, never set here, would)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(what, host, port) from None
        raise
    sock.setblocking(False)
    return sock


def port_free(host: str, port: int) -> bool:
    """Whether host:port can be bound right now (a check before starting anything; the bind itself decides)."""
    if port == 0:
        return True
    try:
        bind_tcp(host, port, "check").close()
    except PortInUse:
        return False
    return True


def add_grpc_port(server: Any, address: str, what: str) -> int:
    """Bind a grpc(.aio) server to `address`; returns the port. Raises PortInUse when it is taken."""
    host, port = split_address(address)
    if not port_free(host, port):  # gRPC's own failure does not say why, and logs to stderr
        raise PortInUse(what, host, port)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        if not port_free(host, port):
            raise PortInUse(what, host, port) from None
        raise RuntimeError(f"{what} could not bind {address}: {exc}") from None
    if bound == 0:
        raise (
            PortInUse(what, host, port)
            if not port_free(host, port)
            else RuntimeError(f"{what} could not bind {address}")
        )
    return bound


def managed_uvicorn(config: Any) -> Any:
    """A uvicorn server whose caller owns SIGINT and SIGTERM, and that sleeps while idle.

    uvicorn replaces the process's signal handlers while it serves and, when it stops, raises every signal it
    caught once more: the process that asked it to stop on SIGTERM gets a second SIGTERM (and a traceback or
    an abrupt exit). This one leaves the handlers alone; the service stops it with `should_exit`.

    uvicorn's main loop also wakes ten times a second to look at `should_exit`; with several servers in one
    process (`casem up`) that is most of an idle process's wake-ups. This one ticks once a second (what the
    Date header needs) and setting `should_exit` wakes it at once, so stopping is as quick as before."""
    import asyncio
    import contextlib

    import uvicorn

    class ManagedServer(uvicorn.Server):
        _should_exit = False
        _exit_wake: Callable[[], None] | None = None

        @property  # type: ignore[override]
        def should_exit(self) -> bool:
            return self._should_exit

        @should_exit.setter
        def should_exit(self, value: bool) -> None:
            self._should_exit = value
            if value and self._exit_wake is not None:
                self._exit_wake()

        def install_signal_handlers(self) -> None:  # uvicorn before 0.29
            pass

        @contextlib.contextmanager
        def capture_signals(self) -> Any:  # uvicorn 0.29 and later
            yield

        async def main_loop(self) -> None:
            loop = asyncio.get_running_loop()
            exiting = asyncio.Event()

            def wake() -> None:
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                    loop.call_soon_threadsafe(exiting.set)

            self._exit_wake = wake
            try:
                # Counter 0: every tick refreshes the Date header (uvicorn does so on every tenth 0.1 s tick).
                while not await self.on_tick(0):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(exiting.wait(), IDLE_TICK_S)
            finally:
                self._exit_wake = None

    return ManagedServer(config)
