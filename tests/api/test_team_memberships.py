"""What On-Call needs of Datadog's Users and Teams APIs: team memberships, changing a team's handle, deleting a team
and disabling a user, through the official client."""

from __future__ import annotations

import pytest
from datadog_api_client.exceptions import ApiException, ForbiddenException, NotFoundException
from datadog_api_client.v2.model.relationship_to_user_team_user import RelationshipToUserTeamUser
from datadog_api_client.v2.model.relationship_to_user_team_user_data import RelationshipToUserTeamUserData
from datadog_api_client.v2.model.team_type import TeamType
from datadog_api_client.v2.model.team_update import TeamUpdate
from datadog_api_client.v2.model.team_update_attributes import TeamUpdateAttributes
from datadog_api_client.v2.model.team_update_request import TeamUpdateRequest
from datadog_api_client.v2.model.user_team_attributes import UserTeamAttributes
from datadog_api_client.v2.model.user_team_create import UserTeamCreate
from datadog_api_client.v2.model.user_team_relationships import UserTeamRelationships
from datadog_api_client.v2.model.user_team_request import UserTeamRequest
from datadog_api_client.v2.model.user_team_role import UserTeamRole
from datadog_api_client.v2.model.user_team_type import UserTeamType
from datadog_api_client.v2.model.user_team_update import UserTeamUpdate
from datadog_api_client.v2.model.user_team_update_request import UserTeamUpdateRequest
from datadog_api_client.v2.model.user_team_user_type import UserTeamUserType

from tests.api.helpers import add_user, as_user
from tests.api.oncall_helpers import make_team, on_call, page_request, paging, policy_request, step, target
from tests.support.api_client import OrgClient


def membership(user_id: str, role: UserTeamRole | None = None) -> UserTeamRequest:
    attrs = {"attributes": UserTeamAttributes(role=role)} if role else {}
    return UserTeamRequest(
        data=UserTeamCreate(
            type=UserTeamType.TEAM_MEMBERSHIPS,
            relationships=UserTeamRelationships(
                user=RelationshipToUserTeamUser(
                    data=RelationshipToUserTeamUserData(id=user_id, type=UserTeamUserType.USERS)
                )
            ),
            **attrs,
        )
    )


def test_team_members_come_and_go(org: OrgClient) -> None:
    ann = add_user(org, "ann@example.com", name="Ann")
    bob = add_user(org, "bob@example.com", name="Bob")
    team = make_team(org, "sre")
    added = org.teams.create_team_membership(team_id=team, body=membership(ann, UserTeamRole.ADMIN))
    assert str(added.data.attributes.role) == "admin" and added.data.relationships.user.data.id == ann
    org.teams.create_team_membership(team_id=team, body=membership(bob))
    with pytest.raises(ApiException) as twice:
        org.teams.create_team_membership(team_id=team, body=membership(bob))
    assert twice.value.status == 409
    members = org.teams.get_team_memberships(team_id=team)
    assert [m.relationships.user.data.id for m in members.data] == [ann, bob]  # by name
    assert members.meta.pagination.total == 2
    assert org.teams.get_team(team_id=team).data.attributes.user_count == 2
    assert [m.relationships.team.data.id for m in org.teams.get_user_memberships(user_uuid=bob).data] == [team]

    update = UserTeamUpdateRequest(
        data=UserTeamUpdate(type=UserTeamType.TEAM_MEMBERSHIPS, attributes=UserTeamAttributes(role=UserTeamRole.ADMIN))
    )
    assert str(org.teams.update_team_membership(team_id=team, user_id=bob, body=update).data.attributes.role) == "admin"
    org.teams.delete_team_membership(team_id=team, user_id=ann)
    assert [m.relationships.user.data.id for m in org.teams.get_team_memberships(team_id=team).data] == [bob]
    with pytest.raises(NotFoundException):
        org.teams.delete_team_membership(team_id=team, user_id=ann)


def test_a_team_handle_changes_and_pages_follow_it(org: OrgClient) -> None:
    team = make_team(org, "db", [org.user_id])
    on_call(org).create_on_call_escalation_policy(
        body=policy_request("db", [step([target("users", org.user_id)])], team_ids=[team])
    )
    body = TeamUpdateRequest(
        data=TeamUpdate(type=TeamType.TEAM, attributes=TeamUpdateAttributes(handle="database", name="Database"))
    )
    updated = org.teams.update_team(team_id=team, body=body)
    assert (updated.data.attributes.handle, updated.data.attributes.name) == ("database", "Database")
    assert paging(org).create_on_call_page(body=page_request("slow", "team_handle", "database")).data.id
    with pytest.raises(NotFoundException):
        paging(org).create_on_call_page(body=page_request("slow", "team_handle", "db"))
    make_team(org, "taken")
    taken = TeamUpdateRequest(
        data=TeamUpdate(type=TeamType.TEAM, attributes=TeamUpdateAttributes(handle="taken", name="x"))
    )
    with pytest.raises(ApiException) as conflict:
        org.teams.update_team(team_id=team, body=taken)
    assert conflict.value.status == 409

    org.teams.delete_team(team_id=team)
    with pytest.raises(NotFoundException):
        org.teams.get_team(team_id=team)
    with pytest.raises(NotFoundException):
        on_call(org).get_on_call_team_routing_rules(team_id=team)


def test_a_disabled_user_can_no_longer_sign_in(org: OrgClient) -> None:
    bob = add_user(org, "bob@example.com", name="Bob")
    as_bob = as_user(org, bob)
    assert as_bob.users.get_user(user_id=bob).data.attributes.disabled is False
    org.users.disable_user(user_id=bob)
    assert org.users.get_user(user_id=bob).data.attributes.status == "Disabled"
    with pytest.raises(ForbiddenException):
        as_bob.users.get_user(user_id=bob)
    org.users.disable_user(user_id=bob)  # again: nothing more to do
    with pytest.raises(NotFoundException):
        org.users.disable_user(user_id="00000000-0000-4000-8000-000000000000")
