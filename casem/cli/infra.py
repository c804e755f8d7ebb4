"""`casem infra` and `casem config`: datacenter catalog, Helm values and the infrastructure report."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from casem.cli.output import Column, Format, print_json, print_rows, print_table

if TYPE_CHECKING:  # imported when a command runs, so `--help` does not load pydantic and the catalog
    from casem.topology.config import EffectiveConfig
    from casem.topology.datacenters import Catalog

app = typer.Typer(
    help=(
        "Datacenter catalog, Helm values and the generated infrastructure report.\n\n"
        "The catalog (casem/topology/datacenters.yaml) describes every datacenter; the Helm values "
        "and the report are generated from it and from the service, topic and tenant registries."
    ),
    epilog=(
        "Examples:\n\n"
        "  casem infra datacenters\n\n"
        "  casem infra helm-values --datacenter ap2.prod.dog > ap2.yaml\n\n"
        "  casem infra helm-values --all --out deploy/values\n\n"
        "  casem infra report --format html --out report-out"
    ),
    no_args_is_help=True,
)
config_app = typer.Typer(
    help=(
        "Show the effective configuration of a service in a datacenter.\n\n"
        "The datacenter is CASEM_DATACENTER (default: the built-in `local` one that `make up` uses: "
        "SQLite under ./var, embedded log, embedded search). Environment variables and a local file "
        "(CASEM_CONFIG, else ./casem.local.yaml) override the catalog."
    ),
    epilog=(
        "Examples:\n\n"
        "  CASEM_DATACENTER=ap2.prod.dog casem config show\n\n"
        "  CASEM_DATACENTER=us1.fed.dog casem config show --service case-event-handler --flavor paging\n\n"
        "  casem config show --datacenter us1.staging.dog --format json"
    ),
    no_args_is_help=True,
)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    # Made per call, so the terminal width (COLUMNS) is read when the command runs.
    return Console(stderr=stderr)


class ReportFormat(StrEnum):
    md = "md"
    html = "html"


def _fail(message: str) -> typer.Exit:
    _console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


# --- casem infra -------------------------------------------------------------------------------


@app.command("datacenters")
def datacenters_cmd(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table (fits the terminal) or json.")] = Format.table,
    as_json: Annotated[bool, typer.Option("--json", hidden=True, help="Same as --format json.")] = False,
) -> None:
    """List the datacenters of the catalog: clusters, Kafka, Temporal, tenants, features.

    Example: casem infra datacenters --format json | jq '.[].name'
    """
    from casem.topology.datacenters import LOCAL

    cat = _catalog()
    if as_json or fmt is Format.json:
        print_json([dc.model_dump(mode="json") for dc in cat.datacenters])
        return
    rows = []
    for dc in cat.datacenters:
        kafka = [dc.kafka.producer_cluster]
        if dc.kafka.consumer_cluster != dc.kafka.producer_cluster:
            kafka.append(f"consumer {dc.kafka.consumer_cluster}")
        if dc.kafka.broker_url:
            kafka.append(dc.kafka.broker_url)
        rows.append(
            {
                "name": dc.name,
                "environment": dc.environment.value,
                "kubernetes": list(dc.kubernetes_clusters),
                "kafka": kafka,
                "temporal": _temporal_lines(dc),
                "tenants": list(dc.tenants),
                "features": [k for k, v in dc.features.model_dump().items() if v] or ["-"],
            }
        )
    columns = [
        Column("Datacenter", "name", priority=9),
        Column("Env", "environment", priority=3),
        Column("Kubernetes clusters", "kubernetes", priority=4),
        Column("Kafka", "kafka", priority=6),
        Column("Temporal", "temporal", priority=5),
        Column("Tenants", "tenants", priority=7),
        Column("Features", "features", priority=1),
    ]
    print_rows(rows, columns, Format.table, title="Datacenter catalog")
    _console().print(f"Plus the built-in [bold]{LOCAL}[/] datacenter (embedded backends) for development.")


def _temporal_lines(dc: Any) -> list[str]:
    if dc.temporal is None:
        return ["not in the catalog"]
    return [dc.temporal.address, f"namespace {dc.temporal.namespace}", f"task queue {dc.temporal.task_queue}"]


@app.command("validate")
def validate_cmd(
    path: Annotated[Path | None, typer.Argument(help="Catalog file to check (default: the shipped catalog).")] = None,
) -> None:
    """Validate a datacenter catalog file against the schema.

    Example: casem infra validate casem/topology/datacenters.yaml
    """
    from casem.topology.datacenters import CatalogError, load_catalog

    try:
        cat = load_catalog(path) if path else load_catalog()
    except CatalogError as exc:
        raise _fail(str(exc)) from None
    _console().print(f"ok: {len(cat.datacenters)} datacenters ({', '.join(cat.names)})")


@app.command("helm-values")
def helm_values_cmd(
    datacenter: Annotated[
        str | None, typer.Option("--datacenter", "-d", help="Datacenter to generate values for.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every datacenter of the catalog (needs --out).")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Directory to write <datacenter>.yaml into.")] = None,
) -> None:
    """Generate Helm values for deploy/helm/case-management from the catalog.

    One datacenter prints to stdout (or writes OUT/<datacenter>.yaml); --all writes every
    datacenter's file into OUT. The chart is the same everywhere: these values are all that differs.

    Examples:

      casem infra helm-values --datacenter ap2.prod.dog > ap2.yaml

      helm upgrade --install casem deploy/helm/case-management -f ap2.yaml

      casem infra helm-values --all --out build/helm-values
    """
    from casem.infra.helm_values import render, write_all
    from casem.topology.datacenters import UnknownDatacenterError

    if all_ == bool(datacenter):
        raise _fail("pass either --datacenter NAME or --all --out DIR")
    if all_:
        if out is None:
            raise _fail("--all needs --out DIR")
        for path in write_all(out):
            _console().print(f"wrote {path}")
        return
    assert datacenter is not None
    try:
        text = render(datacenter)
    except UnknownDatacenterError as exc:
        raise _fail(str(exc)) from None
    if out is None:
        print(text, end="")
        return
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{datacenter}.yaml"
    path.write_text(text)
    _console().print(f"wrote {path}")


@app.command("report")
def report_cmd(
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="md or html.")] = ReportFormat.html,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("report-out"),
) -> None:
    """Regenerate the infrastructure report from the registries and the catalog.

    Writes OUT/infrastructure-report.<md|html> and OUT/diagrams/*.svg (Graphviz `dot` is needed:
    scripts/tools/install-graphviz.sh). The HTML embeds its diagrams: one self-contained file.

    Examples:

      casem infra report --out report-out && xdg-open report-out/infrastructure-report.html

      SOURCE_DATE_EPOCH=0 casem infra report --format md --out docs/infra
    """
    from casem.infra.report import GraphvizMissingError, write

    try:
        path = write(out, fmt.value)  # type: ignore[arg-type]
    except GraphvizMissingError as exc:
        raise _fail(str(exc)) from None
    _console().print(f"wrote {path}")


def _catalog() -> Catalog:
    from casem.topology.datacenters import CatalogError, catalog

    try:
        return catalog()
    except CatalogError as exc:
        raise _fail(str(exc)) from None


# --- casem config ------------------------------------------------------------------------------


@config_app.command("show")
def show_cmd(
    service: Annotated[str | None, typer.Option("--service", "-s", help="Only this service (e.g. case-api).")] = None,
    flavor: Annotated[str | None, typer.Option("--flavor", help="Only this flavor of the service.")] = None,
    datacenter: Annotated[
        str | None,
        typer.Option("--datacenter", "-d", help="Datacenter (default: CASEM_DATACENTER, else local)."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table (fits the terminal) or json.")] = Format.table,
    show_secrets: Annotated[bool, typer.Option("--show-secrets", help="Print DSNs with their passwords.")] = False,
) -> None:
    """Print the configuration each service gets in a datacenter.

    Per tenant: master DSN (writes), replica DSN (lag-tolerant reads), search cluster, index alias and
    endpoint, domain-events topic. Then Kafka clusters and bootstrap, Temporal (address, namespace, task
    queue), feature flags, and the topics and consumer groups of each service (flavor). Tenants not
    deployed there are listed as such; their consumers do not start. Passwords are masked unless --show-secrets.

    Credentials: CASEM_TENANT_<T>_PG_USER/_PG_PASSWORD, else CASEM_PG_USER/CASEM_PG_PASSWORD, else
    files pg-user/pg-password (or <tenant>-pg-user/<tenant>-pg-password) in CASEM_SECRETS_DIR
    (default /var/run/secrets/casem).

    Examples:

      CASEM_DATACENTER=ap2.prod.dog casem config show

      CASEM_DATACENTER=ap2.prod.dog casem config show --service case-event-handler --flavor paging

      casem config show --format json | jq .tenants
    """
    from casem.topology.config import ConfigError, redact_dsn, resolve
    from casem.topology.datacenters import CatalogError, UnknownDatacenterError

    if flavor and not service:
        raise _fail("--flavor needs --service")
    try:
        cfg = resolve(datacenter=datacenter, service=service, flavor=flavor)
    except (UnknownDatacenterError, ConfigError, CatalogError) as exc:
        raise _fail(str(exc)) from None
    except KeyError as exc:  # unknown service or flavor: KeyError's str() would add quotes
        raise _fail(str(exc.args[0] if exc.args else exc)) from None
    if not show_secrets:
        for t in cfg.tenants.values():
            t.database.master_dsn = redact_dsn(t.database.master_dsn)
            t.database.replica_dsn = redact_dsn(t.database.replica_dsn)
    if fmt is Format.json:
        print(cfg.model_dump_json(indent=2))
        return
    _print_config(cfg)


def _print_config(cfg: EffectiveConfig) -> None:
    out = _console()
    out.print(
        f"[bold]Datacenter[/] {cfg.datacenter} ([italic]{cfg.environment}[/])"
        + (f"   config file: {cfg.config_file}" if cfg.config_file else ""),
        highlight=False,
    )
    setting, value = Column("Setting", "setting", priority=2), Column("Value", "value", priority=9)
    for t in cfg.tenants.values():
        db = t.database
        url = t.search.url or ("embedded" if t.search.cluster is None else "resolved from the cluster name")
        rows = [
            ("master (writes)", db.master_dsn),
            ("replica (lag-tolerant reads)", db.replica_dsn),
            ("source", f"{db.source}; credentials {db.credentials}" + (f"; {db.placement}" if db.placement else "")),
            ("search", f"cluster {t.search.cluster or 'embedded'}, alias {t.search.index_alias}, url {url}"),
            ("domain events topic", t.domain_events_topic),
        ]
        print_table(out, [setting, value], [[[k], [v]] for k, v in rows], title=f"Tenant {t.name}")
    for name in cfg.not_deployed:
        out.print(
            f"[bold]Tenant {name}[/] [yellow]not deployed in this datacenter[/]: no consumers start, "
            "its API calls answer that the tenant is not available here"
        )

    m = cfg.messaging
    if m.backend == "embedded":
        out.print("[bold]Messaging[/] embedded log (no Kafka)")
    else:
        bootstrap = m.bootstrap or "[yellow]not in the catalog: set CASEM_KAFKA_BOOTSTRAP[/]"
        clusters = f"producer {m.producer_cluster}, consumer {m.consumer_cluster}, " if m.producer_cluster else ""
        out.print(f"[bold]Kafka[/] {clusters}bootstrap {bootstrap}", highlight=False)
    t = cfg.temporal
    if t.address:
        where = f"{t.address} (from {t.source})"
    elif t.source == "embedded":
        where = "a dev server `casem up` starts (CASEM_TEMPORAL_ADDRESS points elsewhere)"
    else:
        where = "[yellow]not in the catalog: set CASEM_TEMPORAL_ADDRESS (Helm: temporal.address)[/]"
    out.print(f"[bold]Temporal[/] {where}, namespace {t.namespace}, task queue {t.task_queue}", highlight=False)
    out.print(
        "[bold]Features[/] " + ", ".join(f"{k}={'on' if v else 'off'}" for k, v in cfg.features.items()),
        highlight=False,
    )
    columns = [
        Column("Workload", "workload", priority=9),
        Column("Produces", "produces", priority=5),
        Column("Consumes (group)", "consumes", priority=7),
    ]
    cells = []
    for svc in cfg.services:
        name = f"{svc.service} --flavor {svc.flavor}" if svc.flavor else svc.service
        produces = [b.topic for b in svc.topics if b.role == "produce"] or ["-"]
        consumes = [f"{b.topic} ({b.group})" for b in svc.topics if b.role == "consume"] or ["-"]
        cells.append([[name], produces, consumes])
    print_table(out, columns, cells, title="Services")
