"""On-Call escalation policies, team routing rules and a team's on-call responders, through the official client."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.escalation_policy_update_request import EscalationPolicyUpdateRequest
from datadog_api_client.v2.model.escalation_policy_update_request_data import EscalationPolicyUpdateRequestData
from datadog_api_client.v2.model.escalation_policy_update_request_data_attributes import (
    EscalationPolicyUpdateRequestDataAttributes,
)
from datadog_api_client.v2.model.escalation_policy_update_request_data_attributes_steps_items import (
    EscalationPolicyUpdateRequestDataAttributesStepsItems,
)
from datadog_api_client.v2.model.escalation_policy_update_request_data_type import (
    EscalationPolicyUpdateRequestDataType,
)
from datadog_api_client.v2.model.send_slack_message_action import SendSlackMessageAction
from datadog_api_client.v2.model.send_slack_message_action_type import SendSlackMessageActionType
from datadog_api_client.v2.model.team_routing_rules_request import TeamRoutingRulesRequest
from datadog_api_client.v2.model.team_routing_rules_request_data import TeamRoutingRulesRequestData
from datadog_api_client.v2.model.team_routing_rules_request_data_attributes import (
    TeamRoutingRulesRequestDataAttributes,
)
from datadog_api_client.v2.model.team_routing_rules_request_data_type import TeamRoutingRulesRequestDataType
from datadog_api_client.v2.model.team_routing_rules_request_rule import TeamRoutingRulesRequestRule
from datadog_api_client.v2.model.time_restriction import TimeRestriction
from datadog_api_client.v2.model.time_restrictions import TimeRestrictions
from datadog_api_client.v2.model.urgency import Urgency
from datadog_api_client.v2.model.weekday import Weekday

from tests.api.helpers import add_user
from tests.api.oncall_helpers import (
    event_types_of,
    make_schedule,
    make_team,
    on_call,
    oncall_outbox,
    oneof_types,
    policy_request,
    step,
    target,
)
from tests.support.api_client import OrgClient

START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=10)


def routing_request(team_id: str, rules: list[TeamRoutingRulesRequestRule]) -> TeamRoutingRulesRequest:
    return TeamRoutingRulesRequest(
        data=TeamRoutingRulesRequestData(
            id=team_id,
            type=TeamRoutingRulesRequestDataType.TEAM_ROUTING_RULES,
            attributes=TeamRoutingRulesRequestDataAttributes(rules=rules),
        )
    )


def test_policies_are_created_read_replaced_and_deleted(org: OrgClient) -> None:
    bob = add_user(org, "bob@example.com", name="Bob")
    team = make_team(org, "payments", [org.user_id, bob])
    schedule = make_schedule(org, "Payments", [org.user_id, bob], START)
    api = on_call(org)
    body = policy_request(
        "Payments",
        [
            step([target("users", bob), target("schedules", schedule.data.id, "previous")], after=600),
            step([target("teams", team), target("schedules", schedule.data.id)], assignment="round-robin"),
        ],
        retries=2,
        resolve=True,
        team_ids=[team],
    )
    created = api.create_on_call_escalation_policy(body=body, include="teams,steps,steps.targets")
    attrs = created.data.attributes
    assert (attrs.name, attrs.retries, attrs.resolve_page_on_policy_end) == ("Payments", 2, True)
    assert sorted(oneof_types(created.included)) == sorted(
        [
            "TeamReference",
            "EscalationPolicyStep",
            "EscalationPolicyStep",
            "EscalationPolicyUser",
            "ConfiguredSchedule",
            "ScheduleData",
        ]
    )  # fmt: skip (the team is included once, as a policy team and as a target)
    policy_id = created.data.id
    steps = [
        i.get_oneof_instance()
        for i in created.included
        if type(i.get_oneof_instance()).__name__ == "EscalationPolicyStep"
    ]
    assert [s.attributes.escalate_after_seconds for s in steps] == [600, 300]
    assert [str(s.attributes.assignment) for s in steps] == ["default", "round-robin"]
    configured = [
        t for t in steps[0].relationships.targets.data if str(t.get_oneof_instance().type) == "schedule_target"
    ]
    assert len(configured) == 1

    read = api.get_on_call_escalation_policy(policy_id=policy_id, include="steps")
    first_step = read.data.relationships.steps.data[0].id
    update = EscalationPolicyUpdateRequest(
        data=EscalationPolicyUpdateRequestData(
            id=policy_id,
            type=EscalationPolicyUpdateRequestDataType.POLICIES,
            attributes=EscalationPolicyUpdateRequestDataAttributes(
                name="Payments v2",
                steps=[
                    EscalationPolicyUpdateRequestDataAttributesStepsItems(
                        id=first_step, escalate_after_seconds=120, targets=[target("users", org.user_id)]
                    )
                ],
            ),
        )
    )
    updated = api.update_on_call_escalation_policy(policy_id=policy_id, body=update, include="steps")
    assert updated.data.attributes.name == "Payments v2"
    assert [s.id for s in updated.data.relationships.steps.data] == [first_step]
    api.delete_on_call_escalation_policy(policy_id=policy_id)
    with pytest.raises(NotFoundException):
        api.get_on_call_escalation_policy(policy_id=policy_id)
    assert event_types_of(oncall_outbox(org))[-3:] == [
        "escalation_policy.created",
        "escalation_policy.updated",
        "escalation_policy.deleted",
    ]


@pytest.mark.parametrize(
    ("change", "status", "pointer"),
    [
        ({"steps": [{"escalate_after_seconds": 30, "targets": [{"type": "users", "id": "{me}"}]}]}, 400,
         "/data/attributes/steps/0/escalate_after_seconds"),
        ({"steps": []}, 400, "/data/attributes/steps"),
        ({"retries": 11}, 400, "/data/attributes/retries"),
        ({"steps": [{"targets": [{"type": "users", "id": "{missing}"}]}]}, 404,
         "/data/attributes/steps/0/targets/0/id"),
        ({"steps": [{"targets": [{"type": "schedules", "id": "{missing}"}]}]}, 404,
         "/data/attributes/steps/0/targets/0/id"),
        ({"steps": [{"targets": [{"type": "users", "id": "{me}", "config": {"schedule": {"position": "current"}}}]}]},
         400, "/data/attributes/steps/0/targets/0/config"),
        ({"steps": [{"targets": [{"type": "rooms", "id": "{me}"}]}]}, 400, "/data/attributes/steps/0/targets/0/type"),
    ],
)  # fmt: skip
def test_bad_policies_are_refused_with_the_field(org: OrgClient, change: dict, status: int, pointer: str) -> None:
    import json

    attributes = {"name": "p", "steps": [{"targets": [{"type": "users", "id": "{me}"}]}], **change}
    raw = json.dumps({"data": {"type": "policies", "attributes": attributes}})
    raw = raw.replace("{me}", org.user_id).replace("{missing}", str(uuid.uuid4()))
    before = oncall_outbox(org)
    response = org.http.post(
        "/api/v2/on-call/escalation-policies", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["source"]["pointer"] == pointer
    assert oncall_outbox(org) == before


def test_routing_rules_and_who_is_on_call_for_the_team(org: OrgClient) -> None:
    bob = add_user(org, "bob@example.com", name="Bob")
    cid = add_user(org, "cid@example.com", name="Cid")
    team = make_team(org, "web", [bob])
    schedule = make_schedule(org, "Web", [bob, cid], START)  # START is day 0: bob, day 1 cid, ...
    api = on_call(org)
    policy = api.create_on_call_escalation_policy(
        body=policy_request(
            "Web",
            [
                step([target("schedules", schedule.data.id)]),
                step([target("users", org.user_id), target("teams", team)]),
            ],
        )
    ).data
    rules = [
        TeamRoutingRulesRequestRule(
            query="tags.service:web",
            policy_id=policy.id,
            urgency=Urgency.HIGH,
            time_restriction=TimeRestrictions(
                time_zone="Europe/Paris",
                restrictions=[
                    TimeRestriction(
                        start_day=Weekday.MONDAY, start_time="09:00:00", end_day=Weekday.FRIDAY, end_time="17:00:00"
                    )
                ],
            ),
        ),
        TeamRoutingRulesRequestRule(
            query="",
            actions=[
                SendSlackMessageAction(
                    type=SendSlackMessageActionType.SEND_SLACK_MESSAGE, channel="#web", workspace="acme"
                )
            ],
            policy_id=policy.id,
            urgency=Urgency.LOW,
        ),
    ]
    stored = api.set_on_call_team_routing_rules(team_id=team, body=routing_request(team, rules), include="rules")
    assert oneof_types(stored.included) == ["RoutingRule", "RoutingRule"]
    read = api.get_on_call_team_routing_rules(team_id=team, include="rules,rules.policy")
    first = read.included[0].get_oneof_instance()
    assert first.attributes.query == "tags.service:web" and first.relationships.policy.data.id == policy.id
    assert first.attributes.time_restriction.time_zone == "Europe/Paris"

    now_on_call = bob if (datetime.now(UTC) - START).days % 2 == 0 else cid
    found = api.get_team_on_call_users(team_id=team, include="responders,escalations.responders")
    assert [r.id for r in found.data.relationships.responders.data] == [now_on_call]
    [escalation] = [
        i.get_oneof_instance() for i in found.included if str(i.get_oneof_instance().type) == "escalation_policy_steps"
    ]
    assert [r.id for r in escalation.relationships.responders.data] == [org.user_id, bob]
    assert {i.id for i in found.included if str(i.get_oneof_instance().type) == "users"} == {
        now_on_call,
        org.user_id,
        bob,
    }
    assert "routing_rules.set" in event_types_of(oncall_outbox(org))

    with pytest.raises(ApiException) as conflict:
        api.delete_on_call_escalation_policy(policy_id=policy.id)
    assert conflict.value.status == 409  # the team's rules still run it


@pytest.mark.parametrize(
    ("rule", "status", "pointer"),
    [
        ({"query": "status:(open"}, 400, "/data/attributes/rules/0/query"),
        ({"policy_id": "{missing}"}, 404, "/data/attributes/rules/0/policy_id"),
        ({"urgency": "urgent"}, 400, "/data/attributes/rules/0/urgency"),
        ({"time_restriction": {"time_zone": "Nowhere/Land", "restrictions": []}}, 400,
         "/data/attributes/rules/0/time_restriction/time_zone"),
        ({"actions": [{"type": "send_slack_message", "channel": "#x"}]}, 400,
         "/data/attributes/rules/0/actions/0/workspace"),
    ],
)  # fmt: skip
def test_bad_routing_rules_are_refused_with_the_field(org: OrgClient, rule: dict, status: int, pointer: str) -> None:
    import json

    team = make_team(org, "ops")
    raw = json.dumps({"data": {"type": "team_routing_rules", "attributes": {"rules": [rule]}}})
    raw = raw.replace("{missing}", str(uuid.uuid4()))
    response = org.http.put(
        f"/api/v2/on-call/teams/{team}/routing-rules", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["source"]["pointer"] == pointer
    assert on_call(org).get_on_call_team_routing_rules(team_id=team).data.relationships.rules.data == []
    missing_team = org.http.get(f"/api/v2/on-call/teams/{uuid.uuid4()}/routing-rules")
    assert missing_team.status_code == 404
