"""Projects and case views: keys, names, saved queries and the events their changes record."""

from __future__ import annotations

import pytest

from casem.domain.case_views import CaseView, validate_view_query
from casem.domain.errors import InvalidInput
from casem.domain.projects import Project, validate_name, validate_project_key


@pytest.mark.parametrize("key", ["S", "SEC", "OPS2", "A123456789"])
def test_good_project_keys(key: str) -> None:
    assert validate_project_key(key) == key


@pytest.mark.parametrize("key", ["", "sec", "2FA", "SEC-1", "ABCDEFGHIJK", "SE C", None])
def test_bad_project_keys(key: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_project_key(key)
    assert raised.value.pointer == "/data/attributes/key"
    assert raised.value.detail.startswith("project key must be 1 to 10 upper-case letters or digits")


def test_names() -> None:
    assert validate_name("Security") == "Security"
    with pytest.raises(InvalidInput, match="^name must be a non-empty string$"):
        validate_name(" ")
    with pytest.raises(InvalidInput, match="^name is 256 characters long; the limit is 255$"):
        validate_name("x" * 256)


def test_a_projects_events() -> None:
    project = Project.create(actor_id="u1", id="p1", org_id="o1", key="SEC", name="Security")
    assert not project.update("u1", name="Security")
    assert project.update("u1", name="Sec ops", restricted=True)
    assert project.name == "Sec ops" and project.restricted and project.modified_at is not None
    project.delete("u2")
    assert project.deleted_at is not None
    created, updated, deleted = project.collect_events()
    assert (created.type, created.subject_type, created.data) == (
        "project.created",
        "project",
        {"key": "SEC", "name": "Security"},
    )
    assert updated.data == {"key": "SEC", "changes": {"name": "Sec ops", "restricted": True}}
    assert (deleted.type, deleted.actor_id, deleted.data) == ("project.deleted", "u2", {"key": "SEC"})


def test_a_views_query_must_parse() -> None:
    assert validate_view_query("") == ""
    assert validate_view_query("status:open priority:(p1 OR p2)") == "status:open priority:(p1 OR p2)"
    with pytest.raises(InvalidInput) as raised:
        validate_view_query("status:(open")
    assert raised.value.pointer == "/data/attributes/query"
    assert raised.value.detail.startswith("query syntax error at position 12: expected ')' to close")


def test_a_views_events() -> None:
    view = CaseView.create(actor_id="u1", id="v1", org_id="o1", project_id="p1", name="Mine", query="assignee:me")
    assert view.created_by_id == "u1"
    assert not view.update("u2", name="Mine", query="assignee:me")
    assert view.update("u2", query="assignee:me status:open")
    assert view.modified_by_id == "u2"
    view.delete("u3")
    created, updated, deleted = view.collect_events()
    assert (created.type, created.subject_type, created.subject_id) == ("case_view.created", "case_view", "v1")
    assert created.data == {"project_id": "p1", "name": "Mine", "query": "assignee:me", "np_rule_id": None}
    assert updated.data == {"project_id": "p1", "changes": {"query": "assignee:me status:open"}}
    assert deleted.data == {"project_id": "p1", "name": "Mine"}
