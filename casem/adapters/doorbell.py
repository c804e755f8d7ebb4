"""Wake-ups across processes on one machine for the embedded engines: doorbells next to a shared file.

casem.adapters.wakeup reaches the pollers of the writing process only. On PostgreSQL the outbox carries its
wake-ups across with LISTEN/NOTIFY (casem.adapters.storage.outbox_wakeup); the embedded engines (a tenant's
SQLite database, the embedded bus log) have no server to do that, so each file gets a doorbell directory,
`<file>.doorbells/` (0700):

* A process that waits for writes to the file (per channel and event loop) makes a FIFO there (0600, named
  `<pid>-<random>`), holds its read end in the event loop (`loop.add_reader`) and one write end of its own, so
  the read end never sees end-of-file. A byte arriving wakes the loop, which drains the FIFO and calls the
  in-process `notify(channel)`: nothing runs while nobody rings (no polling).
* A writer, after its commit or append, rings: one byte, non-blocking, into each FIFO of the directory (the
  listing is re-read only when the directory changed; the opened FIFOs are kept). A full pipe already holds a
  pending wake-up; a FIFO nobody reads any more (its process died without removing it: ENXIO on open, EPIPE on
  write) is removed, and so is a hidden FIFO whose process died before renaming it (see `_maker_died`). A writer
  skips its own process's FIFOs: the in-process `notify` already woke those.

A doorbell is an accelerator, never a dependency: where FIFOs cannot be made (no `os.mkfifo`, a filesystem that
refuses them) or a ring fails, it logs at debug and the readers find the write as before, at their next look.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import threading
import uuid
from pathlib import Path

from casem.adapters.private_files import FILE_MODE, private_directory
from casem.adapters.wakeup import call_on, notify

log = logging.getLogger(__name__)

DIRECTORY_SUFFIX = ".doorbells"
_MAKING_PREFIX = "."  # a FIFO being made, renamed once its read end is open: a ringer never finds it unread
_DRAIN_BYTES = 4096


def doorbell_directory(file: Path | str) -> Path:
    path = Path(file).resolve()  # every process finds the same directory, however it named the file
    return path.with_name(path.name + DIRECTORY_SUFFIX)


def _own_prefix() -> str:
    return f"{os.getpid()}-"  # computed per call: a forked child has its own


def _maker_died(hidden_name: str) -> bool:
    """Whether the process that was making this hidden FIFO (`.<pid>-<random>`) is gone: killed between mkfifo and
    rename, it left the FIFO behind, and nothing else ever removes it (ringers skip hidden names). A live maker's,
    this process's included, is left alone: it is about to rename it. Pids are judged in this pid namespace, as the
    skipping of a writer's own FIFOs already assumes."""
    pid, dash, _ = hidden_name.removeprefix(_MAKING_PREFIX).partition("-")
    if not (dash and pid.isdigit()) or int(pid) in (0, os.getpid()):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: alive, another user's
        return False
    return False


class _Bell:
    """This process's FIFO for one file, channel and event loop, shared by its users (refcounted)."""

    def __init__(self, directory: Path, channel: str, loop: asyncio.AbstractEventLoop) -> None:
        self.directory = directory
        self.channel = channel
        self.users = 0
        self._loop = loop
        self._read_fd: int | None = None
        self._keep_alive_fd: int | None = None
        self._reading = False
        self.path: Path | None = None  # None: no FIFO here (cannot be made); readers poll as before
        try:
            self._open()
        except (OSError, NotImplementedError, RuntimeError) as exc:  # also a loop without add_reader
            log.debug("no doorbell for %s: %s", directory, exc)
            if self.path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
                self.path = None
            self._close_fds()

    def _open(self) -> None:
        if not hasattr(os, "mkfifo"):
            raise OSError(errno.ENOTSUP, "os.mkfifo is not available")
        private_directory(self.directory, root=self.directory)
        name = f"{_own_prefix()}{uuid.uuid4().hex[:12]}"
        making = self.directory / f"{_MAKING_PREFIX}{name}"
        os.mkfifo(making, FILE_MODE)
        try:
            self._read_fd = os.open(making, os.O_RDONLY | os.O_NONBLOCK)
            self._keep_alive_fd = os.open(making, os.O_WRONLY | os.O_NONBLOCK)
            final = self.directory / name
            os.rename(making, final)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(making)
            raise
        self.path = final
        self._loop.add_reader(self._read_fd, self._drain)
        self._reading = True

    def _drain(self) -> None:
        fd = self._read_fd
        if fd is None:
            return
        with contextlib.suppress(BlockingIOError):
            while os.read(fd, _DRAIN_BYTES):
                pass
        notify(self.channel)

    def _close_fds(self) -> None:
        for fd in (self._read_fd, self._keep_alive_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._read_fd = self._keep_alive_fd = None

    def stop(self) -> None:
        """Gone from the directory first (ringers stop finding it), then the fds are closed."""
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.path = None
        if self._reading and self._read_fd is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._read_fd)
        self._reading = False
        self._close_fds()


class Listening:
    """One user's hold on its process's doorbell for a file and channel; `close()` when it stops waiting."""

    def __init__(self, bell: _Bell) -> None:
        self._bell: _Bell | None = bell

    @property
    def active(self) -> bool:
        """A FIFO is in place: writers in other processes wake this one."""
        return self._bell is not None and self._bell.path is not None

    @property
    def fifo(self) -> Path | None:
        return self._bell.path if self._bell is not None else None

    def close(self) -> None:
        bell, self._bell = self._bell, None
        if bell is None:
            return
        with _lock:
            bell.users -= 1
            if bell.users > 0:
                return
            key = (str(bell.directory), bell.channel, id(bell._loop))
            if _bells.get(key) is bell:
                del _bells[key]
        if bell._loop.is_closed():
            bell.stop()
        else:
            call_on(bell._loop, bell.stop)


_lock = threading.Lock()
_bells: dict[tuple[str, str, int], _Bell] = {}


def listen(file: Path | str, channel: str) -> Listening:
    """Wake this process's waiters on `channel` (on the running event loop) when another process rings `file`."""
    loop = asyncio.get_running_loop()
    directory = doorbell_directory(file)
    key = (str(directory), channel, id(loop))
    with _lock:
        bell = _bells.get(key)
        if bell is None or bell._loop is not loop:
            bell = _bells[key] = _Bell(directory, channel, loop)
        bell.users += 1
    return Listening(bell)


class Doorbells:
    """Rings the doorbells of one file: its writer calls `ring()` after each commit or append. Never raises.

    Thread-safe; `close()` when the writer closes (it holds the FIFOs it rang open)."""

    def __init__(self, file: Path | str) -> None:
        self.directory = doorbell_directory(file)
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None  # (inode, mtime_ns) of the directory when last listed
        self._names: list[str] = []
        self._fds: dict[str, int] = {}
        self.rung = 0  # FIFOs written to (observability, tests)
        self.removed = 0  # FIFOs of dead processes removed

    def ring(self) -> None:
        try:
            with self._lock:
                self._ring()
        except Exception as exc:  # noqa: BLE001 - an accelerator: the readers still find the write by polling
            log.debug("doorbells of %s not rung: %s", self.directory, exc)

    def _ring(self) -> None:
        try:
            found = os.stat(self.directory)
        except FileNotFoundError:  # nobody ever listened
            return
        seen = (found.st_ino, found.st_mtime_ns)
        if seen != self._seen:
            self._seen = seen
            own = _own_prefix()
            listed = os.listdir(self.directory)
            for name in listed:
                if name.startswith(_MAKING_PREFIX) and _maker_died(name):
                    self._remove(name)
            self._names = [name for name in listed if not name.startswith(_MAKING_PREFIX) and not name.startswith(own)]
            for gone in self._fds.keys() - set(self._names):
                os.close(self._fds.pop(gone))
        for name in self._names:
            fd = self._fds.get(name)
            if fd is None:
                try:
                    fd = self._fds[name] = os.open(self.directory / name, os.O_WRONLY | os.O_NONBLOCK)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:  # no reader: its process died without removing it
                        self._remove(name)
                    elif exc.errno != errno.ENOENT:  # ENOENT: removed since the listing
                        log.debug("doorbell %s not opened: %s", name, exc)
                    continue
            try:
                os.write(fd, b"\0")
                self.rung += 1
            except BlockingIOError:  # the pipe is full: a wake-up is pending already
                pass
            except BrokenPipeError:  # its reader is gone
                os.close(self._fds.pop(name))
                self._remove(name)

    def _remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.directory / name)
            self.removed += 1

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds.clear()
            self._names = []
            self._seen = None
