"""`casem up` and `casem run` run their services on uvloop where it is installed, on asyncio's own loop with
CASEM_EVENT_LOOP=asyncio, and refuse an unknown choice in one line that says what to use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed on this platform")

# The loop a service's main coroutine finds itself on, through the very function `casem run` starts with, called
# from a typer command as casem's commands call it (typer turns its refusal into the exit code and message).
PROBE = """
import asyncio
import typer
from casem.cli.lifecycle import run_until_stopped

async def main(stop):
    loop = asyncio.get_running_loop()
    print(type(loop).__module__ + "." + type(loop).__qualname__, flush=True)

def command():
    run_until_stopped("probe", main, host="127.0.0.1", ports=[])

typer.run(command)
"""


def _probe(choice: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CASEM_EVENT_LOOP"}
    if choice is not None:
        env["CASEM_EVENT_LOOP"] = choice
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)


def test_services_run_on_uvloop_by_default() -> None:
    done = _probe(None)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "uvloop.Loop"
    assert "probe stopped" in done.stderr


def test_asyncio_is_chosen_by_name() -> None:
    done = _probe("asyncio")
    assert done.returncode == 0, done.stderr
    loop_class = done.stdout.strip()
    assert loop_class.startswith("asyncio.") and "uvloop" not in loop_class


def test_an_unknown_loop_is_refused_in_one_line() -> None:
    done = _probe("tokio")
    assert done.returncode == 1
    assert done.stdout == ""  # main never ran
    assert "error: CASEM_EVENT_LOOP='tokio' is not an event loop casem knows; use one of uvloop, asyncio" in done.stderr
    assert "Traceback" not in done.stderr
