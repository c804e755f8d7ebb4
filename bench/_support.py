"""What the benches share: services started as processes of their own (as deployed), their peak memory and CPU
time read from /proc, and the machine's load at the time of the run (figures on a shared machine are noisy;
the raw figure measured in the same run, and the ratio to it, are what compare)."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from casem.devtools import ports

if TYPE_CHECKING:
    from casem.app.context import AppContext
    from casem.app.identity.service import BootstrapCredentials
    from casem.domain.projects import Project


def free_port(pair: bool = False) -> int:
    """A loopback port nothing listens on, below the kernel's ephemeral range: a bind to port 0 may hand out one an
    outgoing connection takes before the service binds it (casem/devtools/ports.py)."""
    return ports.free_port(pair)


def wait_for_port(port: int, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _status_kb(pid: int, name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb(pid: int | None = None) -> float | None:
    """Peak resident memory (VmHWM) of a process, or of this one."""
    if pid is None:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    kb = _status_kb(pid, "VmHWM")
    return round(kb / 1024, 1) if kb is not None else None


def memory_column(what_runs_here: str) -> dict[str, float | None]:
    """The memory column of a bench: peak RSS of this process (named by what runs in it) and of the largest child
    process it has waited for (commands it ran), in MiB."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    column: dict[str, float | None] = {f"bench process ({what_runs_here})": peak_rss_mb()}
    if children:
        column["largest child process"] = round(children / 1024, 1)
    return column


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time a process has used so far (this one by default)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def listening_pid(port: int) -> int | None:
    """The process listening on a TCP port of this machine (an engine the bench did not start), from /proc."""
    wanted = f"{port:04X}"
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].rsplit(":", 1)[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU time of a process, its live children's (PostgreSQL's backends) and its exited children's it has
    reaped; None once it is gone."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    total += sum(int(f) for f in fields[11:15]) / ticks  # utime, stime, cutime, cstime
    for child in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[1]) == pid:
            total += (int(stat[11]) + int(stat[12])) / ticks
    return total


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def bench_org_and_project(
    context: AppContext, key: str = "BENCH", name: str = "Bench"
) -> tuple[BootstrapCredentials, Project]:
    """The org a bench works in (its credentials) and the project its cases go in, each committed."""
    from casem.app.identity.service import bootstrap_org
    from casem.app.projects.service import create_project

    async with context.uow() as uow:
        creds = await bootstrap_org(uow, "bench", "bench@example.com")
        await uow.commit()
    async with context.uow() as uow:
        project = await create_project(uow, creds.org_id, creds.user_id, key=key, name=name)
        await uow.commit()
    return creds, project


@dataclass
class Service:
    """`casem run <name>` in a process of its own, with the given environment."""

    name: str
    env: dict[str, str]
    ready_port: int
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self, timeout: float = 120.0) -> Service:
        self.log = Path(tempfile.mkstemp(prefix=f"casem-bench-{self.name}-", suffix=".log")[1])
        with self.log.open("wb") as out:
            # CASEM_BENCH_PROFILE_DIR=DIR: each service runs under cProfile, its stats saved to DIR/<name>.prof.
            profile_dir = os.environ.get("CASEM_BENCH_PROFILE_DIR")
            profile = ["-m", "cProfile", "-o", f"{profile_dir}/{self.name}.prof"] if profile_dir else []
            self.process = subprocess.Popen(
                [sys.executable, *profile, "-m", "casem.cli.main", "run", self.name, *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(self.ready_port, timeout, self.process)
        except Exception:
            raise RuntimeError(f"{self.name} did not start; its log:\n{self.log.read_text()[-4000:]}") from None
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def peak_rss_mb(self) -> float | None:
        return peak_rss_mb(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self, timeout: float = 60.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            clean = self.process.wait(timeout) in (0, -signal.SIGTERM)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            clean = False
        if clean and self.log is not None:
            self.log.unlink(missing_ok=True)  # kept only when the service did not stop cleanly


def fresh_postgres(admin_dsn: str, label: str, prefix: str = "casem_bench") -> str:
    """A new, empty PostgreSQL database for one bench run; its async DSN (drop it with `drop_postgres`)."""
    import uuid

    import psycopg  # imported here: most benches never touch PostgreSQL
    from sqlalchemy.engine import make_url

    from casem.topology.tenants import to_async_dsn

    name = f"{prefix}_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(to_async_dsn(admin_dsn)).set(database=name).render_as_string(hide_password=False)


def drop_kafka_namespace(bootstrap: str, namespace: str, timeout_s: float = 30.0) -> int:
    """Delete the topics of a scratch namespace (`<namespace>.<topic>`); returns how many. Left behind, each run's
    topics stay on the broker, and a broker with hundreds of partitions more spends more CPU on every later run."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [name for name in admin.list_topics(timeout=timeout_s).topics if name.startswith(f"{namespace}.")]
    if not topics:
        return 0
    for future in admin.delete_topics(topics, operation_timeout=timeout_s).values():
        future.result(timeout_s)
    return len(topics)


def drop_postgres(admin_dsn: str, dsn: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(dsn).database}" WITH (FORCE)')
