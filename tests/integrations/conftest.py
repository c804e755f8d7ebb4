"""Fixtures of the Jira / ServiceNow suites: loopback remotes, and the live case-api allowed to reach them. The helpers
that connect an org's account or instance are in tests/support/integration_accounts.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integrations.jira_server import JiraLoopback
from tests.integrations.servicenow_server import ServiceNowLoopback
from tests.support.integration_accounts import remote_systems
from tests.support.live_server import LiveServer


@pytest.fixture
def jira() -> Iterator[JiraLoopback]:
    site = JiraLoopback().start()
    yield site
    site.stop()


@pytest.fixture
def snow() -> Iterator[ServiceNowLoopback]:
    instance = ServiceNowLoopback().start()
    yield instance
    instance.stop()


@pytest.fixture
def live(server: LiveServer, jira: JiraLoopback) -> Iterator[LiveServer]:
    """The live case-api with outbound calls allowed to the loopback remotes (restored afterwards)."""
    state = server.app.state
    before = getattr(state, "integrations", None)
    state.integrations = remote_systems(jira)
    yield server
    state.integrations = before
