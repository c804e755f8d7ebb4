"""On-call data for the console suites, made through the on-call use cases the On-Call API runs: two people, a
team, a daily rotation in Europe/Paris with an override tomorrow, an escalation policy paging that schedule, the
team's routing rule to it, and pages for the team."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from casem.app.console.accounts import set_password
from casem.app.identity.service import create_team, create_user
from casem.app.oncall import pages, policies, routing, schedules
from casem.app.oncall.directory import Directory
from casem.topology.tenants import ON_CALL
from tests.console.server import PASSWORD, ConsoleServer, World

TIME_ZONE = "Europe/Paris"


@dataclass
class OnCallWorld:
    team_id: str
    team_name: str
    schedule_id: str
    schedule_name: str
    policy_id: str
    alice: str  # names
    bob: str
    alice_id: str
    bob_id: str
    page_ids: list[str]
    page_keys: list[str]


def rotation_start(now: datetime) -> datetime:
    """Three days ago at 09:00 UTC: Alice and Bob hand over every day at that time."""
    return (now - timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)


def build_on_call(
    server: ConsoleServer, world: World, pages_to_open: int = 1, title: str = "Disk full on db"
) -> OnCallWorld:
    org_id, actor = world.creds.org_id, world.creds.user_id
    tag = uuid.uuid4().hex[:6]

    async def build() -> OnCallWorld:
        async with server.context.uow() as people:
            alice = await create_user(people, org_id, f"alice-{tag}@example.com", name=f"Alice {tag}")
            bob = await create_user(people, org_id, f"bob-{tag}@example.com", name=f"Bob {tag}")
            team = await create_team(people, org_id, f"sre-{tag}", f"SRE {tag}", actor_id=actor)
            await people.session.flush()
            await set_password(people, org_id, alice.id, PASSWORD)
            await people.commit()
        now = datetime.now(UTC)
        start = rotation_start(now).isoformat()
        async with server.context.uow(ON_CALL) as uow, server.context.uow(read_only=True) as people:
            directory = Directory(people, org_id)
            schedule = await schedules.create_schedule(
                uow,
                directory,
                org_id,
                actor,
                {
                    "name": f"Primary {tag}",
                    "time_zone": TIME_ZONE,
                    "layers": [
                        {
                            "name": "Weekdays and weekends",
                            "effective_date": start,
                            "rotation_start": start,
                            "interval": {"days": 1},
                            "members": [{"user": {"id": alice.id}}, {"user": {"id": bob.id}}],
                        }
                    ],
                },
                [team.id],
            )
            await uow.session.flush()
            tomorrow = (now + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
            await schedules.add_override(
                uow,
                directory,
                org_id,
                actor,
                schedule.id,
                {"user_id": bob.id, "start": tomorrow.isoformat(), "end": (tomorrow + timedelta(hours=6)).isoformat()},
            )
            policy = await policies.create_policy(
                uow,
                directory,
                org_id,
                actor,
                {
                    "name": f"SRE policy {tag}",
                    "steps": [
                        {"targets": [{"type": "schedules", "id": schedule.id}], "escalate_after_seconds": 300},
                        {"targets": [{"type": "users", "id": world.creds.user_id}], "escalate_after_seconds": 300},
                    ],
                },
                [team.id],
            )
            await uow.session.flush()
            await routing.set_rules(uow, directory, org_id, actor, team.id, None, [{"policy_id": policy.id}])
            opened = []
            for n in range(pages_to_open):
                page, _ = await pages.create_page(
                    uow,
                    directory,
                    org_id,
                    actor,
                    pages.NewPage(
                        title=f"{title}-{n + 1}",
                        urgency="high",
                        target_type=pages.TEAM_ID,
                        target_identifier=team.id,
                    ),
                )
                await uow.session.flush()
                opened.append(page)
            await uow.commit()
        return OnCallWorld(
            team_id=team.id,
            team_name=team.name,
            schedule_id=schedule.id,
            schedule_name=schedule.name,
            policy_id=policy.id,
            alice=alice.name or "",
            bob=bob.name or "",
            alice_id=alice.id,
            bob_id=bob.id,
            page_ids=[p.id for p in opened],
            page_keys=[p.key for p in opened],
        )

    return server.call(build())
