"""The infrastructure report, regenerated from the registries and the datacenter catalog.

Sections: architecture overview, network data flow diagram, messaging footprint (topic
registry), datacenter footprint summary and per-datacenter topology diagrams and notes
(catalog), service responsibilities (service registry). Diagrams are Graphviz DOT rendered to
SVG by `dot` (Debian package graphviz; scripts/tools/install-graphviz.sh).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from casem.infra.helm_values import workload_name
from casem.topology import services as service_registry
from casem.topology import topics as topic_registry
from casem.topology.config import workloads
from casem.topology.datacenters import Datacenter, Placement, catalog
from casem.topology.tenants import CASE_MANAGEMENT, ON_CALL, TENANTS

Format = Literal["md", "html"]

# How the report titles each tenant: "Case Postgres", "case: elasticsearch-...".
TENANT_LABELS: dict[str, str] = {CASE_MANAGEMENT: "Case", ON_CALL: "On-call"}
TENANT_SHORT: dict[str, str] = {CASE_MANAGEMENT: "case", ON_CALL: "on-call"}

# Links between services and the systems around them that the registries do not model (they come from
# the services' responsibilities). Each end says what it is, "svc:", "topic:" or "ext:": a service and a
# topic may share a name (case-intake), and the intake edge must reach the service, not the topic.
DATA_FLOWS: tuple[tuple[str, str, str], ...] = (
    ("ext:clients", "svc:case-intake", "gRPC intake"),
    ("ext:clients", "svc:case-api", "HTTP / gRPC"),
    ("svc:case-indexer", "svc:case-api", "enrich"),
    ("svc:case-indexer", "ext:search", "index"),
    ("svc:case-api", "ext:postgres", "transactions"),
    ("svc:case-api", "ext:search", "query / update"),
    ("svc:case-event-relay", "ext:postgres", "poll domain_events"),
    ("svc:caseworker", "ext:temporal", "workflows"),
    ("svc:caseworker", "svc:case-api", "calls"),
    ("svc:case-chat-interactions", "svc:case-api", "append excerpts"),
    ("ext:hermes", "svc:case-chat-interactions", "chat events"),
    ("ext:connectors", "svc:case-connector-ingress", "webhooks / polled changes"),
    ("svc:case-event-handler", "ext:connectors", "jira-sync / servicenow-sync"),
)
EXTERNAL_NODES: dict[str, str] = {
    "clients": "API clients",
    "postgres": "Postgres\n(one database per tenant)",
    "search": "Elasticsearch\n(one cluster per tenant)",
    "temporal": "Temporal",
    "hermes": "Hermes\n(chat integrations)",
    "connectors": "Jira / ServiceNow\nconnectors",
}


def _check_flow_end(end: str) -> None:
    kind, _, name = end.partition(":")
    known = {"ext": EXTERNAL_NODES, "topic": topic_registry.TOPICS_BY_NAME, "svc": service_registry.SERVICES_BY_NAME}
    if kind not in known or name not in known[kind]:
        raise KeyError(f"data flow end {end!r}: not a known {kind or 'svc|topic|ext'}")


for _src, _dst, _ in DATA_FLOWS:
    _check_flow_end(_src)
    _check_flow_end(_dst)


@dataclass
class Table:
    headers: list[str]
    rows: list[list[list[str]]]  # row -> cell -> lines


@dataclass
class DatacenterSection:
    dc: Datacenter
    notes: list[str]
    diagram: str = ""  # SVG markup
    diagram_file: str = ""


@dataclass
class Report:
    generated: datetime
    overview: list[str]
    messaging: Table
    footprint: Table
    datacenters: list[DatacenterSection]
    services: list[tuple[str, str, str]]  # name, type, responsibility
    dataflow_svg: str = ""
    diagrams: dict[str, str] = field(default_factory=dict)  # filename -> SVG


def _event_handler() -> service_registry.Service:
    return next(s for s in service_registry.SERVICES if s.flavors == service_registry.EVENT_HANDLER_FLAVORS)


# --- tables ------------------------------------------------------------------------------------


def messaging_table() -> Table:
    handler = _event_handler()
    rows = []
    for topic in topic_registry.TOPICS:
        suffix = f" ({topic.tenant})" if topic.tenant else ""
        producers = [p + suffix for p in topic.producers] or ["-"]
        consumers = []
        for c in topic.consumers:
            flavor = f" ({c.flavor})" if c.flavor else ""
            group = f" consumer-group:{c.group}" if c.group != c.service else ""
            consumers.append(f"{c.service}{flavor}{group}")
        if topic.consumed_by_all_handler_flavors:
            consumers.append(f"{handler.name}{suffix}")
        rows.append([[topic.name], producers, consumers or ["-"], [topic.notes]])
    return Table(["Topic", "Producers", "Consumers", "Notes"], rows)


def _kafka_lines(dc: Datacenter) -> list[str]:
    lines = [f"producer: {dc.kafka.producer_cluster}"]
    if dc.kafka.consumer_cluster != dc.kafka.producer_cluster:
        lines.append(f"consumer: {dc.kafka.consumer_cluster}")
    if dc.kafka.broker_url:
        lines.append(f"url: {dc.kafka.broker_url}")
    return lines


def footprint_table() -> Table:
    headers = ["Datacenter", "Environment", "Kubernetes clusters", "Kafka clusters"]
    headers += [f"{TENANT_LABELS[t.name]} Postgres" for t in TENANTS] + ["Elasticsearch"]
    rows = []
    for dc in catalog().datacenters:
        row = [
            [dc.name],
            [dc.environment.value],
            [f"{len(dc.kubernetes_clusters)} clusters", *dc.kubernetes_clusters],
            _kafka_lines(dc),
        ]
        for t in TENANTS:
            pg = dc.postgres.get(t.name)
            row.append([f"master: {pg.master}", f"replica: {pg.replica}", pg.note] if pg else ["Not deployed"])
        row.append([f"{TENANT_SHORT[t.name]}: {dc.search.get(t.name, 'not deployed')}" for t in TENANTS])
        rows.append(row)
    return Table(headers, rows)


def deployment_notes(dc: Datacenter) -> list[str]:
    kafka = f"Kafka: producer cluster `{dc.kafka.producer_cluster}`, consumer cluster `{dc.kafka.consumer_cluster}`"
    if dc.kafka.broker_url:
        kafka += f", brokers reachable at `{dc.kafka.broker_url}`"
    notes = [
        "Kubernetes clusters: " + ", ".join(f"`{c}`" for c in dc.kubernetes_clusters),
        kafka,
    ]
    for t in TENANTS:
        pg = dc.postgres.get(t.name)
        label = f"{TENANT_LABELS[t.name]} Postgres"
        if pg is None:
            notes.append(f"{label}: tenant not deployed in this datacenter")
        else:
            notes.append(f"{label}: master `{pg.master}`, replica `{pg.replica}`, {pg.note}")
    if dc.temporal is not None:
        notes.append(
            f"Temporal: `{dc.temporal.address}`, namespace `{dc.temporal.namespace}`, "
            f"task queue `{dc.temporal.task_queue}`"
        )
    else:
        notes.append("Temporal: address not in the catalog; set it at install time (Helm value `temporal.address`)")
    built = workloads(built_only=True)
    missing = [workload_name(s, f) for s, f in workloads() if (s, f) not in built]
    note = f"Workloads: {len(built)} Deployments (one per service, one per flavor)"
    if missing:
        note += f"; not built yet, so not deployed: {', '.join(missing)}"
    notes.append(note)
    if dc.features.dynamic_instrumentation:
        notes.append("Features: DD dynamic instrumentation enabled")
    return notes


def service_rows() -> list[tuple[str, str, str]]:
    rows = []
    for svc in service_registry.SERVICES:
        kind = svc.kind.value
        if svc.flavors:
            kind += f" with {len(svc.flavors)} flavors ({', '.join(svc.flavors)})"
        if svc.http:
            kind += " + HTTP API"
        missing = [f for f in svc.flavors if not service_registry.built(svc.name, f)]
        if not service_registry.built(svc.name):
            kind += "; not built yet"
        elif missing:
            kind += f"; not built yet: {', '.join(missing)}"
        rows.append((svc.name, kind, svc.responsibility))
    return rows


def overview() -> list[str]:
    handler = _event_handler()
    deployments = len(workloads())
    built = len(workloads(built_only=True))
    return [
        "The Case Management domain stitches together gRPC services, Kafka pipelines, Temporal "
        "workers, and multi-tenant datastores to collect, enrich, and disseminate case data. Requests "
        "land on regional gRPC frontends, are persisted in Postgres, indexed in Elasticsearch, and "
        "fanned out through Kafka so domain-specific handlers can execute automation and third-party "
        "synchronization.",
        f"{len(service_registry.SERVICES)} services run as {deployments} Deployments in each of "
        f"{len(catalog().datacenters)} datacenters ({handler.name} alone has {len(handler.flavors)} "
        f"flavors), over {len(topic_registry.TOPICS)} Kafka topics and {len(TENANTS)} tenants "
        f"({', '.join(t.name for t in TENANTS)}), each with its own Postgres database, "
        "domain-events topic and search cluster.",
        f'This build runs {built} of the {deployments} workloads; the others are marked "not built yet" '
        "below and left out of the Helm chart until they are.",
    ]


# --- diagrams ----------------------------------------------------------------------------------

_FONT = 'fontname="Helvetica,Arial,sans-serif"'
NL = "\n"  # f-string expressions cannot hold a backslash before Python 3.12
_KIND_COLORS = {
    service_registry.ServiceKind.GRPC: "#dbeafe",
    service_registry.ServiceKind.GRPC_INGRESS: "#dbeafe",
    service_registry.ServiceKind.KAFKA_CONSUMER: "#dcfce7",
    service_registry.ServiceKind.INDEXER: "#dcfce7",
    service_registry.ServiceKind.POLLER: "#fef9c3",
    service_registry.ServiceKind.TEMPORAL_WORKER: "#f3e8ff",
    service_registry.ServiceKind.WEB: "#fde2e4",
    service_registry.ServiceKind.WEBHOOK_INGRESS: "#dbeafe",
}


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _node_id(prefix: str, name: str) -> str:
    return _q(f"{prefix}:{name}")


_NOT_BUILT_STYLE = 'style="rounded,dashed,filled", fillcolor="#f8fafc", color="#94a3b8", fontcolor="#64748b"'


def dataflow_dot() -> str:
    # Top to bottom: a case enters at the top and its events fan out below, so the picture is about as
    # wide as the page and drawn at full size (left to right, it was twice as wide and shrunk to fit).
    lines = [
        "digraph dataflow {",
        f"  graph [rankdir=TB, nodesep=0.3, ranksep=0.5, bgcolor=transparent, {_FONT}];",
        f'  node [shape=box, style="rounded,filled", fillcolor=white, color="#64748b", {_FONT}, fontsize=12];',
        f'  edge [color="#64748b", {_FONT}, fontsize=11, fontcolor="#334155"];',
    ]
    for name, label in EXTERNAL_NODES.items():
        shape = "cylinder" if name in ("postgres", "search") else "oval"
        lines.append(f'  {_node_id("ext", name)} [label={_q(label)}, shape={shape}, fillcolor="#f1f5f9"];')
    for svc in service_registry.SERVICES:
        label = svc.name
        if svc.flavors:
            missing = sum(1 for f in svc.flavors if not service_registry.built(svc.name, f))
            label += f"\n{len(svc.flavors)} flavors" + (
                f" ({missing} not built yet)" if 0 < missing < len(svc.flavors) else ""
            )
        if service_registry.built(svc.name):
            lines.append(f'  {_node_id("svc", svc.name)} [label={_q(label)}, fillcolor="{_KIND_COLORS[svc.kind]}"];')
        else:
            lines.append(
                f"  {_node_id('svc', svc.name)} [label={_q(label + NL + 'not built yet')}, {_NOT_BUILT_STYLE}];"
            )
    for topic in topic_registry.TOPICS:
        lines.append(f'  {_node_id("topic", topic.name)} [label={_q(topic.name)}, shape=cds, fillcolor="#ffedd5"];')
        for producer in (*topic.producers, *topic.added_producers):
            lines.append(f"  {_node_id('svc', producer)} -> {_node_id('topic', topic.name)};")
        for c in topic.consumers:
            lines.append(f"  {_node_id('topic', topic.name)} -> {_node_id('svc', c.service)} [label={_q(c.group)}];")
        if topic.consumed_by_all_handler_flavors:
            handler = _event_handler()
            label = f"{len(handler.flavors)} groups"
            lines.append(f"  {_node_id('topic', topic.name)} -> {_node_id('svc', handler.name)} [label={_q(label)}];")

    for src, dst, label in DATA_FLOWS:
        lines.append(f"  {_q(src)} -> {_q(dst)} [label={_q(label)}, style=dashed];")
    lines.append("}")
    return "\n".join(lines)


def host_label(host: str, width: int = 36) -> str:
    """A hostname over as few lines as fit `width`, broken only after its dots."""
    lines, current = [], ""
    for piece in re.findall(r"[^.]+\.?", host):
        if current and len(current) + len(piece) > width:
            lines.append(current)
            current = ""
        current += piece
    return "\n".join([*lines, current])


def _workload_counts() -> str:
    built = len(workloads(built_only=True))
    missing = len(workloads()) - built
    return f"{built} workloads each" + (f" ({missing} more not built yet)" if missing else "")


def topology_dot(dc: Datacenter) -> str:
    k8s_label = f"Kubernetes: {len(dc.kubernetes_clusters)} clusters\n{_workload_counts()}"
    if dc.features.dynamic_instrumentation:
        k8s_label += "\nDD dynamic instrumentation enabled"
    lines = [
        f"digraph {_q(dc.name)} {{",
        f"  graph [rankdir=LR, compound=true, nodesep=0.3, ranksep=0.8, bgcolor=transparent, {_FONT}, fontsize=13];",
        f'  node [shape=box, style="rounded,filled", fillcolor=white, color="#64748b", {_FONT}, fontsize=12];',
        f'  edge [color="#64748b", {_FONT}, fontsize=11, fontcolor="#334155"];',
        "  subgraph cluster_k8s {",
        f"    label={_q(k8s_label)};",
        '    style="rounded,filled"; fillcolor="#eff6ff"; color="#93c5fd";',
    ]
    for cluster in dc.kubernetes_clusters:
        lines.append(f'    {_node_id("k8s", cluster)} [label={_q(cluster)}, fillcolor="#dbeafe"];')
    lines.append("  }")
    # Edges leave the Kubernetes box as a whole (ltail), drawn from its middle cluster.
    anchor = _node_id("k8s", dc.kubernetes_clusters[len(dc.kubernetes_clusters) // 2])
    out = f"{anchor} -> "  # followed by the target and "[ltail=cluster_k8s, ..."

    kafka_label = f"Kafka producer\n{dc.kafka.producer_cluster}"
    if dc.kafka.consumer_cluster == dc.kafka.producer_cluster:
        kafka_label = f"Kafka producer + consumer\n{dc.kafka.producer_cluster}"
    if dc.kafka.broker_url:
        kafka_label += f"\n{host_label(dc.kafka.broker_url)}"
    lines.append(f'  kafka [label={_q(kafka_label)}, shape=cds, fillcolor="#ffedd5"];')
    lines.append(f'  {out}kafka [ltail=cluster_k8s, label="produce / consume", dir=both];')
    if dc.kafka.consumer_cluster != dc.kafka.producer_cluster:
        lines.append(
            f"  kafka_consumer [label={_q('Kafka consumer' + NL + dc.kafka.consumer_cluster)}, "
            'shape=cds, fillcolor="#ffedd5"];'
        )
        lines.append(f"  kafka_consumer -> {anchor} [lhead=cluster_k8s, label=consume];")
    if dc.temporal is not None:
        temporal = f"Temporal\n{host_label(dc.temporal.address)}\nnamespace {dc.temporal.namespace}"
        lines.append(f'  temporal [label={_q(temporal)}, shape=oval, fillcolor="#f3e8ff"];')
    else:
        lines.append(
            '  temporal [label="Temporal\\naddress not in the catalog", shape=oval, style="dashed", '
            'color="#94a3b8", fontcolor="#64748b"];'
        )
    lines.append(f"  {out}temporal [ltail=cluster_k8s, label=workflows];")

    for t in TENANTS:
        label = TENANT_LABELS[t.name]
        pg = dc.postgres.get(t.name)
        if pg is None:
            lines.append(
                f"  {_node_id('absent', t.name)} [label={_q(t.name + ' tenant' + NL + 'not deployed')}, "
                'style="rounded,dashed", color="#94a3b8", fontcolor="#64748b"];'
            )
            lines.append(f"  {out}{_node_id('absent', t.name)} [ltail=cluster_k8s, style=invis];")
            continue
        dashed = ",dashed" if pg.placement is Placement.FABRIC_PROXY else ""
        master = _cylinder(_node_id("pgm", t.name), f"master\n{host_label(pg.master)}", "#e0f2fe")
        replica = _cylinder(_node_id("pgr", t.name), f"replica\n{host_label(pg.replica)}", "#f0f9ff")
        lines += [
            f"  subgraph {_q('cluster_pg_' + t.name)} {{",
            f'    label={_q(f"{label} Postgres: {pg.note}")}; style="rounded{dashed}"; color="#a3a3a3";',
            f"    {master}",
            f"    {replica}",
            "  }",
            f"  {out}{_node_id('pgm', t.name)} [ltail=cluster_k8s, label=writes];",
            f'  {out}{_node_id("pgr", t.name)} [ltail=cluster_k8s, label="lag-tolerant reads", style=dashed];',
            "  " + _cylinder(_node_id("es", t.name), f"{label} search\n{dc.search[t.name]}", "#dcfce7"),
            f"  {out}{_node_id('es', t.name)} [ltail=cluster_k8s, label=index];",
        ]
    lines.append("}")
    return "\n".join(lines)


def _cylinder(node_id: str, label: str, fill: str) -> str:
    return f'{node_id} [label={_q(label)}, shape=cylinder, fillcolor="{fill}"];'


class GraphvizMissingError(RuntimeError):
    pass


def render_svg(dot_source: str) -> str:
    """DOT -> SVG markup (without the XML prolog, so it can sit inline in HTML)."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissingError(
            "Graphviz `dot` is not installed: run scripts/tools/install-graphviz.sh (Debian package graphviz)"
        )
    result = subprocess.run([dot, "-Tsvg"], input=dot_source, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"dot failed: {result.stderr.strip()}")
    svg = result.stdout
    return svg[svg.index("<svg") :]


# The widest a diagram is drawn in the HTML report (px): the content column of a 1,400 px window.
DIAGRAM_MAX_WIDTH_PX = 1240
_SVG_SIZE = re.compile(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"')


def natural_size_px(svg: str) -> tuple[float, float]:
    """Graphviz sizes its SVG in points; a CSS pixel is 3/4 of a point."""
    match = _SVG_SIZE.search(svg)
    if match is None:
        raise ValueError("not a Graphviz SVG: no width/height in pt")
    return float(match.group(1)) * 4 / 3, float(match.group(2)) * 4 / 3


def common_scale(svgs: list[str]) -> float:
    """The one factor (at most 1) that fits the widest of `svgs` in DIAGRAM_MAX_WIDTH_PX."""
    widest = max(natural_size_px(svg)[0] for svg in svgs)
    return min(1.0, DIAGRAM_MAX_WIDTH_PX / widest)


def sized(svg: str, scale: float) -> str:
    """The SVG with its width and height in px at `scale` (its viewBox keeps the drawing whole)."""
    width, height = natural_size_px(svg)
    return _SVG_SIZE.sub(f'<svg width="{width * scale:.0f}px" height="{height * scale:.0f}px"', svg, count=1)


def diagram_filename(dc_name: str) -> str:
    return "topology-" + re.sub(r"[^a-z0-9]+", "-", dc_name.lower()).strip("-") + ".svg"


# --- assembling and writing --------------------------------------------------------------------


def generated_at() -> datetime:
    # SOURCE_DATE_EPOCH makes the report byte-for-byte reproducible.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)


def build(with_diagrams: bool = True) -> Report:
    report = Report(
        generated=generated_at(),
        overview=overview(),
        messaging=messaging_table(),
        footprint=footprint_table(),
        datacenters=[
            DatacenterSection(dc=dc, notes=deployment_notes(dc), diagram_file=diagram_filename(dc.name))
            for dc in catalog().datacenters
        ],
        services=service_rows(),
    )
    if with_diagrams:
        report.dataflow_svg = render_svg(dataflow_dot())
        report.diagrams["dataflow.svg"] = report.dataflow_svg
        for section in report.datacenters:
            section.diagram = render_svg(topology_dot(section.dc))
            report.diagrams[section.diagram_file] = section.diagram
        # Every datacenter drawn at one scale, so their sizes compare: the widest sets it.
        scale = common_scale([s.diagram for s in report.datacenters])
        for section in report.datacenters:
            section.diagram = sized(section.diagram, scale)
        report.dataflow_svg = sized(report.dataflow_svg, common_scale([report.dataflow_svg]))
    return report


def _md_inline(text: str) -> str:
    return text.replace("|", "\\|")


def _html_inline(text: str) -> Markup:
    """Escape, then turn `code` spans into <code>."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text)))


_CELL_LABEL = re.compile(r"^(master|replica|producer|consumer|url|[a-z-]+): (\S+)$")


def _html_cell_line(text: str) -> Markup:
    """One table line: "label: host.name" becomes a label and a hostname that wraps at dots."""

    def host(value: str) -> str:
        # Unbreakable segments joined by break points after each dot: long hostnames wrap
        # between labels, never at their dashes.
        parts = html.escape(value).split(".")
        segs = [f'<span class="seg">{p}{"." if i < len(parts) - 1 else ""}</span>' for i, p in enumerate(parts)]
        return "<code>" + "<wbr>".join(segs) + "</code>"

    match = _CELL_LABEL.match(text)
    if match and match.group(2) != "deployed":
        return Markup(f'<span class="k">{html.escape(match.group(1))}:</span> {host(match.group(2))}')
    if "." in text and " " not in text:
        return Markup(host(text))
    return Markup(html.escape(text))


def _jinja() -> Environment:
    env = Environment(
        loader=PackageLoader("casem.infra", "templates"),
        autoescape=select_autoescape(["html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _md_inline
    env.filters["code"] = _html_inline
    env.filters["cell"] = _html_cell_line
    return env


def anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def render(report: Report, fmt: Format) -> str:
    template = _jinja().get_template(f"report.{fmt}.j2")
    return template.render(
        r=report,
        anchor=anchor,
        workload_name=workload_name,
        tenants=[t.name for t in TENANTS],
    )


def write(out: Path, fmt: Format = "html") -> Path:
    """Write the report (and its SVG diagrams under diagrams/) into `out`; returns the report."""
    report = build()
    out.mkdir(parents=True, exist_ok=True)
    diagrams = out / "diagrams"
    diagrams.mkdir(exist_ok=True)
    for name, svg in report.diagrams.items():
        (diagrams / name).write_text('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + svg)
    path = out / f"infrastructure-report.{fmt}"
    path.write_text(render(report, fmt))
    return path
