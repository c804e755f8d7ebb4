"""The outbound allow-lists and the destination policy every outbound call and saved URL is checked with.

Two lists lift the guard's address checks (casem/adapters/http, docs/outbound-http.md): the operator's
(`CASEM_OUTBOUND_ALLOW`, the whole deployment) and an org's own (table `org_outbound_allow`, managed by
operators with `casem admin outbound-allow`; no tenant API changes it). A destination is checked
against their union, when its URL is saved and again when casem connects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from casem.adapters.http import AllowList, DestinationPolicy, allow_list_from_env, system_resolver
from casem.adapters.http.policy import Resolver
from casem.adapters.storage.tables import org_outbound_allow, orgs
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.errors import InvalidInput, NotFound

NETWORK_MAX = 64
NOTE_MAX = 255


@dataclass(frozen=True)
class OutboundSettings:
    """The operator's allow-list, read once at start, and the resolver (tests answer names with their own)."""

    operator_allow: AllowList = field(default_factory=AllowList)
    resolver: Resolver = system_resolver

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OutboundSettings:
        """Raises ValueError naming CASEM_OUTBOUND_ALLOW and the bad entry: meant to stop a process at start."""
        return cls(operator_allow=allow_list_from_env(env))

    def policy(self, org_allow: AllowList | None = None) -> DestinationPolicy:
        allow = (org_allow or AllowList()) | self.operator_allow
        return DestinationPolicy(allow=allow, resolver=self.resolver)


def parse_network(entry: str) -> str:
    """The canonical text of one CIDR network or address (`10.20.0.0/16`, `192.168.5.7`, `fd00:1::/64`)."""
    if not isinstance(entry, str) or not entry.strip() or len(entry) > NETWORK_MAX:
        raise InvalidInput(f"a network is a CIDR network or an address of at most {NETWORK_MAX} characters")
    try:
        parsed = AllowList.parse([entry], allow_host_names=False)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    [network] = parsed.networks
    if network.prefixlen == 0:
        raise InvalidInput(f"{entry!r} allows every address; list the internal networks that are meant")
    return str(network)


async def org_allow_list(uow: UnitOfWork, org_id: str) -> AllowList:
    rows = await uow.execute(sa.select(org_outbound_allow.c.network).where(org_outbound_allow.c.org_id == org_id))
    # Entries were canonical when stored; parse them again rather than trust the column.
    return AllowList.parse([row.network for row in rows], allow_host_names=False)


async def destination_policy(uow: UnitOfWork, settings: OutboundSettings, org_id: str) -> DestinationPolicy:
    """The policy for an org's outbound calls and saved URLs: its allow-list joined with the operator's."""
    return settings.policy(await org_allow_list(uow, org_id))


async def allow_network(uow: UnitOfWork, org_id: str, entry: str, note: str | None = None) -> str:
    """Add a network to an org's allow-list (idempotent); answers its canonical form."""
    network = parse_network(entry)
    if note is not None and len(note) > NOTE_MAX:
        raise InvalidInput(f"a note is at most {NOTE_MAX} characters")
    if not await uow.scalar(sa.select(sa.func.count()).select_from(orgs).where(orgs.c.id == org_id)):
        raise NotFound("org", org_id)
    exists = await uow.scalar(
        sa.select(sa.func.count())
        .select_from(org_outbound_allow)
        .where(org_outbound_allow.c.org_id == org_id, org_outbound_allow.c.network == network)
    )
    if not exists:
        await uow.execute(
            sa.insert(org_outbound_allow).values(
                org_id=org_id, network=network, note=note, created_at=datetime.now(UTC)
            )
        )
    return network


async def disallow_network(uow: UnitOfWork, org_id: str, entry: str) -> str:
    network = parse_network(entry)
    result = await uow.execute(
        sa.delete(org_outbound_allow).where(
            org_outbound_allow.c.org_id == org_id, org_outbound_allow.c.network == network
        )
    )
    if not result.rowcount:
        raise NotFound("allowed network", f"{network} of org {org_id}")
    return network


async def list_allowed(uow: UnitOfWork, org_id: str | None = None) -> list[sa.Row]:
    query = sa.select(org_outbound_allow).order_by(org_outbound_allow.c.org_id, org_outbound_allow.c.network)
    if org_id is not None:
        query = query.where(org_outbound_allow.c.org_id == org_id)
    return list(await uow.execute(query))
