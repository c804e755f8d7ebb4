"""How `casem up` and `casem run` start and stop.

* Ports are checked before anything starts, and a taken one is one line naming the port and the option
  that changes it (never a traceback, never a half-started process).
* SIGINT and SIGTERM always end the process: during start-up at once; once running, in-flight work gets the
  grace period, and a process still alive after it (or a second signal) exits anyway.
* The last line says it stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # asyncio is imported when a service runs: `--help` does without it
    import asyncio

GRACE_SECONDS = 10.0  # in-flight requests and messages get this long (servers use the same figure)
HARD_STOP_SECONDS = GRACE_SECONDS + 5.0  # then the process exits whatever is still running


@dataclass(frozen=True)
class PortOption:
    """A port the command listens on, and how the user changes it."""

    what: str  # "case-api HTTP"
    port: int
    flag: str  # "--http-port"
    env: str | None = None  # "CASEM_HTTP_PORT"

    @property
    def how(self) -> str:
        return f"{self.flag} (or {self.env})" if self.env else self.flag


def say(message: str) -> None:
    """A line for the person at the terminal (stderr, beside the logs)."""
    print(message, file=sys.stderr, flush=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    say(f"error: {message}")
    return typer.Exit(code)


def port_problem(host: str, ports: Sequence[PortOption]) -> str | None:
    """None when every port can be bound; else one line naming the taken ports and their options."""
    from casem.services.common.listen import port_free

    seen: dict[int, PortOption] = {}
    for option in ports:
        if option.port and option.port in seen:
            other = seen[option.port]
            return (
                f"{other.what} and {option.what} are both set to port {option.port}: "
                f"give one of them another with {other.flag} or {option.flag}"
            )
        seen[option.port] = option
    taken = [o for o in ports if not port_free(host, o.port)]
    if not taken:
        return None
    if len(taken) == 1:
        o = taken[0]
        return (
            f"port {o.port} on {host} ({o.what}) is already in use, perhaps by another casem: "
            f"choose another with {o.how}"
        )
    listed = ", ".join(f"{o.port} ({o.what}: {o.flag})" for o in taken)
    return f"ports already in use on {host}: {listed}; perhaps another casem is running: choose free ones"


def port_in_use_message(exc: Exception, ports: Sequence[PortOption]) -> str:
    """The line for a PortInUse raised after the check (something took the port in between)."""
    port = getattr(exc, "port", None)
    for option in ports:
        if option.port == port:
            return f"port {port} on {exc.host} ({option.what}) is already in use: choose another with {option.how}"  # type: ignore[attr-defined]
    return str(exc)


class DataDirLock:
    """One `casem up` per data directory: a second one would run a second relay and flavors over the same
    SQLite files and bus. An flock, released by the kernel when the process ends however it ends."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "casem-up.lock"
        self._file: Any = None

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise fail(
                f"another casem up (pid {holder}) is using the data directory {self.path.parent}: stop it first, "
                "or give this one its own directory with CASEM_DATA_DIR (and its own ports)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Interrupted(BaseException):
    """A stop signal arrived before the services were up.

    A BaseException, like KeyboardInterrupt, so that code between the signal and `casem up` does not take it for
    an error: SQLAlchemy wraps an Exception raised while it builds a statement in StatementError (seen in CI when
    SIGTERM landed during the migrations' CREATE TABLE), but lets exit exceptions through as they are."""


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def interruptible_startup() -> Any:
    """While starting (migrations, the Temporal dev server...), SIGINT and SIGTERM stop at once."""
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class StopSignals:
    """Inside the event loop: the first SIGINT/SIGTERM sets `stop`; the process then has HARD_STOP_SECONDS
    to finish before it exits anyway, and a second signal exits at once."""

    def __init__(self, name: str) -> None:
        import asyncio

        self.name = name
        self.stop = asyncio.Event()
        self.received: str | None = None

    def install(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.received is not None:
            say(f"{self.name}: second {sig.name}: stopping now, in-flight work is abandoned")
            os._exit(1)
        self.received = sig.name
        say(f"{self.name}: {sig.name} received, stopping (in-flight work gets up to {GRACE_SECONDS:.0f} s)")
        self.stop.set()
        import threading

        timer = threading.Timer(HARD_STOP_SECONDS, self._hard_stop)
        timer.daemon = True
        timer.start()

    def _hard_stop(self) -> None:
        say(f"{self.name}: still running {HARD_STOP_SECONDS:.0f} s after the signal: exiting now")
        os._exit(1)


def run_until_stopped(
    name: str,
    main: Callable[[asyncio.Event], Awaitable[None]],
    *,
    host: str,
    ports: Sequence[PortOption],
    after: Callable[[], None] | None = None,
) -> None:
    """Check the ports, run `main(stop)` until a signal sets `stop`, run `after` (what outlives the event loop,
    e.g. a child process) and say that it stopped. A port taken after the check is reported like the check
    reports it; any other failure keeps its traceback (it is a bug)."""
    import asyncio

    from casem.services.common.listen import PortInUse

    signals = StopSignals(name)

    async def guarded() -> None:
        signals.install()
        await main(signals.stop)

    started = time.monotonic()
    try:
        problem = port_problem(host, ports)
        if problem:
            raise fail(problem)
        asyncio.run(guarded())
    except PortInUse as exc:
        raise fail(port_in_use_message(exc, ports)) from None
    except (KeyboardInterrupt, Interrupted):
        pass
    finally:
        if after is not None:
            after()
    how = f" ({signals.received}, {time.monotonic() - started:.0f} s after start)" if signals.received else ""
    say(f"{name} stopped{how}")
