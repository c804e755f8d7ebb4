"""Service registry: the eight services of the seed and their flavors, defined once."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ServiceKind(StrEnum):
    GRPC = "gRPC service"
    GRPC_INGRESS = "gRPC ingress + Kafka producer"
    KAFKA_CONSUMER = "Kafka consumer"
    INDEXER = "Kafka consumer + search index writer"
    POLLER = "Postgres change poller + Kafka producer"
    TEMPORAL_WORKER = "Temporal worker"
    WEB = "HTTP web console + Kafka consumer"
    WEBHOOK_INGRESS = "HTTPS webhook receiver + Kafka producer"


@dataclass(frozen=True)
class Service:
    name: str
    kind: ServiceKind
    responsibility: str
    grpc: bool = False
    http: bool = False
    flavors: tuple[str, ...] = field(default=())
    # /healthz, /readyz and /metrics on an ops port of their own, up from the start (also while the service waits
    # for an engine): the chart's probes look there. case-api serves them on its HTTP port instead.
    ops: bool = True


# The seventeen case-event-handler flavors, each its own consumer group on the tenant topics.
EVENT_HANDLER_FLAVORS: tuple[str, ...] = (
    "analytics",
    "audit-trail",
    "watcher-notifications",
    "notification-rules",
    "email-delivery",
    "slack-delivery",
    "msteams-delivery",
    "webhook-delivery",
    "automation-rules",
    "due-date-reminders",
    "sla-tracking",
    "duplicate-detection",
    "search-indexing",
    "retention-scheduling",
    "jira-sync",
    "servicenow-sync",
    "paging",
)

THIRD_PARTY_READER_FLAVORS: tuple[str, ...] = ("jira", "servicenow")

SERVICES: tuple[Service, ...] = (
    Service(
        "case-intake",
        ServiceKind.GRPC_INGRESS,
        "Accepts authenticated intake requests, performs validation, and publishes canonical case "
        "payloads to the `case-intake` topic for asynchronous processing.",
        grpc=True,
    ),
    Service(
        "case-indexer",
        ServiceKind.INDEXER,
        "Consumes from `case-intake`, enriches payloads by calling `case-api`, and ensures "
        "Elasticsearch indexes stay in sync so new cases are searchable immediately.",
    ),
    Service(
        "case-api",
        ServiceKind.GRPC,
        "Multi-tenant gRPC API (and the Datadog-compatible HTTP API). Coordinates Postgres "
        "transactions, search index updates, notification rule evaluation, and outbound "
        "integration hooks for the domain.",
        grpc=True,
        http=True,
        ops=False,
    ),
    Service(
        "case-event-relay",
        ServiceKind.POLLER,
        "Polls the `domain_events` tables, batches new records, and publishes them to "
        "tenant-specific Kafka topics to decouple persistence from automation workloads.",
    ),
    Service(
        "case-event-handler",
        ServiceKind.KAFKA_CONSUMER,
        "Each flavor has an isolated consumer group that processes a subset of domain events "
        "(analytics, search indexing, notifications, rule evaluation, paging) while sharing the "
        "same topic stream.",
        flavors=EVENT_HANDLER_FLAVORS,
    ),
    Service(
        "case-third-party-reader",
        ServiceKind.KAFKA_CONSUMER,
        "Consumes Jira and ServiceNow connector feeds so that external ticket updates can be "
        "reflected in Case Management timelines.",
        flavors=THIRD_PARTY_READER_FLAVORS,
    ),
    # Beyond the seed's eight: the connector feeds' producer, which the seed's footprint leaves unnamed.
    Service(
        "case-connector-ingress",
        ServiceKind.WEBHOOK_INGRESS,
        "Receives Jira webhooks (HMAC-signed) and ServiceNow outbound REST messages (shared secret), polls "
        "both for what a webhook missed, and publishes each remote change to `collaboration_integrations_jira` "
        "or `collaboration_integrations_servicenow`, keyed by the remote issue.",
        http=True,
    ),
    Service(
        "caseworker",
        ServiceKind.TEMPORAL_WORKER,
        "Executes long-running workflows (case cleanup, merge automation, file lifecycle tasks) "
        "and interacts with `case-api` and storage backends.",
    ),
    Service(
        "case-chat-interactions",
        ServiceKind.GRPC,
        "Bridges chat integrations via Hermes to append conversation excerpts into case "
        "timelines and trigger follow-up automation.",
        grpc=True,
        http=True,  # the Slack and Teams bridges (casem/services/case_chat_interactions/__init__.py says why)
    ),
    # Not in the seed: casem's own web console (sessions, CSRF, SSE), a transport over the application layer
    # like case-api, kept apart from the API's origin; each replica consumes the domain events for live pages.
    Service(
        "case-console",
        ServiceKind.WEB,
        "The web console people use to triage and work cases: server-rendered pages over the same use cases "
        "as the API, with live updates fed by the tenant `domain-events` topics.",
        http=True,
    ),
)

SERVICES_BY_NAME: dict[str, Service] = {s.name: s for s in SERVICES}

# Workloads (service, flavor) of the seed that this build cannot run yet. The Helm chart leaves them out
# (they would crash-loop) and the report marks them; tests/topology/test_built.py checks this set against
# the code (`casem run` and the flavor registry). Building one means deleting its line here.
NOT_BUILT_YET: frozenset[tuple[str, str | None]] = frozenset()


def built(service_name: str, flavor: str | None = None) -> bool:
    """Whether this build runs the workload; a service is built when any of its workloads is."""
    svc = service(service_name)
    if flavor is None and svc.flavors:
        return any((svc.name, f) not in NOT_BUILT_YET for f in svc.flavors)
    return (svc.name, flavor) not in NOT_BUILT_YET


def service(name: str) -> Service:
    try:
        return SERVICES_BY_NAME[name]
    except KeyError:
        known = ", ".join(SERVICES_BY_NAME)
        raise KeyError(f"unknown service {name!r}; known services: {known}") from None
