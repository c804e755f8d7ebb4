"""How long `casem --help` and each sub-command's help take, beside `python -c pass` on the same machine.

usage: .venv/bin/python bench/cli_startup.py [--runs 7]

Prints JSON: per command the best wall and CPU time of N runs, and the same for `python -c pass` (the
raw figure: starting the interpreter at all). The goal: every help under 300 ms on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _support import memory_column

from casem.cli.main import COMMANDS, load_command


def measure(args: list[str], runs: int) -> dict[str, float]:
    wall = cpu = float("inf")
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        wall = min(wall, time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = min(cpu, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return {"wall_ms": round(wall * 1000, 1), "cpu_ms": round(cpu * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    commands = [[]]
    for name in COMMANDS:
        commands.append([name])
        commands.extend([name, sub] for sub in getattr(load_command(name), "commands", {}))
    raw = measure(["-c", "pass"], args.runs)
    results = {"python -c pass (raw)": raw}
    for command in commands:
        results[" ".join(["casem", *command, "--help"])] = measure(
            ["-m", "casem.cli.main", *command, "--help"], args.runs
        )
    results["peak_rss_mb"] = memory_column("the timer only: each command runs as a child")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
