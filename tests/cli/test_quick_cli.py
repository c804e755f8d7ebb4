"""A quick CLI: `casem --help` and every sub-command's help import none of the heavy stacks, and importing
`casem.cli.main` costs a small multiple of starting Python at all (CPU time, best of several runs, so a
busy machine slows both sides alike)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

from casem.cli.main import COMMANDS

# What a help screen must not load: the web, database, gRPC, bus, workflow, validation and tracing stacks, nor
# rich (help is plain text) or asyncio (nothing runs).
HEAVY = (
    "sqlalchemy",
    "fastapi",
    "uvicorn",
    "grpc",
    "confluent_kafka",
    "temporalio",
    "pydantic",
    "boto3",
    "yaml",
    "opentelemetry",
    "rich",
    "asyncio",
)

PROBE = """
import json, sys
args, watched = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
sys.argv = ["casem", *args]
from casem.cli.main import app
try:
    app()
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & watched)
print("\\nLOADED " + json.dumps({"code": code, "heavy": heavy}))
"""


def _help_loads(args: list[str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = [x for x in result.stdout.splitlines() if x.startswith("LOADED ")]
    assert line, result.stdout + result.stderr
    return {**json.loads(line[-1][len("LOADED ") :]), "output": result.stdout}


def _sub_commands() -> list[list[str]]:
    """Every command and sub-command, read from the command tree itself."""
    from casem.cli.main import load_command

    found: list[list[str]] = [[]]
    for name in COMMANDS:
        command = load_command(name)
        found.append([name])
        found.extend([name, sub] for sub in getattr(command, "commands", {}))
    return found


@pytest.mark.parametrize("args", _sub_commands(), ids=lambda a: " ".join(a) or "casem")
def test_help_loads_no_heavy_stack(args: list[str]) -> None:
    seen = _help_loads([*args, "--help"])
    assert seen["code"] in (0, None), seen["output"]
    assert "Usage: casem" in seen["output"]
    assert seen["heavy"] == [], f"`casem {' '.join(args)} --help` imported {seen['heavy']}"


def _cpu_seconds(code: str, runs: int = 7) -> float:
    best = float("inf")
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return best


def test_importing_the_cli_costs_a_few_python_startups() -> None:
    bare = _cpu_seconds("pass")
    cli = _cpu_seconds("import casem.cli.main")
    # Before the lazy commands this ratio was about 30 (the whole web and database stack); now about 3.
    assert cli / bare < 6, f"import casem.cli.main: {cli * 1000:.0f} ms CPU, `python -c pass`: {bare * 1000:.0f} ms"
