"""Team routing rules (which escalation policy a page of the team runs) and who is on call for a team."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.oncall import records
from casem.app.oncall.directory import Directory
from casem.app.oncall.policies import step_responders
from casem.domain.errors import InvalidInput, NotFound
from casem.domain.oncall import EscalationPolicy, EscalationStep, TeamRouting, parse_routing_rules
from casem.domain.oncall_schedules import Schedule


async def set_rules(
    uow: UnitOfWork,
    directory: Directory,
    org_id: str,
    actor_id: str | None,
    team_id: str,
    body_id: str | None,
    raw_rules: object,
) -> TeamRouting:
    team = await directory.team(team_id)
    if body_id is not None and body_id.lower() != team.id:
        raise InvalidInput(f"data.id {body_id!r} is not the id of the team in the path", "/data/id")
    rules = parse_routing_rules(raw_rules)
    for i, rule in enumerate(rules):
        if rule.policy_id:
            await records.load_policy(uow, org_id, rule.policy_id, pointer=f"/data/attributes/rules/{i}/policy_id")
        for j, action in enumerate(rule.actions):
            where = f"/data/attributes/rules/{i}/actions/{j}"
            if action["type"] == "escalation_policy":
                await records.load_policy(uow, org_id, action["policy_id"], pointer=f"{where}/policy_id")
            if action["type"] == "reroute_to_team":
                await directory.team(action["destination_team_id"], f"{where}/destination_team_id")
            if action["type"] == "send_teams_message" and await directory.teams_connector(action["channel"]) is None:
                # casem posts to Teams through the org's connectors (notification endpoints), named by `channel`.
                raise NotFound("Microsoft Teams connector", action["channel"], f"{where}/channel")
    routing = await records.load_routing(uow, org_id, team.id)
    routing.set_rules(rules, actor_id)
    await records.save_routing(uow, routing)
    return routing


async def get_rules(uow: UnitOfWork, directory: Directory, org_id: str, team_id: str) -> TeamRouting:
    team = await directory.team(team_id)
    return await records.load_routing(uow, org_id, team.id)


async def team_policy(uow: UnitOfWork, org_id: str, team_id: str) -> EscalationPolicy | None:
    """The policy a page of the team runs when no rule says otherwise: that of the first routing rule naming one,
    else the first policy linked to the team."""
    routing = await records.load_routing(uow, org_id, team_id)
    for rule in routing.rules:
        if rule.policy_ids:
            return await records.load_policy(uow, org_id, rule.policy_ids[0])
    return next((p for p in await records.load_policies(uow, org_id) if team_id in p.team_ids), None)


@dataclass
class TeamOnCall:
    policy: EscalationPolicy | None
    responders: list[str] = field(default_factory=list)  # who the first step pages now
    escalations: list[tuple[EscalationStep, list[str]]] = field(default_factory=list)  # the later steps, in order


async def team_on_call(uow: UnitOfWork, directory: Directory, org_id: str, team_id: str, at: datetime) -> TeamOnCall:
    team = await directory.team(team_id)
    policy = await team_policy(uow, org_id, team.id)
    if policy is None:
        return TeamOnCall(None)
    schedules: dict[str, Schedule] = {}
    steps = [(step, await step_responders(uow, directory, org_id, step, at, schedules)) for step in policy.steps]
    return TeamOnCall(policy, steps[0][1], steps[1:])
