"""An on-call world for the escalation suites: an org with people, their notification channels and rules, schedules,
policies and pages, made through the same use cases the API calls; and the loopback receivers they are paged on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.http import AllowList
from casem.adapters.notify.smtp import SmtpSettings
from casem.adapters.notify.twilio import TwilioSettings
from casem.adapters.storage.tables import oncall_notifications, timeline_cells
from casem.app.context import AppContext
from casem.app.identity.service import add_member, bootstrap_org, create_team, create_user
from casem.app.oncall import notifications, pages, policies, routing, schedules
from casem.app.oncall.delivery import Senders
from casem.app.oncall.directory import Directory
from casem.domain.oncall import Page
from casem.topology.tenants import CASE_MANAGEMENT, ON_CALL
from tests.support.receivers import PushReceiver, SmtpReceiver, TwilioLoopback

LOOPBACK = AllowList.parse(["127.0.0.0/8"], allow_host_names=False)


@dataclass
class Receivers:
    smtp: SmtpReceiver
    twilio: TwilioLoopback
    push: PushReceiver

    @classmethod
    def start(cls) -> Receivers:
        return cls(SmtpReceiver().start(), TwilioLoopback().start(), PushReceiver().start())

    def env(self) -> dict[str, str]:
        return {**self.smtp.env(), **self.twilio.env(), "CASEM_OUTBOUND_ALLOW": "127.0.0.0/8"}

    def senders(self) -> Senders:
        twilio = TwilioSettings(self.twilio.url, self.twilio.account_sid, self.twilio.auth_token, "+15005550006")
        smtp = SmtpSettings(host="127.0.0.1", port=self.smtp.port, sender="pager@casem")
        return Senders(smtp=smtp, twilio=twilio, allow=LOOPBACK)

    def received(self) -> dict[str, list[str]]:
        """What arrived, by medium: the email idempotency keys, SMS texts, call recipients, push keys (raw, with
        repeats)."""
        return {
            "email": sorted(str(m["X-Casem-Idempotency-Key"]) for m in self.smtp.sink.messages),
            "sms": sorted(m["body"] for m in self.twilio.messages),
            "voice": sorted(c["to"] for c in self.twilio.calls),
            "push": sorted(r["key"] for r in self.push.raw if r["valid"]),
        }

    def total(self) -> int:
        return sum(len(v) for v in self.received().values())

    def stop(self) -> None:
        self.smtp.stop()
        self.twilio.stop()
        self.push.stop()


@dataclass
class Pager:
    ctx: AppContext
    org_id: str
    admin: str
    people: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def create(cls, ctx: AppContext) -> Pager:
        async with ctx.uow() as uow:
            creds = await bootstrap_org(uow, f"pager-{uuid.uuid4().hex[:6]}", "admin@example.com")
            await uow.commit()
        return cls(ctx, creds.org_id, creds.user_id, {"admin": creds.user_id})

    async def person(self, name: str) -> str:
        async with self.ctx.uow() as uow:
            user = await create_user(uow, self.org_id, f"{name}-{uuid.uuid4().hex[:6]}@example.com", name=name.title())
            await uow.commit()
        self.people[name] = user.id
        return user.id

    async def team(self, handle: str, members: list[str]) -> str:
        async with self.ctx.uow() as uow:
            team = await create_team(uow, self.org_id, handle, handle.title())
            await uow.session.flush()
            for member in members:
                await add_member(uow, self.org_id, team.id, member, None, self.admin)
            await uow.commit()
        return team.id

    async def _oncall(self, action: Any) -> Any:
        async with self.ctx.uow(ON_CALL) as uow, self.ctx.uow(CASE_MANAGEMENT, read_only=True) as people:
            result = await action(uow, Directory(people, self.org_id))
            await uow.commit()
        return result

    async def channel(self, user_id: str, config: dict[str, Any]) -> tuple[str, str | None]:
        channel, secret = await self._oncall(
            lambda uow, d: notifications.create_channel(uow, d, self.org_id, self.admin, user_id, {"config": config})
        )
        return channel.id, secret

    async def rule(self, user_id: str, channel_id: str, *, delay: int = 0, method: str | None = None,
                   category: str = "high_urgency") -> str:  # fmt: skip
        attrs: dict[str, Any] = {"category": category, "delay_minutes": delay}
        if method:
            attrs["channel_settings"] = {"type": "phone", "method": method}
        relationships = {"channel": {"data": {"id": channel_id, "type": "notification_channels"}}}
        rule, _ = await self._oncall(
            lambda uow, d: notifications.create_rule(uow, d, self.org_id, self.admin, user_id, attrs, relationships)
        )
        return rule.id

    async def reachable(self, user_id: str, receivers: Receivers, *, push: bool = True, voice: bool = False) -> None:
        """Email, SMS (and push, and a call) at once, on the loopback receivers."""
        email, _ = await self.channel(user_id, {"type": "email", "address": f"{user_id}@pager.example"})
        phone, _ = await self.channel(user_id, {"type": "phone", "number": phone_number(user_id)})
        await self.rule(user_id, email)
        await self.rule(user_id, phone, method="sms")
        if voice:
            await self.rule(user_id, phone, method="voice")
        if push:
            channel, secret = await self.channel(
                user_id,
                {"type": "push", "application_name": "casem", "device_name": "phone", "url": receivers.push.url},
            )
            assert secret is not None
            receivers.push.secrets.append(secret)
            await self.rule(user_id, channel)

    async def schedule(self, members: list[str], start: datetime, days: int = 1) -> str:
        attrs = {
            "name": f"schedule-{uuid.uuid4().hex[:4]}",
            "time_zone": "UTC",
            "layers": [
                {
                    "name": "l",
                    "effective_date": start.isoformat(),
                    "rotation_start": start.isoformat(),
                    "interval": {"days": days},
                    "members": [{"user": {"id": m}} for m in members],
                }
            ],
        }
        schedule = await self._oncall(
            lambda uow, d: schedules.create_schedule(uow, d, self.org_id, self.admin, attrs, [])
        )
        return schedule.id

    async def policy(self, steps: list[dict[str, Any]], *, retries: int = 0, resolve: bool = False,
                     teams: list[str] | None = None) -> str:  # fmt: skip
        attrs = {"name": f"policy-{uuid.uuid4().hex[:4]}", "steps": steps, "retries": retries,
                 "resolve_page_on_policy_end": resolve}  # fmt: skip
        policy = await self._oncall(
            lambda uow, d: policies.create_policy(uow, d, self.org_id, self.admin, attrs, teams or [])
        )
        return policy.id

    async def route(self, team_id: str, rules: list[dict[str, Any]]) -> None:
        await self._oncall(lambda uow, d: routing.set_rules(uow, d, self.org_id, self.admin, team_id, None, rules))

    async def page(
        self, target_type: str, identifier: str, title: str = "Database down", urgency: str = "high"
    ) -> Page:
        new = pages.NewPage(title=title, urgency=urgency, target_type=target_type, target_identifier=identifier)
        page, _ = await self._oncall(lambda uow, d: pages.create_page(uow, d, self.org_id, self.admin, new))
        return page

    async def acknowledge(self, page_id: str, user_id: str) -> None:
        async with self.ctx.uow(ON_CALL) as uow:
            await pages.acknowledge_page(uow, self.org_id, user_id, page_id)
            await uow.commit()

    async def notifications(self, page_id: str) -> list[Any]:
        async with self.ctx.uow(ON_CALL, read_only=True) as uow:
            rows = await uow.execute(
                sa.select(oncall_notifications)
                .where(oncall_notifications.c.page_id == page_id)
                .order_by(oncall_notifications.c.created_at)
            )
            return rows.all()

    async def timeline(self, page_id: str) -> list[Any]:
        async with self.ctx.uow(ON_CALL, read_only=True) as uow:
            rows = await uow.execute(
                sa.select(timeline_cells)
                .where(timeline_cells.c.case_id == page_id)
                .order_by(timeline_cells.c.created_at, timeline_cells.c.id)
            )
            return rows.all()


def now() -> datetime:
    return datetime.now(UTC)


def phone_number(user_id: str) -> str:
    """A person's own (made-up) E.164 number."""
    return f"+1415{int(user_id.replace('-', ''), 16) % 10_000_000:07d}"
