"""Real-backend availability for the suites.

A real-backend suite runs when its engine's address is in the environment. In CI the
`CASEM_REQUIRE_<ENGINE>=1` flag is set as well, and then a missing engine fails the test
instead of skipping it: a real-backend test that is skipped in CI is a failure.
"""

from __future__ import annotations

import os

import pytest

ENGINES = {
    "postgres": "CASEM_TEST_POSTGRES_DSN",
    "kafka": "CASEM_TEST_KAFKA_BOOTSTRAP",
    "opensearch": "CASEM_TEST_OPENSEARCH_URL",
    "temporal": "CASEM_TEST_TEMPORAL_ADDRESS",
}


def required(engine: str) -> bool:
    return os.environ.get(f"CASEM_REQUIRE_{engine.upper()}") == "1"


def engine_address(engine: str) -> str:
    """The engine's address, or skip (fail when the engine is required)."""
    var = ENGINES[engine]
    value = os.environ.get(var)
    if value:
        return value
    message = f"{engine} suite needs {var}; start it with scripts/services/{engine}.sh start"
    if required(engine):
        pytest.fail(f"{message} (CASEM_REQUIRE_{engine.upper()}=1: it must run here)")
    pytest.skip(message)
