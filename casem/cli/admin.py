"""`casem admin`: orgs, users, keys, console passwords and the outbound allow-list (keys are printed once
and stored hashed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from casem.cli.output import Column, Format, LazyConsole, format_option, print_rows
from casem.domain.identity import API_KEY, APP_KEY

if TYPE_CHECKING:  # the database stack is imported when a command runs, so `--help` stays quick
    from casem.adapters.storage.unit_of_work import UnitOfWork


app = typer.Typer(
    help="Administer orgs, users, API/application keys, console passwords and the outbound allow-list.\n\n"
    "Example: casem admin create-org Acme; casem admin create-user ORG_ID jane@acme.test; "
    "casem admin create-key ORG_ID --kind application --user USER_ID; casem admin list-keys ORG_ID; "
    "casem admin revoke-key ORG_ID KEY_ID",
    no_args_is_help=True,
)
T = TypeVar("T")


console = LazyConsole()


def _with_uow(fn: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    import asyncio

    from casem.app.context import AppContext
    from casem.domain.errors import DomainError

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


async def _require_org(uow: UnitOfWork, org_id: str) -> None:
    from casem.app.identity import service
    from casem.domain.errors import DomainError

    if not await service.org_exists(uow, org_id):
        raise DomainError(f"org {org_id} not found; list orgs with `casem admin list-orgs`")


@app.command("create-org")
def create_org(name: str) -> None:
    """Create an org and print its id."""

    from casem.app.identity import service

    async def go(uow: UnitOfWork) -> str:
        return (await service.create_org(uow, name)).id

    console.print(_with_uow(go))


@app.command("create-user")
def create_user(org_id: str, email: str, name: str | None = typer.Option(None)) -> None:
    """Create a user in an org and print its id."""
    from casem.app.identity import service

    async def go(uow: UnitOfWork) -> str:
        await _require_org(uow, org_id)
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
    from casem.app.identity import keys

    async def go(uow: UnitOfWork) -> str:
        await _require_org(uow, org_id)
        # The shared use case: the user must be an enabled user of this org (checked before anything is stored).
        return (await keys.create_key(uow, org_id, kind, name, owner_id=user)).secret

    console.print(_with_uow(go))


@app.command("bootstrap-credentials")
def bootstrap_credentials(org_id: str) -> None:
    """Issue the key pair `casem up` prints for an org (e.g. one that came in by `casem import`) and save it
    beside the data, where `casem up` finds it."""
    from casem.app.identity import service
    from casem.cli.runtime import BOOTSTRAP_FILE, save_bootstrap
    from casem.topology.tenants import data_dir

    async def go(uow: UnitOfWork) -> service.BootstrapCredentials:
        return await service.bootstrap_existing_org(uow, org_id)

    creds = _with_uow(go)
    path = data_dir() / BOOTSTRAP_FILE
    save_bootstrap(path, creds)
    console.print(f"DD-API-KEY {creds.api_key}\nDD-APPLICATION-KEY {creds.app_key}\nsaved in {path} (0600)")


@app.command("list-orgs")
def list_orgs(fmt: Format = format_option()) -> None:
    """List orgs with their user counts."""
    import sqlalchemy as sa

    from casem.adapters.storage.tables import orgs, users

    async def go(uow: UnitOfWork) -> list[Any]:
        stmt = (
            sa.select(orgs.c.id, orgs.c.name, sa.func.count(users.c.id))
            .select_from(orgs.outerjoin(users, users.c.org_id == orgs.c.id))
            .group_by(orgs.c.id, orgs.c.name)
            .order_by(orgs.c.name)
        )
        return list((await uow.execute(stmt)).all())

    rows = [{"id": row[0], "name": row[1], "users": row[2]} for row in _with_uow(go)]
    columns = [
        Column("org id", "id", priority=9),
        Column("name", "name", priority=8),
        Column("users", "users", 1, "right"),
    ]
    print_rows(rows, columns, fmt, empty="no orgs yet: `casem up` creates the first one")


@app.command("list-users")
def list_users(org_id: str, fmt: Format = format_option()) -> None:
    """List an org's users (id, email, name, status)."""
    from casem.app.identity import service

    async def go(uow: UnitOfWork) -> list[dict[str, object]]:
        await _require_org(uow, org_id)
        found: list[dict[str, object]] = []
        number = 0
        while True:  # every page: the admin wants the whole org
            batch, _total, _filtered = await service.list_users(
                uow, org_id, service.page_of(number, service.PAGE_SIZE_MAX), sort="email"
            )
            found += [
                {"id": u.id, "email": u.email, "name": u.name or "", "status": "disabled" if u.disabled else "active"}
                for u in batch
            ]
            if len(batch) < service.PAGE_SIZE_MAX:
                return found
            number += 1

    columns = [
        Column("user id", "id", priority=9),
        Column("email", "email", priority=8),
        Column("name", "name", priority=2),
        Column("status", "status", priority=5),
    ]
    print_rows(_with_uow(go), columns, fmt, empty="no users in this org")


@app.command("list-keys")
def list_keys(
    org_id: str,
    kind: str | None = typer.Option(None, help=f"Only {API_KEY!r} or only {APP_KEY!r} keys; default both."),
    user: str | None = typer.Option(None, help="Only the application keys of this user."),
    fmt: Format = format_option(),
) -> None:
    """List an org's live keys: id, kind, name, last four characters, owner. Secrets are never shown."""
    from casem.app.identity import keys

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
                "owner_email": owners.get(c.user_id or ""),  # none: an API key belongs to the org
                "created_at": c.created_at.isoformat(),
            }
            for c in found
        ]

    # Ids are what `revoke-key` takes: they have the highest priority, so a narrow terminal drops others first.
    columns = [
        Column("key id", "id", priority=9),
        Column("kind", "kind", priority=7),
        Column("last4", "last4", priority=6),
        Column("name", "name", priority=3),
        Column("owner", "owner_email", priority=4),
    ]
    print_rows(_with_uow(go), columns, fmt, empty="no live keys in this org")


@app.command("revoke-key")
def revoke_key(org_id: str, key_id: str) -> None:
    """Revoke a key of the org: it authenticates nothing from the next request on (a running case-api that saw it
    lately remembers it for at most CASEM_AUTH_CACHE_SECONDS, 5 by default)."""
    from casem.app.identity import keys

    async def go(uow: UnitOfWork) -> str:
        await _require_org(uow, org_id)
        revoked = await keys.revoke_key(uow, org_id, key_id, actor_id=None)
        return f"revoked {revoked.kind} key {revoked.id} ({revoked.name}, ...{revoked.last4})"

    console.print(_with_uow(go))


@app.command("create-token")
def create_token(
    org_id: str,
    user: str = typer.Option(..., help="The user the personal access token acts as."),
    name: str = typer.Option("cli", help="A label for the token."),
    days: int = typer.Option(30, help="Days until the token expires (more than 1: Datadog wants 24 hours ahead)."),
) -> None:
    """Issue a personal access token (sent as DD-APPLICATION-KEY) and print it: it is shown only now."""
    from datetime import timedelta

    from casem.app.access_tokens import service as tokens
    from casem.domain.events import utcnow

    async def go(uow: UnitOfWork) -> str:
        await _require_org(uow, org_id)
        expires_at = utcnow() + timedelta(days=days)
        return (await tokens.create_token(uow, org_id, user, name, expires_at, actor_id=None)).secret

    console.print(_with_uow(go))


@app.command("list-tokens")
def list_tokens(
    org_id: str,
    user: str | None = typer.Option(None, help="Only the tokens of this user."),
    fmt: Format = format_option(),
) -> None:
    """List an org's unrevoked personal access tokens: id, name, public portion, owner, expiry, last use."""
    from casem.app.access_tokens import service as tokens
    from casem.app.identity.service import PAGE_SIZE_MAX, Page

    async def go(uow: UnitOfWork) -> list[dict[str, object]]:
        await _require_org(uow, org_id)
        filters = tokens.TokenFilters(owned_by=(user,) if user else ())
        rows: list[dict[str, object]] = []
        number = 0
        while True:
            found, total = await tokens.list_tokens(uow, org_id, Page(number, PAGE_SIZE_MAX), filters=filters)
            rows += [
                {
                    "id": t.id,
                    "name": t.name,
                    "public_portion": t.public_portion,
                    "owner": t.user_id,
                    "expires_at": t.expires_at.isoformat() if t.expires_at else None,
                    "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                }
                for t in found
            ]
            number += 1
            if len(rows) >= total or not found:
                return rows

    columns = [
        Column("token id", "id", priority=9),
        Column("public portion", "public_portion", priority=6),
        Column("name", "name", priority=3),
        Column("owner", "owner", priority=4),
        Column("expires", "expires_at", priority=5),
        Column("last used", "last_used_at", priority=2),
    ]
    print_rows(_with_uow(go), columns, fmt, empty="no personal access tokens in this org")


@app.command("revoke-token")
def revoke_token(org_id: str, token_id: str) -> None:
    """Revoke a personal access token: it authenticates nothing from the next request on (a running case-api
    that saw it lately remembers it for at most CASEM_AUTH_CACHE_SECONDS, 5 by default)."""
    from casem.app.access_tokens import service as tokens

    async def go(uow: UnitOfWork) -> str:
        await _require_org(uow, org_id)
        revoked = await tokens.revoke_token(uow, org_id, token_id, actor_id=None)
        return f"revoked personal access token {revoked.id} ({revoked.name}, {revoked.public_portion})"

    console.print(_with_uow(go))


@app.command("set-password")
def set_password(
    email: str,
    org_id: str | None = typer.Option(None, "--org", help="The user's org, when the e-mail is in several."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 12 characters (asked for)."
    ),
) -> None:
    """Set a user's web console password (creating their console account); their other sessions end."""
    import sqlalchemy as sa

    from casem.adapters.storage.tables import users
    from casem.app.console.accounts import set_password as set_console_password
    from casem.app.console.sessions import end_other_sessions
    from casem.domain.errors import DomainError

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


# -- the per-org outbound allow-list (operators only: no tenant API changes it) ----------------------------


@app.command("allow-outbound")
def allow_outbound(
    org_id: str,
    network: str = typer.Argument(..., help="A CIDR network or an address: 10.20.0.0/16, 192.168.5.7, fd00:1::/64."),
    note: str | None = typer.Option(None, help="Why this org may reach it (shown by list-outbound)."),
) -> None:
    """Let an org's webhooks and connectors reach an internal network (an on-premises receiver)."""
    from casem.app.outbound import service as outbound

    async def go(uow: UnitOfWork) -> str:
        return await outbound.allow_network(uow, org_id, network, note)

    console.print(f"allowed {_with_uow(go)} for org {org_id}")


@app.command("disallow-outbound")
def disallow_outbound(org_id: str, network: str) -> None:
    """Remove a network from an org's outbound allow-list."""
    from casem.app.outbound import service as outbound

    async def go(uow: UnitOfWork) -> str:
        return await outbound.disallow_network(uow, org_id, network)

    console.print(f"removed {_with_uow(go)} from org {org_id}")


@app.command("list-outbound")
def list_outbound(
    org_id: str | None = typer.Argument(None, help="One org; default: every org."), fmt: Format = format_option()
) -> None:
    """List the networks orgs may reach besides public addresses (and the operator's CASEM_OUTBOUND_ALLOW)."""
    import os

    from casem.adapters.http import ALLOW_ENV
    from casem.app.outbound import service as outbound

    async def go(uow: UnitOfWork) -> list[Any]:
        return await outbound.list_allowed(uow, org_id)

    rows = [
        {
            "org_id": row.org_id,
            "network": row.network,
            "note": row.note or "",
            "added": row.created_at.isoformat(timespec="seconds"),
        }
        for row in _with_uow(go)
    ]
    columns = [
        Column("org id", "org_id", priority=9),
        Column("network", "network", priority=9),
        Column("note", "note", priority=2),
        Column("added", "added", priority=3),
    ]
    print_rows(rows, columns, fmt, empty="no org may reach internal networks")
    if fmt != Format.json:
        operator = os.environ.get(ALLOW_ENV, "")
        console.print(f"operator-wide ({ALLOW_ENV}): {operator or '(none)'}")
