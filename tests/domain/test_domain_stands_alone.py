"""The domain, and its tests, load nothing but the standard library (and the test tools)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Run in a fresh interpreter: this one already has whatever other suites imported.
PROBE = """
import importlib, json, pkgutil, sys
before = set(sys.modules)
def load(name):
    package = importlib.import_module(name)
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{name}.{info.name}")
load("casem.domain")
by_domain = sorted(set(sys.modules) - before)
load("tests.domain")
print(json.dumps({"domain": by_domain, "tests": sorted(sys.modules)}))
"""
FORBIDDEN = (
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "psycopg",
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "grpc",
    "httpx",
    "confluent_kafka",
    "temporalio",
    "boto3",
    "structlog",
    "asyncio",
)


def loaded() -> dict[str, list[str]]:
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def test_the_domain_imports_only_the_standard_library_and_itself() -> None:
    modules = loaded()
    # zoneinfo (on-call schedules) reads the interpreter's build settings through sysconfig, whose data module's
    # name depends on the platform (_sysconfigdata_<abi>_<platform>): part of the standard library all the same.
    tops = {name.split(".")[0] for name in modules["domain"] if not name.startswith("_sysconfigdata_")}
    outside = tops - set(sys.stdlib_module_names) - {"casem"}  # what importing the domain added
    assert outside == set(), f"casem.domain loads {sorted(outside)}"
    ours = {name for name in modules["domain"] if name.startswith("casem.")}
    assert ours and all(name.startswith("casem.domain") for name in ours), sorted(ours)
    for name in FORBIDDEN:
        assert name not in modules["domain"]


def test_the_domain_tests_need_no_framework_driver_or_event_loop() -> None:
    modules = loaded()["tests"]
    assert "tests.domain.test_automation" in modules  # the probe did load the tests
    for name in FORBIDDEN:
        assert name not in modules, f"a domain test pulls in {name}"
    assert not [m for m in modules if m.startswith("casem.") and not m.startswith("casem.domain")]
