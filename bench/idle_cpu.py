"""`casem up` at rest: CPU used with no traffic, and how long the first case after a quiet spell takes to be found.

usage: PYTHONPATH=. .venv/bin/python bench/idle_cpu.py [--idle 30] [--settle 10] [--quiet 30]

Starts `casem up` (every built service, its own Temporal dev server) on a temporary data directory and free
ports, waits until case-api answers and a first case is searchable (so start-up work is over), lets it settle,
then measures over --idle seconds:
  casem     CPU seconds of the casem process, as % of one core
  tree      the same for its whole process tree (the Temporal dev server included)
  raw       an idle `python -c "import time; time.sleep(N)"` measured the same way: the floor of an idle process
Then, after --quiet seconds with no traffic (and again --samples times after --short-quiet seconds, by when every
poller has backed off to its longest wait), one case is created over HTTP and the clock runs until a search
over HTTP finds it (relay → bus → indexing flavor → search): the latency of the first event after a quiet spell,
beside the same create-to-found latency measured right after (warm, no quiet spell). Prints one JSON object
with the load average (the machine is shared: figures are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _support import free_port, load_average, wait_for_port  # noqa: E402

STANDARD_TYPE_ID = "00000000-0000-0000-0000-000000000001"
PORT_VARS = (
    "CASEM_HTTP_PORT",
    "CASEM_GRPC_PORT",
    "CASEM_INTAKE_PORT",
    "CASEM_CONSOLE_PORT",
    "CASEM_CONNECTOR_PORT",
    "CASEM_CHAT_GRPC_PORT",
    "CASEM_CHAT_PORT",
    "CASEM_TEMPORAL_PORT",
)


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds so far of every live process under `root` (itself included)."""
    tree, seen, todo = _children(), {}, [root]
    while todo:
        pid = todo.pop()
        try:
            seen[pid] = _proc_cpu(pid)
        except OSError:
            continue
        todo += tree.get(pid, [])
    return seen


def measure(root: int, seconds: float) -> dict[str, float]:
    before = tree_cpu(root)
    time.sleep(seconds)
    after = tree_cpu(root)
    used = sum(after[p] - before.get(p, 0.0) for p in after)
    own = after.get(root, 0.0) - before.get(root, 0.0)
    return {
        "seconds": seconds,
        "root_cpu_s": round(own, 2),
        "root_pct_core": round(100 * own / seconds, 2),
        "tree_cpu_s": round(used, 2),
        "tree_pct_core": round(100 * used / seconds, 2),
        "processes": len(after),
    }


def create_and_find(http: httpx.Client, project_id: str, timeout: float = 60.0) -> float:
    """Seconds from the create request to the first search that finds the case (its create answer included)."""
    return create_and_find_split(http, project_id, timeout)[0]


def create_and_find_split(http: httpx.Client, project_id: str, timeout: float = 60.0) -> tuple[float, float]:
    """(seconds until found, seconds the create request itself took)."""
    word = f"idle{uuid.uuid4().hex[:12]}"
    body = {
        "data": {
            "type": "case",
            "attributes": {"title": f"first after quiet {word}", "type_id": STANDARD_TYPE_ID},
            "relationships": {"project": {"data": {"id": project_id, "type": "project"}}},
        }
    }
    started = time.perf_counter()
    created = http.post("/api/v2/cases", json=body)
    created.raise_for_status()
    answered = time.perf_counter() - started
    while time.perf_counter() - started < timeout:
        found = http.get("/api/v2/cases", params={"filter": word}).json()["data"]
        if found:
            return time.perf_counter() - started, answered
        time.sleep(0.005)
    raise TimeoutError(f"the case was not searchable after {timeout}s")


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="casem-bench-idle-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEM_")}
    env.update({name: str(free_port()) for name in PORT_VARS})
    env.update(CASEM_DATA_DIR=str(workdir), PYTHONPATH=os.environ.get("PYTHONPATH", "."))
    http_port = int(env["CASEM_HTTP_PORT"])
    log = (workdir / "up.log").open("wb")
    up = subprocess.Popen([sys.executable, "-m", "casem.cli.main", "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(http_port, 180, up)
        creds_file = workdir / "bootstrap-credentials.json"
        for _ in range(600):
            if creds_file.exists():
                break
            time.sleep(0.1)
        creds = json.loads(creds_file.read_text())
        headers = {"DD-API-KEY": creds["api_key"], "DD-APPLICATION-KEY": creds["app_key"]}
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", headers=headers, timeout=30) as http:
            for _ in range(600):  # every service started: the banner is printed last
                if b"DD-APPLICATION-KEY" in (workdir / "up.log").read_bytes():
                    break
                time.sleep(0.1)
            project = http.post(
                "/api/v2/cases/projects",
                json={"data": {"type": "project", "attributes": {"name": "Idle", "key": "IDLE"}}},
            )
            project.raise_for_status()
            project_id = project.json()["data"]["id"]
            warmup = create_and_find(http, project_id, timeout=120)  # start-up work and first imports are over
            time.sleep(args.settle)
            idle = measure(up.pid, args.idle)
            time.sleep(max(0.0, args.quiet - args.idle))
            after_quiet, after_quiet_create = create_and_find_split(http, project_id)
            short_quiet = []
            for _ in range(args.samples):
                time.sleep(args.short_quiet)
                short_quiet.append(create_and_find(http, project_id))
            warm = [create_and_find(http, project_id) for _ in range(5)]
        raw = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({args.idle + 5})"])
        time.sleep(1)
        raw_idle = measure(raw.pid, args.idle)
        raw.wait()
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait(10)
        log.close()
    if up.returncode in (0, -signal.SIGINT):
        shutil.rmtree(workdir, ignore_errors=True)  # kept, with its log, when casem up did not stop cleanly
    return {
        "casem_up_idle": idle,
        "raw_sleeping_python": raw_idle,
        "first_case_searchable_after_quiet_s": round(after_quiet, 3),
        "of_which_the_create_request_s": round(after_quiet_create, 3),
        "quiet_s": max(args.quiet, args.idle),
        f"first_case_searchable_after_{args.short_quiet:g}s_quiet_s": sorted(round(x, 3) for x in short_quiet),
        "warm_case_searchable_s": sorted(round(x, 3) for x in warm),
        "first_case_after_start_s": round(warmup, 3),
        "loadavg": load_average(),
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle measured")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds left alone before measuring")
    parser.add_argument("--quiet", type=float, default=30.0, help="seconds with no traffic before the first event")
    parser.add_argument("--short-quiet", type=float, default=5.0, help="quiet spell of the further samples")
    parser.add_argument("--samples", type=int, default=5, help="further samples, each after --short-quiet")
    print(json.dumps(run(parser.parse_args()), indent=2))
