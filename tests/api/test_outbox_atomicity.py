"""A change and its outbox event commit together or not at all.

(a) every successful mutation adds exactly its events to `domain_events`, in the CloudEvents envelope, and each
case change gets exactly one timeline cell pointing back at its event; (b) a mutation that fails inside the unit
of work's commit, after its rows are flushed, leaves neither the change nor the event; (c) bad input to the
comment, timeline and watcher endpoints is a 400 naming the problem, and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from datadog_api_client.v2.model.case_resource_type import CaseResourceType
from datadog_api_client.v2.model.case_update_status import CaseUpdateStatus
from datadog_api_client.v2.model.case_update_status_attributes import CaseUpdateStatusAttributes
from datadog_api_client.v2.model.case_update_status_request import CaseUpdateStatusRequest
from datadog_api_client.v2.model.project_resource_type import ProjectResourceType
from datadog_api_client.v2.model.project_update import ProjectUpdate
from datadog_api_client.v2.model.project_update_attributes import ProjectUpdateAttributes
from datadog_api_client.v2.model.project_update_request import ProjectUpdateRequest
from sqlalchemy.ext.asyncio import AsyncSession

from casem.adapters.storage.tables import timeline_cells
from casem.domain.events import DomainEvent
from casem.domain.timeline import CHANGE_CELL_TYPES, COMMENT_MAX
from casem.topology.tenants import CASE_MANAGEMENT
from tests.api.helpers import (
    add_user,
    event_types,
    make_case,
    make_comment,
    make_project,
    outbox,
    update_comment_request,
)
from tests.support.api_client import OrgClient


@dataclass
class Scene:
    """An org with a project, a case and a comment on it, and a second user."""

    org: OrgClient
    project_id: str
    case_id: str
    cell_id: str
    colleague: str


@pytest.fixture
def scene(org: OrgClient) -> Scene:
    project = make_project(org)
    case = make_case(org, project.id)
    cell = make_comment(org, case.id, "first")
    return Scene(org, project.id, case.id, cell.id, add_user(org, "colleague@example.com"))


def change_cells(org: OrgClient) -> dict[str, dict[str, Any]]:
    """The org's change (non-comment) timeline cells, by the id of the event that made them."""

    async def _read() -> dict[str, dict[str, Any]]:
        async with org.server.context.uow(read_only=True) as uow:
            rows = await uow.execute(
                sa.select(timeline_cells).where(
                    timeline_cells.c.org_id == org.org_id, timeline_cells.c.type != "COMMENT"
                )
            )
            return {row.source_event_id: dict(row._mapping) for row in rows}

    return org.server.call(_read())


def comment_cells(org: OrgClient, case_id: str) -> list[dict[str, Any]]:
    return [
        c
        for c in org.http.get(f"/api/v2/cases/{case_id}/timelines").json()["data"]
        if c["attributes"]["type"] == "COMMENT"
    ]


def status_request(status: str) -> CaseUpdateStatusRequest:
    return CaseUpdateStatusRequest(
        data=CaseUpdateStatus(attributes=CaseUpdateStatusAttributes(status=status), type=CaseResourceType.CASE)
    )


def _delete_empty_project(s: Scene) -> None:
    s.org.cases.delete_project(project_id=make_project(s.org).id)


# name -> (the mutation through the official client, the events it must add, in order)
MUTATIONS: dict[str, tuple[Callable[[Scene], object], list[str]]] = {
    "create_project": (lambda s: make_project(s.org), ["project.created"]),
    "update_project": (
        lambda s: s.org.cases.update_project(
            project_id=s.project_id,
            body=ProjectUpdateRequest(
                data=ProjectUpdate(attributes=ProjectUpdateAttributes(name="Renamed"), type=ProjectResourceType.PROJECT)
            ),
        ),
        ["project.updated"],
    ),
    "delete_project": (_delete_empty_project, ["project.created", "project.deleted"]),
    "create_case": (lambda s: make_case(s.org, s.project_id), ["case.created"]),
    "update_status": (
        lambda s: s.org.cases.update_status(case_id=s.case_id, body=status_request("IN_PROGRESS")),
        ["case.status_changed"],
    ),
    "comment_case": (lambda s: make_comment(s.org, s.case_id, "second"), ["case.comment_added"]),
    "update_case_comment": (
        lambda s: s.org.cases.update_case_comment(
            case_id=s.case_id, cell_id=s.cell_id, body=update_comment_request("edited")
        ),
        ["case.comment_updated"],
    ),
    "delete_case_comment": (
        lambda s: s.org.cases.delete_case_comment(case_id=s.case_id, cell_id=s.cell_id),
        ["case.comment_deleted"],
    ),
    "watch_case": (lambda s: s.org.cases.watch_case(case_id=s.case_id, user_uuid=s.colleague), ["case.watcher_added"]),
    "watch_case_twice": (
        lambda s: [s.org.cases.watch_case(case_id=s.case_id, user_uuid=s.colleague) for _ in range(2)],
        ["case.watcher_added"],
    ),
    "unwatch_case": (
        lambda s: (
            s.org.cases.watch_case(case_id=s.case_id, user_uuid=s.colleague),
            s.org.cases.unwatch_case(case_id=s.case_id, user_uuid=s.colleague),
            s.org.cases.unwatch_case(case_id=s.case_id, user_uuid=s.colleague),
        ),
        ["case.watcher_added", "case.watcher_removed"],
    ),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_each_mutation_adds_exactly_its_events(scene: Scene, name: str) -> None:
    act, expected = MUTATIONS[name]
    org = scene.org
    before, cells_before = outbox(org), change_cells(org)
    started = datetime.now(UTC)
    act(scene)
    added = outbox(org)[len(before) :]
    assert event_types(added) == expected

    new_cells = {k: v for k, v in change_cells(org).items() if k not in cells_before}
    for env in added:
        short = event_types([env])[0]
        assert env["specversion"] == "1.0"
        assert str(uuid.UUID(env["id"])) == env["id"]
        assert env["type"] == f"com.casem.{short}.v1"
        assert env["source"] == f"casem/case-api/{CASE_MANAGEMENT}"
        kind, _, subject_id = env["subject"].partition("/")
        assert kind == short.split(".")[0] and subject_id
        if kind == "case":
            assert env["caseid"] == subject_id
        assert started - timedelta(seconds=5) <= datetime.fromisoformat(env["time"]) <= datetime.now(UTC)
        assert env["orgid"] == org.org_id
        assert env["actorid"] == org.user_id
        assert env["datacontenttype"] == "application/json"
        assert isinstance(env["data"], dict)
        # Each case change has exactly one timeline cell, made from this very event.
        if short in CHANGE_CELL_TYPES:
            cell = new_cells.pop(env["id"])
            assert cell["type"] == CHANGE_CELL_TYPES[short]
            assert cell["case_id"] == env["caseid"]
    assert new_cells == {}, "change cells without their event"
    assert len({e["id"] for e in outbox(org)}) == len(outbox(org))


def _raise(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("injected failure")


# Where the commit breaks. Both points come after `session.flush()` wrote the change's rows.
FAILURES: dict[str, tuple[type, str]] = {
    # Building the envelopes: the rows are flushed, the outbox insert has not run.
    "before the outbox insert": (DomainEvent, "envelope"),
    # The outbox rows are inserted too: only the transaction's commit is left.
    "at the commit": (AsyncSession, "commit"),
}

ATTEMPTS: dict[str, Callable[[Scene], tuple[str, str]]] = {
    "comment_case": lambda s: ("POST", f"/api/v2/cases/{s.case_id}/comment"),
    "update_case_comment": lambda s: ("PUT", f"/api/v2/cases/{s.case_id}/comment/{s.cell_id}"),
    "delete_case_comment": lambda s: ("DELETE", f"/api/v2/cases/{s.case_id}/comment/{s.cell_id}"),
    "watch_case": lambda s: ("POST", f"/api/v2/cases/{s.case_id}/watchers/{s.colleague}"),
}


def _state(s: Scene) -> dict[str, Any]:
    http = s.org.http
    return {
        "case": http.get(f"/api/v2/cases/{s.case_id}").json(),
        "timeline": http.get(f"/api/v2/cases/{s.case_id}/timelines").json(),
        "watchers": http.get(f"/api/v2/cases/{s.case_id}/watchers").json(),
        "outbox": outbox(s.org),
        "change_cells": change_cells(s.org),
    }


@pytest.mark.answers_undocumented(500)  # the injected fault's
@pytest.mark.parametrize("where", list(FAILURES))
@pytest.mark.parametrize("attempt", list(ATTEMPTS))
def test_a_failure_inside_commit_leaves_neither_change_nor_event(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, where: str, attempt: str
) -> None:
    before = _state(scene)
    method, path = ATTEMPTS[attempt](scene)
    calls: list[str] = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(where)
        return _raise(*args, **kwargs)

    owner, name = FAILURES[where]
    monkeypatch.setattr(owner, name, failing)
    body = {"data": {"type": "case", "attributes": {"comment": "lost"}}} if method != "DELETE" else None
    # Its own connection: after an unhandled error the server drops the connection it answered on.
    with httpx.Client(base_url=str(scene.org.http.base_url), headers=dict(scene.org.http.headers)) as http:
        response = http.request(method, path, json=body)
    monkeypatch.undo()

    assert calls, "the failure was not reached: the test proves nothing"
    assert response.status_code == 500, response.text
    assert "injected" not in response.text  # internals are logged, not returned
    assert _state(scene) == before
    # The same request succeeds once the fault is gone: nothing was left half-written in the way.
    retry = scene.org.http.request(method, path, json=body)
    assert retry.status_code < 300, retry.text
    assert len(outbox(scene.org)) == len(before["outbox"]) + 1


BIG = "x" * (COMMENT_MAX + 1)
COMMENT_BODIES: list[tuple[str, str]] = [
    ('{"data": {"type": "case", "attributes": {"comment": "x"', "malformed JSON"),
    ("", "request body is empty"),
    ('{"data": {"type": "cases", "attributes": {"comment": "x"}}}', "/data/type"),
    ('{"data": {"type": "project", "attributes": {"comment": "x"}}}', "/data/type"),
    ('{"data": {"type": "case", "attributes": {"comment": 42}}}', "comment must be a non-empty string"),
    ('{"data": {"type": "case", "attributes": {"comment": ["x"]}}}', "comment must be a non-empty string"),
    ('{"data": {"type": "case", "attributes": {"comment": "   "}}}', "comment must be a non-empty string"),
    ('{"data": {"type": "case", "attributes": {"comment": "' + BIG + '"}}}', f"the limit is {COMMENT_MAX}"),
    ('{"data": {"type": "case", "attributes": {"comment": "x", "colour": 1}}}', "/data/attributes/colour"),
    ('{"data": {"type": "case", "attributes": {"comment": "x"}}, "meta": {}}', "/meta"),
    ('{"data": {"type": "case", "attributes": {}}}', "/data/attributes/comment is required"),
    ('{"data": []}', "/data"),
    ("[]", "Input should be"),
    ('{"data": {"type": "case", "attributes": {"comment": "' + "y" * 1_100_000 + '"}}}', "byte limit of this route"),
]


def _bad_requests(s: Scene) -> list[tuple[str, str, str, str]]:
    """(method, path, raw body, what the error must name)."""
    comment = f"/api/v2/cases/{s.case_id}/comment"
    cell = f"{comment}/{s.cell_id}"
    timeline = f"/api/v2/cases/{s.case_id}/timelines"
    watchers = f"/api/v2/cases/{s.case_id}/watchers"
    good = '{"data": {"type": "case", "attributes": {"comment": "x"}}}'
    return [
        *[("POST", comment, body, fragment) for body, fragment in COMMENT_BODIES],
        *[("PUT", cell, body, fragment) for body, fragment in COMMENT_BODIES],
        ("PUT", f"{comment}/not-a-uuid", good, "cell_id"),
        ("DELETE", f"{comment}/not-a-uuid", "", "cell_id"),
        ("DELETE", f"{comment}/{s.cell_id[:-1]}", "", "cell_id"),
        ("GET", f"{timeline}?page[size]=0", "", "page[size]"),
        ("GET", f"{timeline}?page[size]=1001", "", "page[size]"),
        ("GET", f"{timeline}?page[size]=ten", "", "page[size]"),
        ("GET", f"{timeline}?page[number]=-1", "", "page[number]"),
        ("GET", f"{timeline}?page[number]=99999999999999999999", "", "page[number]"),
        ("GET", f"{timeline}?sort[ascending]=maybe", "", "sort[ascending]"),
        ("POST", f"{watchers}/not-a-uuid", "", "user_uuid"),
        ("POST", f"{watchers}/{s.colleague}x", "", "user_uuid"),
        ("DELETE", f"{watchers}/12345", "", "user_uuid"),
    ]


def test_bad_input_is_a_400_that_names_the_problem_and_changes_nothing(scene: Scene) -> None:
    scene.org.cases.watch_case(case_id=scene.case_id, user_uuid=scene.org.user_id)
    before = _state(scene)
    failures = []
    for method, path, body, fragment in _bad_requests(scene):
        response = scene.org.http.request(
            method, path, content=body.encode(), headers={"Content-Type": "application/json"}
        )
        label = f"{method} {path[:90]} {body[:60]!r}"
        # An oversized body is refused as such (413) before it is read whole; the rest is a 400.
        status, title = (413, "Payload Too Large") if "byte limit" in fragment else (400, "Bad Request")
        if response.status_code != status:
            failures.append(f"{label}: {response.status_code} {response.text[:200]}")
            continue
        error = response.json()["errors"][0]
        named = error["detail"] + " " + str(error.get("source", {}).get("pointer", ""))
        if error["status"] != str(status) or error["title"] != title or fragment not in named:
            failures.append(f"{label}: expected {fragment!r} in {error}")
    assert not failures, "\n".join(failures)
    assert _state(scene) == before
