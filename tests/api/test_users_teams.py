from __future__ import annotations

import uuid

import pytest
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.team_create import TeamCreate
from datadog_api_client.v2.model.team_create_attributes import TeamCreateAttributes
from datadog_api_client.v2.model.team_create_request import TeamCreateRequest
from datadog_api_client.v2.model.team_type import TeamType
from datadog_api_client.v2.model.user_create_attributes import UserCreateAttributes
from datadog_api_client.v2.model.user_create_data import UserCreateData
from datadog_api_client.v2.model.user_create_request import UserCreateRequest
from datadog_api_client.v2.model.users_type import UsersType

from tests.support.api_client import OrgClient


def create_user(org: OrgClient, email: str, **attrs: str):
    body = UserCreateRequest(
        data=UserCreateData(attributes=UserCreateAttributes(email=email, **attrs), type=UsersType.USERS)
    )
    return org.users.create_user(body=body).data


def create_team(org: OrgClient, handle: str, name: str | None = None, **attrs):
    body = TeamCreateRequest(
        data=TeamCreate(
            attributes=TeamCreateAttributes(handle=handle, name=name or handle, **attrs), type=TeamType.TEAM
        )
    )
    return org.teams.create_team(body=body).data


def test_create_get_and_list_users(org: OrgClient) -> None:
    user = create_user(org, "Jane.Doe@Example.com", name="Jane Doe", title="SRE")
    assert str(user.type) == "users"
    assert user.attributes.email == "jane.doe@example.com"  # lower-cased, as Datadog does
    assert user.attributes.handle == "jane.doe@example.com"
    assert (user.attributes.name, user.attributes.title) == ("Jane Doe", "SRE")
    assert user.attributes.disabled is False
    assert user.attributes.service_account is False

    fetched = org.users.get_user(user_id=user.id).data
    assert (fetched.id, fetched.attributes.email) == (user.id, "jane.doe@example.com")

    everyone = org.users.list_users()
    assert {u.attributes.email for u in everyone.data} == {"admin@example.com", "jane.doe@example.com"}
    assert everyone.meta.page.total_count == 2

    filtered = org.users.list_users(filter="JANE")
    assert [u.id for u in filtered.data] == [user.id]
    assert (filtered.meta.page.total_count, filtered.meta.page.total_filtered_count) == (2, 1)
    assert org.users.list_users(filter="nobody").data == []
    assert org.users.list_users(filter_status="Disabled").data == []


def test_users_page_and_sort(org: OrgClient) -> None:
    for name in ("Carol", "Alice", "Bob"):
        create_user(org, f"{name.lower()}@example.com", name=name)
    names = [u.attributes.name for u in org.users.list_users(sort="name", filter="example.com", page_size=2).data]
    assert names == ["Admin", "Alice"]
    second = org.users.list_users(sort="name", page_size=2, page_number=1).data
    assert [u.attributes.name for u in second] == ["Bob", "Carol"]
    assert [u.attributes.name for u in org.users.list_users(sort="-name", page_size=1).data] == ["Carol"]
    paged = [u.attributes.name for u in org.users.list_users_with_pagination(page_size=3, sort="name")]
    assert paged == ["Admin", "Alice", "Bob", "Carol"]
    with pytest.raises(ApiException) as err:
        org.users.list_users(page_size=101)
    assert err.value.status == 400


def test_duplicate_or_invalid_user_is_refused(org: OrgClient) -> None:
    create_user(org, "dup@example.com")
    with pytest.raises(ApiException) as err:
        create_user(org, "DUP@example.com")
    assert err.value.status == 409
    response = org.http.post("/api/v2/users", json={"data": {"type": "users", "attributes": {"email": "nope"}}})
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/email"
    assert org.users.list_users(filter="nope").meta.page.total_filtered_count == 0


def test_users_are_scoped_to_the_callers_org(org: OrgClient, other_org: OrgClient) -> None:
    mine = create_user(org, "private@example.com")
    with pytest.raises(NotFoundException):
        other_org.users.get_user(user_id=mine.id)
    assert [u.id for u in other_org.users.list_users().data] == [other_org.user_id]
    # The same e-mail may exist in two orgs: they are different users.
    assert create_user(other_org, "private@example.com").id != mine.id
    with pytest.raises(NotFoundException):
        org.users.get_user(user_id="REPLACE.ME")


def test_create_get_and_list_teams(org: OrgClient, other_org: OrgClient) -> None:
    handle = f"test-handle-{uuid.uuid4().hex[:8]}"
    team = create_team(
        org,
        handle,
        "SRE",
        description="Keeps it up",
        avatar="🥑",
        banner=7,
        visible_modules=["m1", "m2"],
        hidden_modules=["m3"],
    )
    assert str(team.type) == "team"
    attrs = team.attributes
    assert (attrs.handle, attrs.name, attrs.avatar, attrs.banner) == (handle, "SRE", "🥑", 7)
    assert (attrs.visible_modules, attrs.hidden_modules) == (["m1", "m2"], ["m3"])
    assert org.teams.get_team(team_id=team.id).data.attributes.description == "Keeps it up"

    create_team(org, "a-team", "Alpha")
    listed = org.teams.list_teams()
    assert [t.attributes.name for t in listed.data] == ["Alpha", "SRE"]
    assert listed.meta.pagination.total == 2
    assert [t.attributes.name for t in org.teams.list_teams(sort="-name").data] == ["SRE", "Alpha"]
    assert [t.id for t in org.teams.list_teams(filter_keyword="keeps").data] == [team.id]
    sparse = org.teams.list_teams(fields_team=["name", "handle"]).data[0].attributes
    assert set(sparse.to_dict()) == {"name", "handle"}
    assert [t.attributes.name for t in org.teams.list_teams_with_pagination(page_size=1)] == ["Alpha", "SRE"]

    with pytest.raises(NotFoundException):
        other_org.teams.get_team(team_id=team.id)
    assert other_org.teams.list_teams().data == []


def test_duplicate_or_invalid_team_is_refused(org: OrgClient) -> None:
    create_team(org, "ops")
    with pytest.raises(ApiException) as err:
        create_team(org, "ops", "Other name")
    assert err.value.status == 409
    for attributes, pointer in (
        ({"handle": "has space", "name": "x"}, "/data/attributes/handle"),
        ({"handle": "ok", "name": ""}, "/data/attributes/name"),
        ({"handle": "ok", "name": "x", "banner": -1}, "/data/attributes/banner"),
    ):
        response = org.http.post("/api/v2/team", json={"data": {"type": "team", "attributes": attributes}})
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["source"]["pointer"] == pointer
    # Members named at creation must be users of the org: the team is not made without them.
    members = {"users": {"data": [{"id": org.user_id, "type": "users"}, {"id": str(uuid.uuid4()), "type": "users"}]}}
    response = org.http.post(
        "/api/v2/team",
        json={"data": {"type": "team", "attributes": {"handle": "ok", "name": "x"}, "relationships": members}},
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/relationships/users/data/1/id"
    assert [t.attributes.handle for t in org.teams.list_teams().data] == ["ops"]
    members["users"]["data"].pop()
    response = org.http.post(
        "/api/v2/team",
        json={"data": {"type": "team", "attributes": {"handle": "ok", "name": "x"}, "relationships": members}},
    )
    assert response.status_code == 201 and response.json()["data"]["attributes"]["user_count"] == 1
    assert [t.attributes.handle for t in org.teams.list_teams(filter_me=True).data] == ["ok"]
