"""The whole paging loop on the real stack: PostgreSQL (both tenants), Kafka (domain-events and
domain-events-oncall), Temporal (the dev server running the escalation) and OpenSearch (the casem-oncall index).

A P1 case in a project with a paging rule → the paging flavor pages the project's on-call team → the escalation
reaches whoever is on call: their email and SMS arrive at the loopback receivers → nobody acknowledges → after the
step's timeout (60 s, the shortest a policy allows) the second step's responder is paged → acknowledged through the
official client, the escalation stops → the case's timeline shows the page and its acknowledgement, and the page is
found in the casem-oncall index with the case query language.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from temporalio.client import Client

from casem.adapters.blobs.filesystem import FilesystemBlobStore
from casem.adapters.bus.kafka import KafkaBus
from casem.adapters.bus.namespace import NamespacedBus
from casem.adapters.search.opensearch import OpenSearchSearch
from casem.adapters.storage.tables import audit_log, oncall_notifications
from casem.adapters.workflows.client import TemporalCaseworker
from casem.cli.local_stack import LocalWorkers
from casem.services.caseworker.worker import build_worker
from casem.topology.tenants import CASE_MANAGEMENT, ON_CALL
from tests.api.helpers import add_user, make_case, make_project
from tests.api.oncall_helpers import (
    layer,
    make_team,
    on_call,
    page_id,
    paging,
    policy_request,
    schedule_request,
    step,
    target,
)
from tests.backends import engine_address
from tests.caseworker.oncall_world import Receivers, phone_number
from tests.support.api_client import OrgClient, new_org
from tests.support.databases import tenant_endpoints
from tests.support.live_server import LiveServer

pytestmark = [pytest.mark.postgres, pytest.mark.kafka, pytest.mark.temporal, pytest.mark.opensearch]


@dataclass
class Stack:
    server: LiveServer
    org: OrgClient
    receivers: Receivers
    caseworker: TemporalCaseworker


def wait_for(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("CASEM_OUTBOUND_ALLOW", "127.0.0.0/8")
    monkeypatch.setenv("CASEM_SECRET_KEYS", Fernet.generate_key().decode())
    run = uuid.uuid4().hex[:10]
    receivers = Receivers.start()
    with tenant_endpoints("postgres", tmp_path) as endpoints:
        server = LiveServer(endpoints).start()
        engine = OpenSearchSearch(engine_address("opensearch"), index_prefix=f"e2e{run}-")
        for tenant in (CASE_MANAGEMENT, ON_CALL):
            server.call(engine.ensure_index(tenant))
        server.context.use_search_engine(engine)
        bus = NamespacedBus(KafkaBus(engine_address("kafka")), f"oncall-e2e-{run}")
        queue = f"oncall-e2e-{run}"
        client = server.call(Client.connect(engine_address("temporal")))
        caseworker = TemporalCaseworker(client, queue)
        server.app.state.caseworker = caseworker

        async def start_worker() -> tuple[Any, asyncio.Task[None]]:  # a worker is made inside its event loop
            worker = build_worker(
                client, server.context, FilesystemBlobStore(tmp_path / "blobs"), task_queue=queue,
                notifier=receivers.senders(),
            )  # fmt: skip
            return worker, asyncio.create_task(worker.run())

        worker, running = server.call(start_worker())
        workers = LocalWorkers(server.context, bus, extras={"caseworker": caseworker})
        server.call(workers.start())
        try:
            yield Stack(server, new_org(server), receivers, caseworker)
        finally:
            server.call(workers.stop())

            async def stop_worker() -> None:
                await worker.shutdown()
                await running

            server.call(stop_worker())
            server.call(bus.close())
            for tenant in (CASE_MANAGEMENT, ON_CALL):
                server.call(engine.drop(tenant))
            server.context.use_search_engine(None)
            server.stop()
    receivers.stop()


def _rows(stack: Stack, tenant: str, statement: Any) -> list[Any]:
    async def read() -> list[Any]:
        async with stack.server.context.uow(tenant, read_only=True) as uow:
            return list((await uow.execute(statement)).all())

    return stack.server.call(read())


def test_a_p1_case_pages_escalates_and_is_acknowledged_on_the_real_stack(stack: Stack) -> None:
    org, receivers = stack.org, stack.receivers
    ann = add_user(org, "ann@example.com", name="Ann")
    bob = add_user(org, "bob@example.com", name="Bob")
    for person in (ann, bob):
        for config, method in (
            ({"type": "email", "address": f"{person}@pager.example", "formats": ["text"]}, None),
            ({"type": "phone", "number": phone_number(person)}, "sms"),
        ):
            channel = org.http.post(
                f"/api/v2/on-call/users/{person}/notification-channels",
                json={"data": {"type": "notification_channels", "attributes": {"config": config}}},
            ).json()["data"]["id"]
            settings = {"channel_settings": {"type": "phone", "method": method}} if method else {}
            rule = {
                "type": "notification_rules",
                "attributes": {"category": "high_urgency", "delay_minutes": 0, **settings},
                "relationships": {"channel": {"data": {"id": channel, "type": "notification_channels"}}},
            }
            assert (
                org.http.post(f"/api/v2/on-call/users/{person}/notification-rules", json={"data": rule}).status_code
                == 201
            )
    team = make_team(org, "sec-oncall", [ann, bob])
    start = datetime.now(UTC) - timedelta(days=7)
    schedule = on_call(org).create_on_call_schedule(
        body=schedule_request("SEC primary", [layer("primary", [ann], start, days=7)], team_ids=[team])
    )
    policy = on_call(org).create_on_call_escalation_policy(
        body=policy_request(
            "SEC",
            [step([target("schedules", schedule.data.id)], after=60), step([target("users", bob)], after=3600)],
            team_ids=[team],
        )
    )
    assert policy.data.id
    project = make_project(org, "SEC", "Security")
    rule = {"data": {"type": "paging_rule", "attributes": {"team_id": team, "query": "priority:P1"}}}
    assert org.http.put(f"/api/v2/casem/projects/{project.id}/paging", json=rule).status_code == 200

    make_case(org, project.id, "Port scan from 10.0.0.7", priority="P3")  # does not page
    case = make_case(org, project.id, "Root shell on web-1", priority="P1")
    created = time.monotonic()

    # The page, made by the paging flavor from the case's event on Kafka, and Ann's first notifications.
    def ann_notified() -> bool:
        got = receivers.received()
        return len(got["email"]) >= 1 and len(got["sms"]) >= 1

    wait_for(ann_notified, "Ann's email and SMS")
    first_notified = time.monotonic() - created
    [sms] = receivers.twilio.messages
    assert sms["to"] == phone_number(ann) and "Root shell on web-1" in sms["body"]
    pages = wait_for(lambda: org.http.get("/api/v2/casem/on-call/pages").json()["data"], "the page")
    [page] = pages
    assert page["relationships"]["case"]["data"]["id"] == case.id
    assert page["relationships"]["policy"]["data"]["id"] == policy.data.id

    # Nobody acknowledges: 60 s later the escalation pages Bob.
    def bob_notified() -> bool:
        return any(m["to"] == phone_number(bob) for m in receivers.twilio.messages)

    wait_for(bob_notified, "Bob's SMS after the escalation timeout", timeout=180)
    escalated_after = time.monotonic() - created
    assert escalated_after >= 60

    # Bob acknowledges through the official client: the workflow stops.
    paging(org).acknowledge_on_call_page(page_id=page_id(page["id"]))
    handle = stack.caseworker.client.get_workflow_handle(f"page-{page['id']}")

    async def outcome() -> Any:
        return await handle.result()

    result = stack.server.call(outcome())
    assert (result["status"] if isinstance(result, dict) else result.status) == "acknowledged"

    # The case's timeline (case-management) shows the page and its acknowledgement, via domain-events-oncall.
    def case_cells() -> list[str]:
        body = org.http.get(f"/api/v2/cases/{case.id}/timelines", params={"page[size]": 100}).json()["data"]
        kinds = [c["attributes"]["type"] for c in body]
        return kinds if "PAGE_ACKNOWLEDGEMENT" in kinds else []

    kinds = wait_for(case_cells, "the acknowledgement on the case's timeline")
    assert "PAGE" in kinds
    sent = _rows(stack, ON_CALL, sa.select(oncall_notifications).where(oncall_notifications.c.page_id == page["id"]))
    assert sorted((r.user_id, r.medium, r.status) for r in sent) == sorted(
        [(ann, "email", "sent"), (ann, "sms", "sent"), (bob, "email", "sent"), (bob, "sms", "sent")]
    )
    assert receivers.total() == 4  # nothing more after the acknowledgement
    page_cells = org.http.get(f"/api/v2/casem/on-call/pages/{page['id']}/timeline").json()["data"]
    page_kinds = [c["attributes"]["cell_type"] for c in page_cells]
    assert page_kinds.count("PAGE_NOTIFICATION") == 4 and "PAGE_ACKNOWLEDGEMENT" in page_kinds

    # The page is found in the casem-oncall index (the search-indexing flavor, on domain-events-oncall).
    def found() -> list[str]:
        body = org.http.get("/api/v2/casem/on-call/pages", params={"filter": "status:in_progress shell"}).json()
        return [p["id"] for p in body["data"]]

    assert wait_for(found, "the page in the casem-oncall index") == [page["id"]]
    # The audit trail of the on-call tenant holds the page's story (audit-trail on domain-events-oncall).
    audited = _rows(stack, ON_CALL, sa.select(audit_log.c.event_type).where(audit_log.c.case_id == page["id"]))
    assert {"page.triggered", "page.acknowledged"} <= {r.event_type for r in audited}
    print(f"first notification {first_notified:.1f} s after the case; escalation at {escalated_after:.1f} s")
