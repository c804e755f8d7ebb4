"""`casem db`: migrate the tenant databases and show where they are."""

from __future__ import annotations

import typer

from casem.cli.output import Column, Format, LazyConsole, format_option, print_rows
from casem.topology.tenants import TENANTS

app = typer.Typer(help="Tenant databases: migrate and inspect.", no_args_is_help=True)
console = LazyConsole(stderr=True)


@app.command("upgrade")
def db_upgrade(tenant: list[str] = typer.Option(None, help="Tenant(s) to migrate; default: all.")) -> None:
    """Apply Alembic migrations to each tenant's database (`casem db upgrade --tenant on-call`)."""
    from casem.adapters.storage.migrate import current_revision, upgrade
    from casem.topology.config import database_endpoints

    for t in tenant or [t.name for t in TENANTS]:
        url = database_endpoints(t).master
        upgrade(url)
        console.print(f"{t}: at revision {current_revision(url)}")


@app.command("status")
def db_status(fmt: Format = format_option()) -> None:
    """Show each tenant's database URL (password hidden) and schema revision."""
    from sqlalchemy.engine import make_url

    from casem.adapters.storage.migrate import current_revision
    from casem.topology.config import database_endpoints

    rows = []
    for t in TENANTS:
        url = database_endpoints(t.name).master
        rows.append(
            {
                "tenant": t.name,
                "url": make_url(url).render_as_string(hide_password=True),
                "revision": current_revision(url),
            }
        )
    columns = [Column("tenant", "tenant", 9), Column("database", "url", 8), Column("revision", "revision", 5)]
    print_rows(rows, columns, fmt)
