"""`casem up` and `casem run` as a person runs them: subprocesses on embedded defaults, read from stderr."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def casem_env(data_dir: Path, **ports: int) -> dict[str, str]:
    env = {**os.environ, "CASEM_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    for engine in ("CASEM_TEMPORAL_ADDRESS", "CASEM_KAFKA_BOOTSTRAP", "CASEM_SEARCH_URL", "CASEM_DATACENTER"):
        env.pop(engine, None)  # the embedded stack
    env.pop("CASEM_INTERNAL_TOKEN", None)
    for name, port in ports.items():
        env[f"CASEM_{name.upper()}_PORT"] = str(port)
    return env


# Every command started and not yet ended: a test that fails half-way (a timeout while the machine is loaded) must
# not leave a `casem up` holding its default ports and its dev server for the rest of the run.
RUNNING: list[Casem] = []


@dataclass
class Casem:
    """A running `casem` command; its stderr is collected line by line in the background."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, args: list[str], env: dict[str, str]) -> Casem:
        proc = subprocess.Popen(
            [sys.executable, "-m", "casem.cli.main", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        casem = cls(proc)
        RUNNING.append(casem)
        threading.Thread(target=casem._read, daemon=True).start()
        return casem

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.proc.poll() is not None:
                time.sleep(0.2)  # the reader thread catches up with the last lines
                if text in self.output:
                    break
                raise AssertionError(f"casem exited ({self.proc.returncode}) before {text!r}:\n{self.output}")
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError(f"no {text!r} after {timeout} s:\n{self.output}")
            time.sleep(0.1)
        return self.output

    def up(self, timeout: float = 120) -> str:
        """Wait for the banner and the lines after it."""
        self.wait_for("Stop: Ctrl-C", timeout)
        return self.output

    def exit_code(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        time.sleep(0.2)
        return code

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> tuple[int, float]:
        """Send `sig`; the exit code and how long the process took to end."""
        if self.proc.poll() is not None:
            return self.proc.returncode, 0.0
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        took = time.monotonic() - started
        time.sleep(0.2)
        return code, took

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def keys(output: str) -> tuple[str, str]:
    api = re.search(r"DD-API-KEY\s+([0-9a-f]{32})", output)
    app = re.search(r"DD-APPLICATION-KEY\s+([0-9a-f]{40})", output)
    assert api and app, output
    return api.group(1), app.group(1)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]
