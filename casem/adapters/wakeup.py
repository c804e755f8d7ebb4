"""Wake-ups inside one process: a writer tells the pollers of the same process that there is something to read.

A poller that found nothing backs off (up to about a second) so that an idle process stays idle; without a
wake-up the first write after a quiet spell would wait for that back-off. When the writer runs in the same
process (`casem up`: case-api commits an outbox row the relay reads, the relay appends to the embedded log the
flavors read) it calls `notify(channel)`, and every waiter on that channel returns at once. Writers in other
processes are not seen here by themselves: something carries their wake-up across and calls `notify` in the
reader's process. On PostgreSQL the outbox's LISTEN/NOTIFY does (casem.adapters.storage.outbox_wakeup); for the
embedded engines (a SQLite tenant database in a file, the embedded bus log) the file's doorbells do
(casem.adapters.doorbell). Where neither can (no FIFOs on that filesystem, LISTEN turned off), readers find the
write at their next back-off tick.

Thread- and loop-safe: a waiter belongs to the event loop it was made on; `notify` may be called from any
thread or loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable


class Waiter:
    """One poller's wake-up on a channel: `clear()` before looking, then `wait(timeout)` if it found nothing,
    so a write between the look and the wait is not missed."""

    def __init__(self, channel: str, loop: asyncio.AbstractEventLoop) -> None:
        self.channel = channel
        self._loop = loop
        self._set = False
        # The current wait's future, resolved by a wake or its timer: no task per wait, as asyncio.wait_for
        # would make (an idle poller waits a few times a second).
        self._waiting: asyncio.Future[bool] | None = None

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        """Woken since the last `clear()`."""
        return self._set

    async def wait(self, timeout: float) -> bool:
        """True when woken, False when the timeout passed first."""
        if self._set:
            return True
        waiting: asyncio.Future[bool] = self._loop.create_future()
        self._waiting = waiting
        timer = self._loop.call_later(timeout, _resolve, waiting, False)
        try:
            return await waiting
        finally:
            timer.cancel()
            if self._waiting is waiting:
                self._waiting = None

    def _set_here(self) -> None:
        self._set = True
        if self._waiting is not None:
            _resolve(self._waiting, True)

    def _wake(self) -> None:
        call_on(self._loop, self._set_here)

    def close(self) -> None:
        _unregister(self)


_lock = threading.Lock()
_waiters: dict[str, set[Waiter]] = {}


def waiter(channel: str) -> Waiter:
    """A waiter on `channel` for the running event loop; `close()` it when the poller stops."""
    made = Waiter(channel, asyncio.get_running_loop())
    with _lock:
        _waiters.setdefault(channel, set()).add(made)
    return made


def call_on(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    """Run `fn` on `loop`: now when called from it, else soon from whatever thread calls; not at all once the loop
    is closed (nobody waits on it any more)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fn()
    elif not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(fn)


def _resolve(waiting: asyncio.Future[bool], woken: bool) -> None:
    if not waiting.done():
        waiting.set_result(woken)


def notify(channel: str) -> None:
    with _lock:
        waiting = list(_waiters.get(channel, ()))
    for each in waiting:
        each._wake()


def _unregister(gone: Waiter) -> None:
    with _lock:
        waiting = _waiters.get(gone.channel)
        if waiting is not None:
            waiting.discard(gone)
            if not waiting:
                del _waiters[gone.channel]


def outbox_channel(tenant: str) -> str:
    return f"outbox:{tenant}"


def bus_channel(path: str) -> str:
    return f"bus:{path}"
