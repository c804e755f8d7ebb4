"""Case watchers through the official client: list_case_watchers, watch_case, unwatch_case."""

from __future__ import annotations

import pytest
from datadog_api_client.exceptions import ApiException, NotFoundException

from tests.api.helpers import add_user, event_types, make_case, make_project, outbox
from tests.support.api_client import OrgClient


def watcher_ids(org: OrgClient, case_id: str) -> list[str]:
    watchers = org.cases.list_case_watchers(case_id=case_id).data
    for w in watchers:
        assert str(w.type) == "watcher"
        assert str(w.relationships.user.data.type) == "users"
        assert w.relationships.user.data.id == w.id
    return [w.id for w in watchers]


def test_watch_list_unwatch(org: OrgClient) -> None:
    case = make_case(org, make_project(org).id)
    colleague = add_user(org, "colleague@example.com")
    assert watcher_ids(org, case.id) == []
    before = len(outbox(org))

    assert org.cases.watch_case(case_id=case.id, user_uuid=org.user_id) is None
    org.cases.watch_case(case_id=case.attributes.key, user_uuid=colleague)  # by case key too
    assert sorted(watcher_ids(org, case.id)) == sorted([org.user_id, colleague])

    org.cases.unwatch_case(case_id=case.id, user_uuid=org.user_id)
    assert watcher_ids(org, case.id) == [colleague]

    events = outbox(org)[before:]
    assert event_types(events) == ["case.watcher_added", "case.watcher_added", "case.watcher_removed"]
    assert [e["data"]["user_id"] for e in events] == [org.user_id, colleague, org.user_id]
    assert {e["caseid"] for e in events} == {case.id}
    assert {e["actorid"] for e in events} == {org.user_id}


def test_watch_and_unwatch_are_idempotent_and_answer_201_and_204(org: OrgClient) -> None:
    case = make_case(org, make_project(org).id)
    path = f"/api/v2/cases/{case.id}/watchers/{org.user_id}"
    before = len(outbox(org))
    for _ in range(2):
        response = org.http.post(path)
        assert response.status_code == 201, response.text
    assert watcher_ids(org, case.id) == [org.user_id]
    for _ in range(2):
        response = org.http.delete(path)
        assert response.status_code == 204, response.text
    assert watcher_ids(org, case.id) == []
    # Only the effective changes are events.
    assert event_types(outbox(org)[before:]) == ["case.watcher_added", "case.watcher_removed"]


def test_users_must_belong_to_the_org(org: OrgClient, other_org: OrgClient) -> None:
    case = make_case(org, make_project(org).id)
    before = len(outbox(org))
    for user in (other_org.user_id, "5b3bd0b7-8d1c-4b6e-9d0a-2f3a3f6f4b11"):
        with pytest.raises(NotFoundException):
            org.cases.watch_case(case_id=case.id, user_uuid=user)
        with pytest.raises(NotFoundException):
            org.cases.unwatch_case(case_id=case.id, user_uuid=user)
    with pytest.raises(ApiException) as err:
        org.cases.watch_case(case_id=case.id, user_uuid="not-a-uuid")
    assert err.value.status == 400
    assert "user_uuid" in str(err.value.body)
    with pytest.raises(NotFoundException):
        org.cases.watch_case(case_id="5b3bd0b7-8d1c-4b6e-9d0a-2f3a3f6f4b11", user_uuid=org.user_id)
    with pytest.raises(NotFoundException):
        org.cases.list_case_watchers(case_id="NOPE-1")
    assert watcher_ids(org, case.id) == []
    assert outbox(org)[before:] == []


def test_watchers_of_one_case_are_not_anothers(org: OrgClient) -> None:
    project = make_project(org)
    first, second = make_case(org, project.id), make_case(org, project.id, "second")
    org.cases.watch_case(case_id=first.id, user_uuid=org.user_id)
    assert watcher_ids(org, first.id) == [org.user_id]
    assert watcher_ids(org, second.id) == []
