"""Topic registry: the seed's Messaging Footprint, defined once.

Nothing outside this module spells a topic name; code asks for a topic by its role
(`intake_topic()`, `domain_events_topic(tenant)`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Consumer:
    service: str
    flavor: str | None
    group: str


@dataclass(frozen=True)
class Topic:
    name: str
    producers: tuple[str, ...]
    consumers: tuple[Consumer, ...]
    notes: str
    tenant: str | None = None  # set for tenant-specific topics
    consumed_by_all_handler_flavors: bool = False
    # Partitions the services create the topic with: a consumer group's parallelism ceiling (one task each).
    partitions: int = 6
    # Producers casem adds where the seed's footprint names none (its messaging table shows "-" for them):
    # bound in the Helm chart and drawn in the report's data flow, not listed in the seed's table.
    added_producers: tuple[str, ...] = ()


CASE_INTAKE = Topic(
    name="case-intake",
    producers=("case-intake",),
    consumers=(Consumer("case-indexer", None, "case-indexer"),),
    notes="Primary ingress topic for case creation events",
    partitions=8,
)
JIRA = Topic(
    name="collaboration_integrations_jira",
    producers=(),
    added_producers=("case-connector-ingress",),
    consumers=(Consumer("case-third-party-reader", "jira", "case-management"),),
    notes="Processed by case-third-party-reader flavor 'jira'",
)
SERVICENOW = Topic(
    name="collaboration_integrations_servicenow",
    producers=(),
    added_producers=("case-connector-ingress",),
    consumers=(Consumer("case-third-party-reader", "servicenow", "case-management"),),
    notes="Processed by case-third-party-reader flavor 'servicenow'",
)
DOMAIN_EVENTS = Topic(
    name="domain-events",
    producers=("case-event-relay",),
    consumers=(),
    notes="Domain event fan-out topics used by downstream handlers (handled by 17 case-event-handler flavors)",
    tenant="case-management",
    consumed_by_all_handler_flavors=True,
)
DOMAIN_EVENTS_ONCALL = Topic(
    name="domain-events-oncall",
    producers=("case-event-relay",),
    consumers=(),
    notes="Domain event fan-out topics used by downstream handlers (handled by 17 case-event-handler flavors)",
    tenant="on-call",
    consumed_by_all_handler_flavors=True,
)

DEAD_LETTER_PARTITIONS = 1  # dead letters are few and read in order

TOPICS: tuple[Topic, ...] = (CASE_INTAKE, JIRA, SERVICENOW, DOMAIN_EVENTS, DOMAIN_EVENTS_ONCALL)
TOPICS_BY_NAME: dict[str, Topic] = {t.name: t for t in TOPICS}


def intake_topic() -> Topic:
    return CASE_INTAKE


def domain_events_topic(tenant: str) -> Topic:
    for topic in TOPICS:
        if topic.tenant == tenant:
            return topic
    raise KeyError(f"no domain-events topic for tenant {tenant!r}")


def third_party_topic(flavor: str) -> Topic:
    for topic in (JIRA, SERVICENOW):
        if any(c.flavor == flavor for c in topic.consumers):
            return topic
    raise KeyError(f"no third-party topic for flavor {flavor!r}")


def handler_group(flavor: str) -> str:
    """Consumer group of one case-event-handler flavor: isolated per flavor."""
    return f"case-event-handler-{flavor}"


def dead_letter_topic(flavor: str) -> str:
    return f"case-event-handler-{flavor}.dlq"


def console_live_group(replica: str) -> str:
    """Consumer group of one case-console replica's live feed: one group per replica, so each sees every
    domain event (it fans them out to its own browsers) and starts at the end of the log."""
    return f"case-console-live-{replica}"


def reader_dead_letter_topic(flavor: str) -> str:
    """Dead letters of a case-third-party-reader flavor (same header format as the handler flavors')."""
    return f"case-third-party-reader-{flavor}.dlq"


def reader_group(flavor: str) -> str:
    """The consumer group of a case-third-party-reader flavor, as the seed names it (`case-management`)."""
    return next(c.group for c in third_party_topic(flavor).consumers if c.flavor == flavor)
