"""`casem admin`: orgs, users and keys (keys are printed once and stored hashed), and the networks each
org's outbound calls may reach besides public addresses."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from casem.adapters.http import ALLOW_ENV
from casem.adapters.storage.tables import orgs, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.context import AppContext
from casem.app.identity import service
from casem.app.outbound import service as outbound
from casem.domain.errors import DomainError
from casem.domain.identity import API_KEY, APP_KEY

app = typer.Typer(
    help="Administer orgs, users and API/application keys.\n\n"
    "Example: casem admin create-org Acme; casem admin create-user ORG_ID jane@acme.test; "
    "casem admin create-key ORG_ID --kind application --user USER_ID",
    no_args_is_help=True,
)
console = Console()
T = TypeVar("T")


def _with_uow(fn: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    async def main() -> T:
        ctx = AppContext.open()
        try:
            async with ctx.uow() as uow:
                result = await fn(uow)
                await uow.commit()
                return result
        finally:
            await ctx.close()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


@app.command("create-org")
def create_org(name: str) -> None:
    """Create an org and print its id."""

    async def go(uow: UnitOfWork) -> str:
        return (await service.create_org(uow, name)).id

    console.print(_with_uow(go))


@app.command("create-user")
def create_user(org_id: str, email: str, name: str | None = typer.Option(None)) -> None:
    """Create a user in an org and print its id."""

    async def go(uow: UnitOfWork) -> str:
        if not await service.org_exists(uow, org_id):
            raise DomainError(f"org {org_id} not found; list orgs with `casem admin list-orgs`")
        return (await service.create_user(uow, org_id, email, name=name)).id

    console.print(_with_uow(go))


@app.command("create-key")
def create_key(
    org_id: str,
    kind: str = typer.Option(API_KEY, help=f"{API_KEY!r} (DD-API-KEY) or {APP_KEY!r} (DD-APPLICATION-KEY)."),
    user: str | None = typer.Option(None, help="User the application key acts as (required for application keys)."),
    name: str = typer.Option("cli", help="A label for the key."),
) -> None:
    """Issue a key and print the secret: it is shown only now, casem stores its hash."""

    async def go(uow: UnitOfWork) -> str:
        if not await service.org_exists(uow, org_id):
            raise DomainError(f"org {org_id} not found; list orgs with `casem admin list-orgs`")
        return service.issue_key(uow, org_id, kind, name, user_id=user).secret

    console.print(_with_uow(go))


@app.command("list-orgs")
def list_orgs() -> None:
    """List orgs with their user counts."""

    async def go(uow: UnitOfWork) -> list[sa.Row]:
        stmt = (
            sa.select(orgs.c.id, orgs.c.name, sa.func.count(users.c.id))
            .select_from(orgs.outerjoin(users, users.c.org_id == orgs.c.id))
            .group_by(orgs.c.id, orgs.c.name)
            .order_by(orgs.c.name)
        )
        return list((await uow.execute(stmt)).all())

    table = Table("org id", "name", "users")
    for row in _with_uow(go):
        table.add_row(row[0], row[1], str(row[2]))
    console.print(table)


# -- the per-org outbound allow-list (operators only: no tenant API changes it) ----------------------------


@app.command("allow-outbound")
def allow_outbound(
    org_id: str,
    network: str = typer.Argument(..., help="A CIDR network or an address: 10.20.0.0/16, 192.168.5.7, fd00:1::/64."),
    note: str | None = typer.Option(None, help="Why this org may reach it (shown by list-outbound)."),
) -> None:
    """Let an org's webhooks and connectors reach an internal network (an on-premises receiver)."""

    async def go(uow: UnitOfWork) -> str:
        return await outbound.allow_network(uow, org_id, network, note)

    console.print(f"allowed {_with_uow(go)} for org {org_id}")


@app.command("disallow-outbound")
def disallow_outbound(org_id: str, network: str) -> None:
    """Remove a network from an org's outbound allow-list."""

    async def go(uow: UnitOfWork) -> str:
        return await outbound.disallow_network(uow, org_id, network)

    console.print(f"removed {_with_uow(go)} from org {org_id}")


@app.command("list-outbound")
def list_outbound(org_id: str | None = typer.Argument(None, help="One org; default: every org.")) -> None:
    """List the networks orgs may reach besides public addresses (and the operator's CASEM_OUTBOUND_ALLOW)."""

    async def go(uow: UnitOfWork) -> list[sa.Row]:
        return await outbound.list_allowed(uow, org_id)

    table = Table("org id", "network", "note", "added")
    for row in _with_uow(go):
        table.add_row(row.org_id, row.network, row.note or "", row.created_at.isoformat(timespec="seconds"))
    console.print(table)
    operator = os.environ.get(ALLOW_ENV, "")
    console.print(f"operator-wide ({ALLOW_ENV}): {operator or '(none)'}")
