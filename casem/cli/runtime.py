"""`casem up` and `casem run SERVICE`: start services.

Only typer and the registries are imported here; each command imports what it runs, so `--help` is quick.
Both listen on loopback unless told otherwise (`--all-interfaces`, or `--host`); both check their ports
before starting anything, stop on SIGINT/SIGTERM within the grace period, and say when they stopped.
"""

from __future__ import annotations

import gc
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from casem.cli.lifecycle import (
    DataDirLock,
    Interrupted,
    PortOption,
    fail,
    interruptible_startup,
    port_problem,
    run_until_stopped,
    say,
)
from casem.topology.services import SERVICES_BY_NAME
from casem.topology.tenants import TENANTS, data_dir

if TYPE_CHECKING:
    import asyncio

    from casem.app.context import AppContext
    from casem.app.identity.service import BootstrapCredentials
    from casem.cli.local_stack import Running, Stack

BOOTSTRAP_FILE = "bootstrap-credentials.json"
# The banner reads in the order a case travels: the API, intake, indexing, the events and their consumers.
BANNER_ORDER = (
    "case-console",
    "case-api",
    "case-intake",
    "case-indexer",
    "case-event-relay",
    "case-event-handler",
    "caseworker",
    "case-connector-ingress",
    "case-third-party-reader",
    "case-chat-interactions",
)
LOOPBACK, ALL_INTERFACES = "127.0.0.1", "0.0.0.0"


def _host_option() -> Any:
    return typer.Option(LOOPBACK, envvar="CASEM_HOST", help="Interface to listen on (default: this machine only).")


def _all_interfaces_option() -> Any:
    return typer.Option(False, "--all-interfaces", help=f"Listen on every interface ({ALL_INTERFACES}), not loopback.")


def _bind_host(host: str, all_interfaces: bool) -> str:
    return ALL_INTERFACES if all_interfaces else host


def save_bootstrap(path: Path, creds: BootstrapCredentials) -> None:
    from casem.adapters.private_files import open_private, private_directory

    private_directory(path.parent)
    with open_private(path, "w", exclusive=False) as out:  # 0600 from the start: it holds the keys
        out.write(json.dumps(creds.__dict__, indent=2))


async def _bootstrap(ctx: AppContext, path: Path) -> BootstrapCredentials:
    """First run: an org, an admin user and a key pair, saved (0600) so later runs can show them again.

    After `casem import` into a fresh data directory the database has orgs but no saved keys: with one org,
    `up` issues a key pair for it (imported keys' secrets never travel); with several, it names the command
    that does it for the org of your choice."""
    import sqlalchemy as sa

    from casem.adapters.storage.tables import orgs
    from casem.app.identity.service import BootstrapCredentials, bootstrap_existing_org, bootstrap_org

    if path.exists():
        saved = json.loads(path.read_text())
        return BootstrapCredentials(**{k: saved[k] for k in ("org_id", "user_id", "api_key", "app_key")})
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
            say(f"imported org {found[0].name}: issued a key pair for it (saved in {_relative(path)})")
        else:
            creds = await bootstrap_org(uow, "casem", "admin@casem.local")
        await uow.commit()
    save_bootstrap(path, creds)
    return creds


async def _first_admin_password(ctx: AppContext, creds: BootstrapCredentials, path: Path) -> str | None:
    """The first admin's console password: made once (random), set on their account and kept beside the keys
    (0600) so every `casem up` can say how to sign in. None when someone already set a password another way."""
    from casem.app.console.accounts import account_of_user, set_password

    saved = json.loads(path.read_text())
    if saved.get("console_password"):
        return str(saved["console_password"])
    async with ctx.uow() as uow:
        if await account_of_user(uow, creds.org_id, creds.user_id) is not None:
            return None
        password = secrets.token_urlsafe(15)
        await set_password(uow, creds.org_id, creds.user_id, password)
        await uow.commit()
    saved["console_password"] = password
    path.write_text(json.dumps(saved, indent=2))
    path.chmod(0o600)
    return password


# --- casem up ------------------------------------------------------------------------------------


def up(
    http_port: int = typer.Option(8080, envvar="CASEM_HTTP_PORT", help="case-api HTTP port."),
    grpc_port: int = typer.Option(50051, envvar="CASEM_GRPC_PORT", help="case-api gRPC port."),
    intake_port: int = typer.Option(50052, envvar="CASEM_INTAKE_PORT", help="case-intake gRPC port."),
    console_port: int = typer.Option(8081, envvar="CASEM_CONSOLE_PORT", help="Web console port (case-console)."),
    connector_port: int = typer.Option(
        8090, envvar="CASEM_CONNECTOR_PORT", help="Jira / ServiceNow webhook receivers (case-connector-ingress)."
    ),
    chat_grpc_port: int = typer.Option(50053, envvar="CASEM_CHAT_GRPC_PORT", help="case-chat-interactions gRPC port."),
    chat_port: int = typer.Option(8091, envvar="CASEM_CHAT_PORT", help="Slack / Teams bridge HTTP port."),
    temporal_port: int = typer.Option(
        7233,
        envvar="CASEM_TEMPORAL_PORT",
        help="Port of the Temporal dev server `up` starts (unless CASEM_TEMPORAL_ADDRESS names a running Temporal).",
    ),
    host: str = _host_option(),
    all_interfaces: bool = _all_interfaces_option(),
    services: str | None = typer.Option(
        None,
        "--services",
        envvar="CASEM_UP_SERVICES",
        help="Comma-separated services to run (default: every built one), e.g. case-api,case-intake,case-indexer.",
    ),
) -> None:
    """Run every built service in one process on embedded defaults (SQLite, log and search under ./var), and
    print their addresses and the API keys.

    Services: caseworker (with a Temporal dev server), case-api, case-event-relay, case-event-handler (every
    flavor), case-indexer, case-intake, case-third-party-reader (jira, servicenow), case-connector-ingress,
    case-chat-interactions, case-console (the web console). Example: `casem up`, then open the printed console
    URL, or call the printed API URL with the printed keys; `casem up --services case-api,case-event-relay`
    runs fewer. Stop with Ctrl-C: in-flight work
    finishes first (up to 10 s).
    """
    from casem.cli.local_stack import LOCAL_SERVICES, LOCAL_SERVICES_BY_NAME, StackOptions

    chosen = _choose(services, LOCAL_SERVICES_BY_NAME)
    options = StackOptions(
        _bind_host(host, all_interfaces),
        http_port,
        grpc_port,
        intake_port,
        console_port=console_port,
        connector_port=connector_port,
        chat_grpc_port=chat_grpc_port,
        chat_http_port=chat_port,
    )
    temporal = _temporal_address()
    dev_server_needed = not temporal and any(LOCAL_SERVICES_BY_NAME[n].needs_temporal for n in chosen)
    ports = [p for s in LOCAL_SERVICES if s.name in chosen for p in s.ports(options)]
    temporal_ports = [PortOption("Temporal dev server", temporal_port, "--temporal-port", "CASEM_TEMPORAL_PORT")]

    lock = DataDirLock(data_dir())
    lock.acquire()
    dev_server = None

    def release() -> None:
        if dev_server is not None:
            dev_server.stop(timeout=5)
        lock.release()

    try:
        if dev_server_needed:
            # A dev server an earlier crashed run left on our state file holds our port: it is ours to stop
            # (we hold the data directory's lock), not a reason to refuse to start.
            from casem.adapters.workflows.devserver import stop_stale_servers

            stop_stale_servers(data_dir() / "temporal" / "dev.db")
        problem = port_problem(options.host, ports + (temporal_ports if dev_server_needed else []))
        if problem:
            raise fail(problem)
        started = time.monotonic()
        with interruptible_startup():
            _configure_logging_for_a_person()
            say(f"casem up: {', '.join(chosen)}")
            _migrate()
            if dev_server_needed:
                dev_server = _start_temporal_dev_server(temporal_port)
                temporal = dev_server.address
    except Interrupted as exc:
        release()
        say(f"casem stopped ({exc} during start-up)")
        return
    except BaseException:
        release()
        raise

    async def main(stop: asyncio.Event) -> None:
        await _run_stack(chosen, options, temporal, dev_server is not None, stop, started)

    run_until_stopped("casem", main, host=options.host, ports=ports, after=release)


def _temporal_address() -> str | None:
    """CASEM_TEMPORAL_ADDRESS, else the configuration file's or the datacenter catalog's."""
    from casem.topology.config import temporal_settings

    return temporal_settings().address


def _choose(services: str | None, runnable: dict[str, Any]) -> list[str]:
    if not services:
        return list(runnable)
    names = [s.strip() for s in services.split(",") if s.strip()]
    for name in names:
        if name not in runnable:
            built = ", ".join(runnable)
            if name in SERVICES_BY_NAME:
                raise fail(f"{name} is not built yet, so `casem up` cannot run it; built: {built}", code=2)
            raise fail(f"unknown service {name!r}; `casem up` runs: {built}", code=2)
    return [name for name in runnable if name in names]  # the table's order: dependencies first


def _configure_logging_for_a_person() -> None:
    from casem.observability import configure_logging, configure_tracing

    # At a terminal the banner is the point: warnings and errors only, unless CASEM_LOG_LEVEL asks for more.
    configure_logging("casem", os.environ.get("CASEM_LOG_LEVEL", "WARNING"))
    configure_tracing("casem")  # spans go out over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set


def _migrate() -> None:
    from casem.adapters.storage.migrate import upgrade
    from casem.topology.config import database_endpoints

    for t in TENANTS:
        upgrade(database_endpoints(t.name).master)


def _start_temporal_dev_server(port: int) -> Any:
    from casem.adapters.workflows.devserver import DevServerError, start_dev_server

    say(f"starting the Temporal dev server on port {port} (its log: {_relative(data_dir() / 'temporal.log')})")
    try:
        return start_dev_server(data_dir() / "temporal" / "dev.db", port=port, log_file=data_dir() / "temporal.log")
    except DevServerError as exc:
        raise fail(
            f"the Temporal dev server did not start: {exc}. Choose another port with --temporal-port, "
            "or point CASEM_TEMPORAL_ADDRESS at a running Temporal"
        ) from None


async def _run_stack(
    chosen: list[str], options: Any, temporal: str | None, dev_server: bool, stop: asyncio.Event, started: float
) -> None:
    from casem.adapters.bus import open_bus
    from casem.app.context import AppContext
    from casem.app.internal_auth import INTERNAL_TOKEN_ENV
    from casem.cli.local_stack import LOCAL_SERVICES_BY_NAME, Stack
    from casem.services.caseworker.service import blobs_from_env, connect, temporal_namespace

    # case-indexer creates cases through case-api with the service credential: both read it from here.
    os.environ.setdefault(INTERNAL_TOKEN_ENV, secrets.token_hex(24))
    context = AppContext.open(migrate=False)
    bus = open_bus()
    stack = Stack(context, bus, options, blobs=blobs_from_env(), temporal_address=temporal)
    stack.temporal_note = " (dev server)" if dev_server else ""
    running: list[tuple[str, Running]] = []
    try:
        creds = await _bootstrap(context, data_dir() / BOOTSTRAP_FILE)
        if "case-console" in chosen:
            password = await _first_admin_password(context, creds, data_dir() / BOOTSTRAP_FILE)
            stack.console_sign_in = (
                f"sign in as admin@casem.local with password {password} (change it in Settings)"
                if password
                else "sign in as admin@casem.local (`casem admin set-password admin@casem.local` sets a new password)"
            )
        if temporal:
            stack.caseworker = await connect(temporal, temporal_namespace())
        for name in chosen:
            if stop.is_set():  # a signal during start-up: stop what runs, start nothing more
                return
            running.append((name, await LOCAL_SERVICES_BY_NAME[name].start(stack)))
        _print_banner(stack, running, creds, time.monotonic() - started)
        _freeze_startup_objects()
        await stop.wait()
    finally:
        import structlog

        log = structlog.get_logger("casem.up")
        for name, service in reversed(running):  # ingress first, the caseworker last
            began = time.monotonic()
            await service.stop()
            log.info("service stopped", service=name, seconds=round(time.monotonic() - began, 2))
        await bus.close()
        await context.close()


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _command_hint() -> str:
    """How to type `casem` from here: bare when on PATH, else the script beside this Python (or activate)."""
    script = Path(sys.executable).parent / "casem"
    on_path = shutil.which("casem")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "casem --help"
    hint = f"{_relative(script)} --help"
    activate = script.with_name("activate")
    if activate.exists():
        hint += f"   (or `source {_relative(activate)}`, then casem --help)"
    return hint


def _print_banner(stack: Stack, running: list[tuple[str, Running]], creds: Any, took: float) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for name, service in sorted(running, key=lambda r: BANNER_ORDER.index(r[0]) if r[0] in BANNER_ORDER else 99):
        grid.add_row(name, "\n".join(service.summary))
    grid.add_row("", "")
    grid.add_row("DD-API-KEY", creds.api_key)
    grid.add_row("DD-APPLICATION-KEY", creds.app_key)
    console = Console(stderr=True)
    console.print(Panel.fit(grid, title=f"casem is up ({took:.0f} s)", title_align="left"), highlight=False)
    lines = [
        f"org {creds.org_id} · data in {_relative(data_dir())} · keys in {_relative(data_dir() / BOOTSTRAP_FILE)}",
        f"The command: {_command_hint()}",
    ]
    http = next((s.summary[0].removeprefix("HTTP ") for n, s in running if n == "case-api"), None)
    if http:
        lines += [
            "Try it (lists the projects):",
            f"  curl -s -H 'DD-API-KEY: {creds.api_key}' -H 'DD-APPLICATION-KEY: {creds.app_key}' "
            f"{http}/api/v2/cases/projects",
        ]
        example = Path("examples/list_projects.py")
        if example.exists():  # run from a checkout: the official client's example, with its one install
            python = _relative(Path(sys.executable))
            lines.append(
                f"With Datadog's Python client: {python} -m pip install datadog-api-client && {python} {example}"
            )
    lines.append("Stop: Ctrl-C")
    # Plain prints: a terminal wraps long lines softly, so the curl line copies whole.
    for line in lines:
        say(line)


# --- casem run SERVICE ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    service: str
    flavor: str | None
    host: str
    http_port: int
    grpc_port: int
    ops_port: int


def _ops(o: RunOptions) -> list[PortOption]:
    return [PortOption(f"{o.service} ops endpoint", o.ops_port, "--ops-port", "CASEM_OPS_PORT")]


def _grpc(o: RunOptions) -> list[PortOption]:
    return [PortOption(f"{o.service} gRPC", o.grpc_port, "--grpc-port", "CASEM_GRPC_PORT")]


def _http(o: RunOptions) -> list[PortOption]:
    return [PortOption(f"{o.service} HTTP", o.http_port, "--http-port", "CASEM_HTTP_PORT")]


# Objects the collector lets pile up before it collects the youngest generation (Python's default: 700). A batch of
# IngestCases or of bus messages allocates tens of thousands; at 700 the young collections run hundreds of times a
# batch, and each promotes survivors that the older generations then walk again.
YOUNG_GENERATION_THRESHOLD = 10_000


def _freeze_startup_objects() -> None:
    """What start-up made (modules, classes, the apps, the engines) lives as long as the process: out of the cyclic
    collector's reach (gc.freeze), a full collection no longer walks it. A batch of IngestCases allocates enough
    objects to set off full collections; walking start-up's objects each time cost batch creation about an eighth
    of its CPU per case. Called by each service once its modules are imported, before its work begins."""
    gc.collect()  # what is already garbage goes now, not frozen with the rest
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)


async def _run_case_api(o: RunOptions, context: AppContext, stop: asyncio.Event) -> None:
    from casem.services.case_api.runner import Listen, serve
    from casem.services.caseworker.service import blobs_from_env, connect, temporal_namespace

    state: dict[str, object] = {"blobs": blobs_from_env()}
    address = _temporal_address()
    if address:  # uploads start their file lifecycle workflow at once; merges start theirs
        state["attachment_lifecycle"] = state["caseworker"] = await connect(address, temporal_namespace())
    _freeze_startup_objects()
    await serve(context, Listen(o.host, o.http_port, f"{o.host}:{o.grpc_port}"), app_state=state, stop=stop)


async def _run_intake(o: RunOptions, context: AppContext, stop: asyncio.Event) -> None:
    from casem.adapters.bus import open_bus
    from casem.services.case_intake.server import run_intake

    _freeze_startup_objects()
    await run_intake(context, open_bus(), f"{o.host}:{o.grpc_port}", stop=stop, ops_host=o.host, ops_port=o.ops_port)


async def _run_indexer(o: RunOptions, context: AppContext, stop: asyncio.Event) -> None:
    from casem.adapters.bus import open_bus
    from casem.services.case_indexer.indexer import log as indexer_log
    from casem.services.case_indexer.indexer import run_indexer
    from casem.services.common.ops import EngineWaits, all_of, database_readiness, start_ops

    _freeze_startup_objects()
    waits = EngineWaits(indexer_log, "case-indexer")  # not ready while it waits for the search engine
    ops = start_ops(all_of(database_readiness(context.databases), waits.readiness), o.host, o.ops_port, stop)
    try:
        case_api = os.environ.get("CASEM_CASE_API_GRPC", "127.0.0.1:50051")
        await run_indexer(context, open_bus(), case_api, stop=stop, waits=waits)
    finally:
        stop.set()
        await ops


async def _run_relay(o: RunOptions, context: AppContext, stop: asyncio.Event) -> None:
    from casem.adapters.bus import open_bus
    from casem.services.case_event_relay.service import run_relay

    _freeze_startup_objects()
    await run_relay(context, open_bus(), list(context.databases), ops_host=o.host, ops_port=o.ops_port, stop=stop)


async def _run_handler(o: RunOptions, context: AppContext, stop: asyncio.Event) -> None:
    from casem.adapters.bus import open_bus
    from casem.services.case_event_handler.service import run_flavor

    assert o.flavor is not None
    _freeze_startup_objects()
    await run_flavor(
        o.flavor, context, open_bus(), list(context.databases), ops_host=o.host, ops_port=o.ops_port, stop=stop
    )


async def _run_caseworker(o: RunOptions, context: AppContext, stop: asyncio.Event) -> None:
    from casem.services.caseworker.service import run_caseworker, temporal_address, temporal_namespace

    address = temporal_address()
    assert address is not None  # checked before starting
    _freeze_startup_objects()
    await run_caseworker(
        context, address, namespace=temporal_namespace(), ops_host=o.host, ops_port=o.ops_port, stop=stop
    )


async def _run_reader(o: RunOptions, context: AppContext, stop: asyncio.Event) -> None:
    from casem.adapters.bus import open_bus
    from casem.services.case_third_party_reader.service import run_reader

    assert o.flavor is not None
    _freeze_startup_objects()
    await run_reader(o.flavor, context, open_bus(), ops_host=o.host, ops_port=o.ops_port, stop=stop)


async def _run_ingress(o: RunOptions, context: AppContext, stop: asyncio.Event) -> None:
    from casem.adapters.bus import open_bus
    from casem.services.case_connector_ingress.service import run_ingress

    _freeze_startup_objects()
    await run_ingress(context, open_bus(), o.host, o.http_port, ops_port=o.ops_port, stop=stop)


async def _run_chat(o: RunOptions, context: AppContext, stop: asyncio.Event) -> None:
    from casem.services.case_chat_interactions.service import run_chat_interactions

    _freeze_startup_objects()
    await run_chat_interactions(context, o.host, o.grpc_port, o.http_port, o.ops_port, stop=stop)


async def _run_console(o: RunOptions, context: AppContext, stop: asyncio.Event) -> None:
    from casem.adapters.bus import open_bus
    from casem.services.case_console.runner import options_from_env, run_console
    from casem.services.caseworker.service import blobs_from_env, connect, temporal_namespace

    state: dict[str, object] = {"blobs": blobs_from_env()}
    address = _temporal_address()
    if address:  # as case-api: uploads start their lifecycle workflow, merges their merge workflow
        state["attachment_lifecycle"] = state["caseworker"] = await connect(address, temporal_namespace())
    _freeze_startup_objects()
    await run_console(
        context, open_bus(), options_from_env(o.host, o.http_port), ops_port=o.ops_port, stop=stop, **state
    )


@dataclass(frozen=True)
class Runnable:
    """How `casem run` starts a service: the coroutine, and the ports it listens on."""

    main: Callable[[RunOptions, AppContext, asyncio.Event], Awaitable[None]]
    ports: Callable[[RunOptions], list[PortOption]]


RUNNABLE: dict[str, Runnable] = {
    "case-api": Runnable(_run_case_api, lambda o: _http(o) + _grpc(o)),
    "case-intake": Runnable(_run_intake, lambda o: _grpc(o) + _ops(o)),
    "case-indexer": Runnable(_run_indexer, _ops),
    "case-event-relay": Runnable(_run_relay, _ops),
    "case-event-handler": Runnable(_run_handler, _ops),
    "caseworker": Runnable(_run_caseworker, _ops),
    "case-third-party-reader": Runnable(_run_reader, _ops),
    "case-connector-ingress": Runnable(_run_ingress, lambda o: _http(o) + _ops(o)),
    "case-chat-interactions": Runnable(_run_chat, lambda o: _grpc(o) + _http(o) + _ops(o)),
    "case-console": Runnable(_run_console, lambda o: _http(o) + _ops(o)),
}


def run(
    service: str = typer.Argument(..., help="Service name, e.g. case-api (see `casem config show`)."),
    flavor: str | None = typer.Option(None, help="Flavor of case-event-handler or case-third-party-reader."),
    http_port: int = typer.Option(8080, envvar="CASEM_HTTP_PORT", help="HTTP port (case-api)."),
    grpc_port: int = typer.Option(50051, envvar="CASEM_GRPC_PORT", help="gRPC port (case-api, case-intake)."),
    host: str = _host_option(),
    all_interfaces: bool = _all_interfaces_option(),
    ops_port: int = typer.Option(9090, envvar="CASEM_OPS_PORT", help="/healthz, /readyz, /metrics of workers."),
) -> None:
    """Run one service of the seed in the foreground, as each Kubernetes Deployment does.

    Services: case-api, case-intake, case-indexer, case-event-relay, case-event-handler --flavor F,
    case-third-party-reader --flavor jira|servicenow, case-connector-ingress, case-chat-interactions, caseworker,
    case-console (the web console). Examples:

      casem run case-api                                  # HTTP :8080, gRPC :50051 on 127.0.0.1
      casem run case-api --all-interfaces                 # the same on every interface (containers)
      CASEM_KAFKA_BOOTSTRAP=kafka:9092 casem run case-event-relay
      casem run case-event-handler --flavor audit-trail
      CASEM_TEMPORAL_ADDRESS=temporal:7233 casem run caseworker

    Where to find the databases, bus, search and Temporal: `casem config show --service NAME`.
    Workers serve /healthz, /readyz and /metrics on --ops-port; SIGTERM finishes in-flight work first.
    """
    if service not in SERVICES_BY_NAME:
        raise typer.BadParameter(f"unknown service {service!r}; choose one of: {', '.join(SERVICES_BY_NAME)}")
    runnable = RUNNABLE.get(service)
    if runnable is None:
        raise fail(f"{service} cannot be started by this build yet: it is tracked in the project's issues", code=2)
    if service == "case-event-handler":
        _check_flavor(flavor)
    if service == "case-third-party-reader":
        _check_reader_flavor(flavor)
    if service == "caseworker" and not _temporal_address():
        raise typer.BadParameter(
            "the caseworker needs a Temporal: set CASEM_TEMPORAL_ADDRESS (host:port), or `temporal.address` "
            "in the configuration file or the datacenter catalog"
        )
    options = RunOptions(service, flavor, _bind_host(host, all_interfaces), http_port, grpc_port, ops_port)
    ports = runnable.ports(options)
    problem = port_problem(options.host, ports)
    if problem:
        raise fail(problem)
    from casem.app.context import AppContext
    from casem.observability import configure_logging, configure_tracing

    configure_logging(service)
    configure_tracing(service)  # spans go out over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set
    name = f"{service} --flavor {flavor}" if flavor else service
    try:
        with interruptible_startup():
            context = AppContext.open(migrate=os.environ.get("CASEM_MIGRATE_ON_START", "1") == "1")
    except Interrupted as exc:
        say(f"{name} stopped ({exc} during start-up)")
        return

    async def main(stop: asyncio.Event) -> None:
        try:
            await runnable.main(options, context, stop)
        finally:
            await context.close()

    run_until_stopped(name, main, host=options.host, ports=ports)


def _check_reader_flavor(flavor: str | None) -> None:
    from casem.topology.services import THIRD_PARTY_READER_FLAVORS

    if not flavor:
        raise typer.BadParameter(f"--flavor is required; one of: {', '.join(THIRD_PARTY_READER_FLAVORS)}")
    from casem.services.case_third_party_reader.service import check_flavor

    try:
        check_flavor(flavor)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from None


def _check_flavor(flavor: str | None) -> None:
    from casem.topology.services import EVENT_HANDLER_FLAVORS

    if not flavor:
        raise typer.BadParameter(f"--flavor is required; one of: {', '.join(EVENT_HANDLER_FLAVORS)}")
    from casem.services.case_event_handler.service import load_flavor

    try:
        load_flavor(flavor)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from None


__all__ = ["run", "up"]
