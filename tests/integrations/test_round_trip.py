"""The round trip on the real stack (PostgreSQL, Kafka), both ways, for each remote: case-api in process, and the
relay, the sync flavors, the connector ingress and both reader flavors as `casem run` processes.

A case is created through the official client → the sync flavor creates the issue / ticket → a comment and a
status change made remotely arrive on the case's timeline through webhook → feed topic → reader → a status
change in casem arrives remotely → and nothing echoes back (the remote writes are counted)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from casem.adapters.integrations import adf_to_text
from casem.adapters.secrets import SecretBox
from casem.app.integrations.remotes import RemoteSystems
from casem.topology.tenants import TENANTS
from tests.api.helpers import make_case, make_project
from tests.backends import engine_address
from tests.integrations.jira_server import JiraLoopback
from tests.integrations.servicenow_server import ServiceNowLoopback
from tests.integrations.support import jira_settings, servicenow_settings
from tests.support.api_client import new_org
from tests.support.databases import tenant_endpoints
from tests.support.integration_accounts import LOOPBACK, connect_jira, connect_servicenow
from tests.support.live_server import LiveServer
from tests.support.ports import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

JIRA_SECRET = "a-webhook-secret-of-32-chars!!!!"
SNOW_SECRET = "a-servicenow-secret-of-32-chars!"


class Processes:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str, **env: str) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        full = {
            **self.env,
            "CASEM_OPS_PORT": str(free_port()),
            "CASEM_HOST": "127.0.0.1",
            "CASEM_MIGRATE_ON_START": "0",
            **env,
        }
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "casem.cli.main", "run", *args], env=full, stdout=log, stderr=log
        )

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()

    def alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        assert not dead, f"processes ended: {dead}; see {self.logs}"


def wait_for(check: Callable[[], Any], what: str, procs: Processes, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        procs.alive()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveServer, Processes, JiraLoopback, ServiceNowLoopback, int]]:
    """One stack for both remotes (each test has its own org): the processes start once."""
    tmp_path = tmp_path_factory.mktemp("round-trip")
    key = Fernet.generate_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEM_TENANT_")}
    env.update(
        CASEM_DATA_DIR=str(tmp_path),
        CASEM_KAFKA_BOOTSTRAP=engine_address("kafka"),
        CASEM_BUS_NAMESPACE=f"roundtrip-{uuid.uuid4().hex[:8]}",
        CASEM_SECRET_KEYS=key.decode(),
        CASEM_OUTBOUND_ALLOW="127.0.0.0/8",
        CASEM_CONNECTOR_POLL_INTERVAL_S="0",  # webhooks only: the reconciliation poll has its own suite
    )
    jira, snow = JiraLoopback().start(), ServiceNowLoopback().start()
    with tenant_endpoints("postgres", tmp_path) as endpoints:
        for t in TENANTS:
            env[f"{t.env_prefix}_DSN"] = endpoints[t.name].master
        live = LiveServer(endpoints).start()
        live.app.state.integrations = RemoteSystems(box=SecretBox([key]), allow=LOOPBACK)
        procs = Processes(env, tmp_path)
        ingress_port = free_port()
        try:
            procs.start("relay", "case-event-relay")
            procs.start("jira-sync", "case-event-handler", "--flavor", "jira-sync")
            procs.start("servicenow-sync", "case-event-handler", "--flavor", "servicenow-sync")
            procs.start("ingress", "case-connector-ingress", CASEM_HTTP_PORT=str(ingress_port))
            procs.start("reader-jira", "case-third-party-reader", "--flavor", "jira")
            procs.start("reader-servicenow", "case-third-party-reader", "--flavor", "servicenow")
            # Six Python processes start at once: on a loaded machine that takes a while.
            wait_for(lambda: _up(ingress_port), "the connector ingress", procs, timeout=240)
            yield live, procs, jira, snow, ingress_port
        finally:
            procs.stop_all()
            live.stop()
            jira.stop()
            snow.stop()


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def timeline(org: Any, case_id: str) -> list[dict[str, Any]]:
    return org.http.get(
        f"/api/v2/cases/{case_id}/timelines", params={"sort[ascending]": "true", "page[size]": 1000}
    ).json()["data"]


def cell_types(org: Any, case_id: str) -> list[str]:
    return [c["attributes"]["type"] for c in timeline(org, case_id)]


def test_round_trip_with_jira(stack) -> None:  # type: ignore[no-untyped-def]
    live, procs, jira, _snow, ingress_port = stack
    org = new_org(live)
    account_id = connect_jira(org, jira, webhook_secret=JIRA_SECRET)["data"]["id"]
    jira.register_webhook(f"http://127.0.0.1:{ingress_port}/webhooks/jira/{account_id}", JIRA_SECRET)
    project = make_project(org)
    settings = {
        "data": {"type": "project", "attributes": {"settings": {"integration_jira": jira_settings(account_id)}}}
    }
    assert org.http.patch(f"/api/v2/cases/projects/{project.id}", json=settings).status_code == 200

    case = make_case(org, project.id, title="Latency on checkout", description="p99 above 2s")
    issue = wait_for(
        lambda: next((i for i in jira.issues.values() if f"casem-case-{case.id}" in i.labels), None),
        "the Jira issue",
        procs,
    )
    assert issue.summary == "Latency on checkout" and adf_to_text(issue.description) == "p99 above 2s"
    wait_for(
        lambda: (
            (org.cases.get_case(case_id=case.id).data.attributes.to_dict().get("jira_issue") or {}).get("status")
            == "COMPLETED"
        ),
        "the case to show its issue",
        procs,
    )

    # Someone works on the issue in Jira.
    with httpx.Client(base_url=jira.url, auth=jira.auth_of(jira.human), timeout=10) as http:
        body = {
            "type": "doc",
            "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Rolled back the deploy"}]}],
        }
        assert http.post(f"/rest/api/3/issue/{issue.key}/comment", json={"body": body}).status_code == 201
        assert (
            http.post(f"/rest/api/3/issue/{issue.key}/transitions", json={"transition": {"id": "21"}}).status_code
            == 204
        )
    wait_for(
        lambda: org.cases.get_case(case_id=case.id).data.attributes.status.value == "IN_PROGRESS",
        "Jira's status change on the case",
        procs,
    )
    comments = wait_for(
        lambda: [c for c in timeline(org, case.id) if c["attributes"]["type"] == "COMMENT"],
        "Jira's comment on the timeline",
        procs,
    )
    assert comments[0]["attributes"]["cell_content"]["message"] == "Rolled back the deploy"
    assert comments[0]["attributes"]["cell_content"]["origin"]["remote_key"] == issue.key

    # casem closes the case: Jira follows.
    org.http.post(
        f"/api/v2/cases/{case.id}/status", json={"data": {"type": "case", "attributes": {"status": "CLOSED"}}}
    )
    wait_for(lambda: issue.status == "Done", "the case's status in Jira", procs)

    # No echo: once everything settled, casem wrote exactly the issue and its transition, and nothing moves.
    time.sleep(5)
    writes = jira.write_count(jira.integration.account_id)
    assert writes == 2, jira.requests
    time.sleep(3)
    assert jira.write_count(jira.integration.account_id) == writes
    assert org.cases.get_case(case_id=case.id).data.attributes.status.value == "CLOSED"
    types = cell_types(org, case.id)
    assert types.count("STATUS_CHANGE") == 2 and types.count("COMMENT") == 1
    assert types.count("INTEGRATION_SYNC") == 1 and types.count("INTEGRATION_LINK") == 1


def test_round_trip_with_servicenow(stack) -> None:  # type: ignore[no-untyped-def]
    live, procs, _jira, snow, ingress_port = stack
    org = new_org(live)
    instance_id = connect_servicenow(org, snow, webhook_secret=SNOW_SECRET)["data"]["id"]
    snow.register_outbound(f"http://127.0.0.1:{ingress_port}/webhooks/servicenow/{instance_id}", SNOW_SECRET)
    project = make_project(org)
    settings = {
        "data": {"type": "project", "attributes": {"settings": {"integration_service_now": servicenow_settings()}}}
    }
    assert org.http.patch(f"/api/v2/cases/projects/{project.id}", json=settings).status_code == 200

    case = make_case(org, project.id, title="Checkout failing", priority="P3")
    incident = wait_for(
        lambda: next(
            (r for r in snow.tables["incident"].values() if r.get("correlation_id") == f"casem:{case.id}"), None
        ),
        "the ServiceNow incident",
        procs,
    )
    wait_for(
        lambda: (
            (org.cases.get_case(case_id=case.id).data.attributes.to_dict().get("service_now_ticket") or {}).get(
                "status"
            )
            == "COMPLETED"
        ),
        "the case to show its ticket",
        procs,
    )

    with httpx.Client(base_url=snow.url, auth=("beth.agent", "beth-pass"), timeout=10) as http:
        assert (
            http.patch(
                f"/api/now/table/incident/{incident['sys_id']}", json={"comments": "Gateway restarted"}
            ).status_code
            == 200
        )
        assert http.patch(f"/api/now/table/incident/{incident['sys_id']}", json={"state": "2"}).status_code == 200
    wait_for(
        lambda: org.cases.get_case(case_id=case.id).data.attributes.status.value == "IN_PROGRESS",
        "ServiceNow's state on the case",
        procs,
    )
    comments = wait_for(
        lambda: [c for c in timeline(org, case.id) if c["attributes"]["type"] == "COMMENT"],
        "ServiceNow's comment",
        procs,
    )
    assert comments[0]["attributes"]["cell_content"]["message"] == "Gateway restarted"

    org.http.post(
        f"/api/v2/cases/{case.id}/status", json={"data": {"type": "case", "attributes": {"status": "CLOSED"}}}
    )
    wait_for(lambda: snow.incident(incident["sys_id"])["state"] == "6", "the case's status in ServiceNow", procs)

    time.sleep(5)
    writes = snow.write_count("casem.integration")
    assert writes == 2, snow.requests  # the incident, then its resolution
    time.sleep(3)
    assert snow.write_count("casem.integration") == writes
    assert org.cases.get_case(case_id=case.id).data.attributes.status.value == "CLOSED"
    types = cell_types(org, case.id)
    assert types.count("STATUS_CHANGE") == 2 and types.count("COMMENT") == 1
