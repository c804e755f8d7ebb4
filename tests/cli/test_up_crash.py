"""`casem up` survives its own crash: its Temporal dev server dies with it, and a dev server an earlier run left
on the same state file (one without the parent-death signal) is stopped by the next start, which then serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from casem.adapters.workflows.devserver import _alive, find_temporal_binary, port_open, servers_on
from tests.support.ports import free_port


def _start_up(data: Path, temporal_port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CASEM_DATA_DIR": str(data),
        "CASEM_TEMPORAL_PORT": str(temporal_port),
        # Every port free, none a default: a developer's own `casem up` may hold those.
        **{f"CASEM_{name}_PORT": str(free_port()) for name in ("HTTP", "GRPC", "INTAKE", "CONSOLE", "CONNECTOR")},
        **{f"CASEM_{name}_PORT": str(free_port()) for name in ("CHAT_GRPC", "CHAT")},
        "COLUMNS": "200",
    }
    for engine in ("CASEM_TEMPORAL_ADDRESS", "CASEM_KAFKA_BOOTSTRAP", "CASEM_SEARCH_URL", "CASEM_DATACENTER"):
        env.pop(engine, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "casem.cli.main", "up"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    output = ""
    deadline = time.monotonic() + 180
    try:
        while "casem is up" not in output:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                raise AssertionError(f"casem up exited with {proc.returncode}:\n{output}")
            output += line
            assert time.monotonic() < deadline, output
    except BaseException:
        proc.kill()  # not left holding its ports and dev server for the rest of the run
        proc.wait(10)
        raise
    return proc


def _gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_sigkill_of_up_takes_its_dev_server_along_and_a_stale_one_is_replaced(tmp_path: Path) -> None:
    db = tmp_path / "temporal" / "dev.db"
    port = free_port()
    up = _start_up(tmp_path, port)
    try:
        servers = servers_on(db)
        assert len(servers) == 1, servers
        assert int(Path(f"/proc/{servers[0]}/stat").read_text().rsplit(")", 1)[1].split()[1]) == up.pid  # its child
        up.send_signal(signal.SIGKILL)
        up.wait(10)
        # The kernel's parent-death signal ends the dev server: nobody has to find it and kill it.
        assert _gone(servers, 30), f"dev server {servers} outlived casem up"
        assert not port_open("127.0.0.1", port)
    finally:
        if up.poll() is None:
            up.kill()

    # A dev server on the same state file and port that would outlive anything (its own session, no
    # parent-death signal): what an older build, or a crash that raced the start, leaves behind.
    binary = find_temporal_binary()
    args = [str(binary), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--headless"]
    stale = subprocess.Popen(
        [*args, "--db-filename", str(db), "--log-level", "error"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port):
            assert stale.poll() is None and time.monotonic() < deadline, "the stand-in stale server did not start"
            time.sleep(0.2)
        up = _start_up(tmp_path, port)  # would fail on the taken port if the stale server were left alone
        try:
            assert stale.wait(10) is not None  # stopped by the start
            replacement = servers_on(db)
            assert len(replacement) == 1 and replacement[0] != stale.pid
        finally:
            up.send_signal(signal.SIGTERM)
            assert up.wait(60) == 0
        assert _gone(replacement, 20)
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait(10)
