"""Project favorites through the official client: favorite_case_project, unfavorite_case_project,
list_user_case_project_favorites. Favorites are per user."""

from __future__ import annotations

import pytest
from datadog_api_client.exceptions import NotFoundException

from tests.api.helpers import add_user, as_user, make_project, outbox
from tests.support.api_client import OrgClient


def favorites(org: OrgClient) -> list[str]:
    found = org.cases.list_user_case_project_favorites().data
    assert {str(f.type) for f in found} <= {"project_favorite"}
    return [f.id for f in found]


def test_favorite_list_unfavorite_per_user(org: OrgClient) -> None:
    first, second, third = make_project(org), make_project(org), make_project(org)
    colleague = as_user(org, add_user(org, "colleague@example.com"))
    before = len(outbox(org))
    assert favorites(org) == []

    assert org.cases.favorite_case_project(project_id=second.id) is None
    org.cases.favorite_case_project(project_id=first.id)
    org.cases.favorite_case_project(project_id=second.id)  # again: still one favorite
    colleague.cases.favorite_case_project(project_id=third.id)
    assert favorites(org) == [second.id, first.id]
    assert favorites(colleague) == [third.id]

    org.cases.unfavorite_case_project(project_id=second.id)
    org.cases.unfavorite_case_project(project_id=second.id)  # again: nothing to drop, still a 204
    org.cases.unfavorite_case_project(project_id=third.id)  # the colleague's favorite is not this user's
    assert favorites(org) == [first.id]
    assert favorites(colleague) == [third.id]

    # A deleted project is no one's favorite any more.
    org.cases.delete_project(project_id=first.id)
    assert favorites(org) == []
    # A personal bookmark: nothing for the outbox besides the project's own deletion.
    assert [e["type"] for e in outbox(org)[before:]] == ["com.casem.project.deleted.v1"]
    colleague.api_client.close()
    colleague.http.close()


def test_unknown_and_another_orgs_projects_are_not_found(org: OrgClient, other_org: OrgClient) -> None:
    project = make_project(org)
    org.cases.favorite_case_project(project_id=project.id)
    for call in (other_org.cases.favorite_case_project, other_org.cases.unfavorite_case_project):
        with pytest.raises(NotFoundException) as err:
            call(project_id=project.id)
        assert project.id in str(err.value.body)
    with pytest.raises(NotFoundException):
        org.cases.favorite_case_project(project_id="not-a-project")
    assert favorites(other_org) == []
    assert favorites(org) == [project.id]
