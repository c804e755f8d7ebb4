"""`casem up`, `casem run SERVICE` and `casem db`: start services and manage their databases."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.panel import Panel

from casem.adapters.storage.migrate import current_revision, upgrade
from casem.adapters.storage.tables import orgs
from casem.observability import configure_logging
from casem.services.case_api.context import CaseApiContext
from casem.services.case_api.identity.service import BootstrapCredentials, bootstrap_org
from casem.services.case_api.runner import Listen, serve
from casem.topology.services import SERVICES_BY_NAME
from casem.topology.tenants import CASE_MANAGEMENT, TENANTS, data_dir, database_endpoints

console = Console(stderr=True)
db_app = typer.Typer(help="Tenant databases: migrate and inspect.", no_args_is_help=True)

BOOTSTRAP_FILE = "bootstrap-credentials.json"


async def _bootstrap(ctx: CaseApiContext, path: Path) -> BootstrapCredentials:
    """First run: an org, an admin user and a key pair, saved (0600) so later runs can show them again."""
    if path.exists():
        return BootstrapCredentials(**json.loads(path.read_text()))
    async with ctx.uow() as uow:
        if await uow.scalar(sa.select(sa.func.count()).select_from(orgs)):
            raise typer.BadParameter(
                f"the database already has orgs but {path} is missing; create a key with "
                "`casem admin create-key` instead"
            )
        creds = await bootstrap_org(uow, "casem", "admin@casem.local")
        await uow.commit()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(creds.__dict__, indent=2))
    path.chmod(0o600)
    return creds


def up(
    http_port: int = typer.Option(8080, envvar="CASEM_HTTP_PORT", help="HTTP API port."),
    grpc_port: int = typer.Option(50051, envvar="CASEM_GRPC_PORT", help="gRPC API port."),
    host: str = typer.Option("127.0.0.1", envvar="CASEM_HOST", help="Interface to listen on."),
) -> None:
    """Run everything on embedded defaults (SQLite under ./var) and print the URL and keys.

    Example: `casem up`, then point datadog-api-client at the printed URL with the printed keys.
    Stop with Ctrl-C: in-flight requests finish first.
    """
    configure_logging("casem")
    for t in TENANTS:
        upgrade(database_endpoints(t.name).master)
    ctx = CaseApiContext.open(migrate=False)
    creds_path = data_dir() / BOOTSTRAP_FILE

    async def main() -> None:
        from casem.adapters.bus import open_bus
        from casem.services.local_stack import LocalWorkers

        creds = await _bootstrap(ctx, creds_path)
        bus = open_bus()
        workers = LocalWorkers(ctx, bus)
        flavors = await workers.start()

        def ready(url: str, grpc: str | None) -> None:
            console.print(
                Panel.fit(
                    f"[bold]HTTP API[/]   {url}\n"
                    f"[bold]gRPC API[/]   {grpc or 'not available'}\n"
                    f"[bold]DD-API-KEY[/]         {creds.api_key}\n"
                    f"[bold]DD-APPLICATION-KEY[/] {creds.app_key}\n"
                    f"[bold]workers[/]    case-event-relay, case-event-handler × {len(flavors)} flavors\n"
                    f"[dim]org {creds.org_id} · data in {data_dir()} · keys saved in {creds_path}[/]",
                    title="casem is up",
                )
            )

        try:
            await serve(ctx, Listen(host, http_port, f"{host}:{grpc_port}"), on_ready=ready, close_context=False)
        finally:
            await workers.stop()
            await bus.close()
            await ctx.close()

    asyncio.run(main())


def run(
    service: str = typer.Argument(..., help="Service name, e.g. case-api (see `casem config show`)."),
    flavor: str | None = typer.Option(None, help="Flavor of case-event-handler or case-third-party-reader."),
    http_port: int = typer.Option(8080, envvar="CASEM_HTTP_PORT"),
    grpc_port: int = typer.Option(50051, envvar="CASEM_GRPC_PORT"),
    host: str = typer.Option("0.0.0.0", envvar="CASEM_HOST"),
    ops_port: int = typer.Option(9090, envvar="CASEM_OPS_PORT", help="/healthz, /readyz, /metrics of workers."),
) -> None:
    """Run one service of the seed in the foreground, as Kubernetes does (`casem run case-api`)."""
    if service not in SERVICES_BY_NAME:
        raise typer.BadParameter(f"unknown service {service!r}; choose one of: {', '.join(SERVICES_BY_NAME)}")
    configure_logging(service)
    migrate = os.environ.get("CASEM_MIGRATE_ON_START", "1") == "1"
    if service == "case-api":
        ctx = CaseApiContext.open(migrate=migrate)
        asyncio.run(serve(ctx, Listen(host, http_port, f"{host}:{grpc_port}")))
        return
    if service == "case-event-relay":
        from casem.adapters.bus import open_bus
        from casem.services.case_event_relay.service import run_relay

        ctx = CaseApiContext.open(migrate=migrate)
        asyncio.run(run_relay(ctx, open_bus(), list(ctx.databases), ops_host=host, ops_port=ops_port))
        return
    if service == "case-event-handler":
        from casem.adapters.bus import open_bus
        from casem.services.case_event_handler.service import load_flavor, run_flavor
        from casem.topology.services import EVENT_HANDLER_FLAVORS

        if not flavor:
            raise typer.BadParameter(f"--flavor is required; one of: {', '.join(EVENT_HANDLER_FLAVORS)}")
        try:
            load_flavor(flavor)
        except KeyError as exc:
            raise typer.BadParameter(str(exc.args[0])) from None
        ctx = CaseApiContext.open(migrate=migrate)
        asyncio.run(run_flavor(flavor, ctx, open_bus(), list(ctx.databases), ops_host=host, ops_port=ops_port))
        return
    console.print(f"[red]{service} cannot be started by this build yet[/]: it is tracked in the project's issues.")
    raise typer.Exit(2)


@db_app.command("upgrade")
def db_upgrade(tenant: list[str] = typer.Option(None, help="Tenant(s) to migrate; default: all.")) -> None:
    """Apply Alembic migrations to each tenant's database (`casem db upgrade --tenant on-call`)."""
    for t in tenant or [t.name for t in TENANTS]:
        url = database_endpoints(t).master
        upgrade(url)
        console.print(f"{t}: at revision {current_revision(url)}")


@db_app.command("status")
def db_status() -> None:
    """Show each tenant's database URL (password hidden) and schema revision."""
    from sqlalchemy.engine import make_url

    for t in TENANTS:
        url = database_endpoints(t.name).master
        console.print(f"{t.name}: {make_url(url).render_as_string(hide_password=True)} @ {current_revision(url)}")


__all__ = ["CASE_MANAGEMENT", "db_app", "run", "up"]
