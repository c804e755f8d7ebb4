"""Fuzzing the HTTP API with schemathesis, from casem's own OpenAPI document, on SQLite and PostgreSQL.

Every operation of /api/openapi.json is called with generated path and query parameters (and bodies
where the document describes them) by an authenticated org; the pass condition is that no answer is a
server error. Bounded for CI: FUZZ_EXAMPLES examples per operation (CASEM_FUZZ_EXAMPLES), derandomized
so a failure reproduces with the same inputs; each failure found is kept as a regression test beside
the fix (tests/api/test_request_boundary.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.support.api_client import OrgClient, new_org
from tests.support.live_server import LiveServer

FUZZ_EXAMPLES = int(os.environ.get("CASEM_FUZZ_EXAMPLES", "8"))


@pytest.fixture(scope="session")
def fuzz_org(server: LiveServer) -> Iterator[OrgClient]:
    org = new_org(server, "fuzz")
    yield org
    org.api_client.close()
    org.http.close()


def test_no_input_makes_a_server_error(fuzz_org: OrgClient, server: LiveServer) -> None:
    api = schemathesis.openapi.from_url(server.url + "/api/openapi.json")
    headers = {"DD-API-KEY": fuzz_org.creds.api_key, "DD-APPLICATION-KEY": fuzz_org.creds.app_key}
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            response = case.call(base_url=server.url, headers=headers)
            if response.status_code >= 500:
                failures.append(
                    f"{response.status_code} {case.method} {case.formatted_path} {case.query!r}: {response.text[:200]}"
                )
            assert response.status_code < 500

        # Recorded above, with the smallest input Hypothesis found; go on to the next operation.
        with contextlib.suppress(AssertionError):
            call()
    assert operations > 50, f"only {operations} operations in the OpenAPI document"
    assert not failures, "\n".join(dict.fromkeys(failures))
