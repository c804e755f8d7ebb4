"""`casem admin`: orgs, users and keys (keys are printed once and stored hashed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from casem.adapters.storage.tables import orgs, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.console.accounts import set_password as set_console_password
from casem.app.console.sessions import end_other_sessions
from casem.app.context import AppContext
from casem.app.identity import service
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


@app.command("set-password")
def set_password(
    email: str,
    org_id: str | None = typer.Option(None, "--org", help="The user's org, when the e-mail is in several."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 12 characters (asked for)."
    ),
) -> None:
    """Set a user's web console password (creating their console account); their other sessions end."""

    async def go(uow: UnitOfWork) -> str:
        conditions = [sa.func.lower(users.c.email) == email.lower()]
        if org_id:
            conditions.append(users.c.org_id == org_id)
        found = (await uow.execute(sa.select(users.c.id, users.c.org_id).where(*conditions))).all()
        if not found:
            raise DomainError(f"no user with e-mail {email}; create one with `casem admin create-user`")
        if len(found) > 1:
            raise DomainError(f"{email} is a user in {len(found)} orgs: name one with --org")
        account = await set_console_password(uow, found[0].org_id, found[0].id, password)
        ended = await end_other_sessions(uow, account.id, keep=None)
        return f"password set for {account.email}; {ended} session(s) ended"

    console.print(_with_uow(go))
