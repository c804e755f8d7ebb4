"""`casem admin`: orgs, users and keys (keys are printed once and stored hashed), and the networks each
org's outbound calls may reach besides public addresses."""

from __future__ import annotations

import asyncio
import json
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
from casem.app.console.accounts import set_password as set_console_password
from casem.app.console.sessions import end_other_sessions
from casem.app.context import AppContext
from casem.app.identity import keys, service
from casem.app.outbound import service as outbound
from casem.domain.errors import DomainError
from casem.domain.identity import API_KEY, APP_KEY

app = typer.Typer(
    help="Administer orgs, users and API/application keys.\n\n"
    "Example: casem admin create-org Acme; casem admin create-user ORG_ID jane@acme.test; "
    "casem admin create-key ORG_ID --kind application --user USER_ID; casem admin list-keys ORG_ID; "
    "casem admin revoke-key ORG_ID KEY_ID",
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
        await _require_org(uow, org_id)
        # The shared use case: the user must be an enabled user of this org (checked before anything is stored).
        return (await keys.create_key(uow, org_id, kind, name, owner_id=user)).secret

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


async def _require_org(uow: UnitOfWork, org_id: str) -> None:
    if not await service.org_exists(uow, org_id):
        raise DomainError(f"org {org_id} not found; list orgs with `casem admin list-orgs`")


FORMAT_HELP = "table (for people) or json (for scripts)."


def _check_format(output: str) -> None:
    if output not in ("table", "json"):
        raise typer.BadParameter(f"--format must be table or json, not {output!r}")


@app.command("list-users")
def list_users(
    org_id: str,
    output: str = typer.Option("table", "--format", help=FORMAT_HELP),
) -> None:
    """List an org's users (id, email, name, status)."""
    _check_format(output)

    async def go(uow: UnitOfWork) -> list[dict[str, object]]:
        await _require_org(uow, org_id)
        found: list[dict[str, object]] = []
        number = 0
        while True:  # every page: the admin wants the whole org
            batch, _total, _filtered = await service.list_users(
                uow, org_id, service.page_of(number, service.PAGE_SIZE_MAX), sort="email"
            )
            found += [
                {"id": u.id, "email": u.email, "name": u.name, "status": "disabled" if u.disabled else "active"}
                for u in batch
            ]
            if len(batch) < service.PAGE_SIZE_MAX:
                return found
            number += 1

    rows = _with_uow(go)
    if output == "json":
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    table.add_column("user id", no_wrap=True, min_width=36)
    for name in ("email", "name", "status"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(str(row["id"]), str(row["email"]), str(row["name"] or ""), str(row["status"]))
    console.print(table)


@app.command("list-keys")
def list_keys(
    org_id: str,
    kind: str | None = typer.Option(None, help=f"Only {API_KEY!r} or only {APP_KEY!r} keys; default both."),
    user: str | None = typer.Option(None, help="Only the application keys of this user."),
    output: str = typer.Option("table", "--format", help=FORMAT_HELP),
) -> None:
    """List an org's live keys: id, kind, name, last four characters, owner. Secrets are never shown."""
    _check_format(output)
    if kind not in (None, API_KEY, APP_KEY):
        raise typer.BadParameter(f"--kind must be {API_KEY!r} or {APP_KEY!r}")
    kinds = [kind] if kind else ([APP_KEY] if user else [API_KEY, APP_KEY])

    async def go(uow: UnitOfWork) -> list[dict[str, object]]:
        await _require_org(uow, org_id)
        if user is not None:
            await keys.owner_in_org(uow, org_id, user)
        found = [c for k in kinds for c in (await keys.list_keys(uow, org_id, k, None, owner_id=user))[0]]
        owners = {u.id: u.email for u in await keys.users_by_id(uow, org_id, {c.user_id for c in found} - {None})}
        return [
            {
                "id": c.id,
                "kind": c.kind,
                "name": c.name,
                "last4": c.last4,
                "owner": c.user_id,
                "owner_email": owners.get(c.user_id or ""),
                "created_at": c.created_at.isoformat(),
            }
            for c in found
        ]

    rows = _with_uow(go)
    if output == "json":
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    # Ids are what `revoke-key` takes: never cut them; names and owners wrap instead (--format json has it all).
    table.add_column("key id", no_wrap=True, min_width=36)
    table.add_column("kind", no_wrap=True)
    table.add_column("last4", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("owner", overflow="fold")
    for row in rows:
        kind = "app" if row["kind"] == APP_KEY else "api"
        table.add_row(str(row["id"]), kind, str(row["last4"]), str(row["name"]), str(row["owner_email"] or "(org)"))
    console.print(table)


@app.command("revoke-key")
def revoke_key(org_id: str, key_id: str) -> None:
    """Revoke a key of the org: from the next request on it authenticates nothing."""

    async def go(uow: UnitOfWork) -> str:
        await _require_org(uow, org_id)
        revoked = await keys.revoke_key(uow, org_id, key_id, actor_id=None)
        return f"revoked {revoked.kind} key {revoked.id} ({revoked.name}, ...{revoked.last4})"

    console.print(_with_uow(go))


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
