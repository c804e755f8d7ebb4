"""SQLAlchemy tables and the imperative mapping of the pure domain classes onto them.

The domain never imports SQLAlchemy: its dataclasses are mapped here (the Cosmic Python
"classical mapping"), so the same code path serves SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
mapper_registry = registry(metadata=metadata)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both engines (SQLite stores naive text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSON = sa.JSON().with_variant(JSONB(), "postgresql")
ID = sa.String(36)
# The outbox sequence: BIGINT identity on PostgreSQL, the rowid alias on SQLite.
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

orgs = sa.Table(
    "orgs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, sa.ForeignKey("orgs.id"), nullable=False, index=True),
    sa.Column("email", sa.String(255), nullable=False),
    sa.Column("handle", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255)),
    sa.Column("title", sa.String(255)),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("service_account", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.UniqueConstraint("org_id", "handle", name="uq_users_org_handle"),
)

teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, sa.ForeignKey("orgs.id"), nullable=False, index=True),
    sa.Column("handle", sa.String(195), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("avatar", sa.String(255)),
    sa.Column("banner", sa.Integer),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.UniqueConstraint("org_id", "handle", name="uq_teams_org_handle"),
    # Added in 0002.
    sa.Column("visible_modules", JSON),
    sa.Column("hidden_modules", JSON),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, sa.ForeignKey("orgs.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("user_id", ID, sa.ForeignKey("users.id")),
    sa.Column("last4", sa.String(4), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    # Added in 0011_keys (the Key Management API).
    sa.Column("modified_at", UTCDateTime),
    sa.Column("created_by", ID),
    sa.Column("modified_by", ID),
    sa.Column("category", sa.String(64)),
    sa.Column("remote_config_read_enabled", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Index("ix_credentials_org_kind", "org_id", "kind", "revoked_at"),
    # Added in 0019_personal_access_tokens (kind 'pat').
    sa.Column("expires_at", UTCDateTime),
    sa.Column("last_used_at", UTCDateTime),
    sa.Column("public_portion", sa.String(32)),
    sa.Column("scopes", JSON),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, sa.ForeignKey("orgs.id"), nullable=False, index=True),
    sa.Column("key", sa.String(10), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("team_id", ID),
    sa.Column("restricted", sa.Boolean, nullable=False, default=False),
    sa.Column("enabled_custom_case_types", JSON, nullable=False),
    sa.Column("settings", JSON, nullable=False),
    sa.Column("columns_config", JSON, nullable=False),
    # Next case number is case_counter + 1; bumped with UPDATE ... RETURNING in the creating transaction.
    sa.Column("case_counter", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.Column("deleted_at", UTCDateTime),
    sa.UniqueConstraint("org_id", "key", name="uq_projects_org_key"),
)

case_types = sa.Table(
    "case_types",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, index=True),  # NULL: the built-in STANDARD type
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("emoji", sa.String(32), nullable=False, default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime),
)

custom_attribute_configs = sa.Table(
    "custom_attribute_configs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, sa.ForeignKey("orgs.id"), nullable=False, index=True),
    sa.Column("case_type_id", ID, sa.ForeignKey("case_types.id"), nullable=False),
    sa.Column("key", sa.String(63), nullable=False),
    sa.Column("display_name", sa.String(255), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("is_multi", sa.Boolean, nullable=False, default=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("options", JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime),
    sa.Index("ix_custom_attribute_configs_type_key", "org_id", "case_type_id", "key"),
    # Added in 0002: an external field that fills this attribute, and one live config per key.
    sa.Column("map_from", sa.String(255)),
    sa.Index(
        "uq_custom_attribute_configs_live_key",
        "org_id",
        "case_type_id",
        "key",
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    ),
)

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("key", sa.String(32), nullable=False),
    sa.Column("title", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("type_id", ID, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("assignee_id", ID),
    sa.Column("attributes", JSON, nullable=False),
    sa.Column("custom_attributes", JSON, nullable=False),
    sa.Column("due_date", sa.Date),
    sa.Column("resolved_reason", sa.String(255)),
    sa.Column("archived_at", UTCDateTime),
    sa.Column("closed_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("modified_at", UTCDateTime),
    sa.Column("modified_by_id", ID),
    # Client-supplied intake idempotency key: the same key always yields the same case.
    sa.Column("intake_key", sa.String(255)),
    # Added in 0012_integrations: Datadog's jira_issue / service_now_ticket as served.
    sa.Column("jira_issue", JSON),
    sa.Column("service_now_ticket", JSON),
    sa.UniqueConstraint("project_id", "number", name="uq_cases_project_number"),
    sa.UniqueConstraint("org_id", "intake_key", name="uq_cases_org_intake_key"),
    sa.Index("ix_cases_org_created", "org_id", "created_at"),
    sa.Index("ix_cases_org_key", "org_id", "key"),
    sa.Index("ix_cases_org_status", "org_id", "status"),
    # Added in 0016_fidelity: raised by every commit with an event about the case (its search document's version).
    sa.Column("revision", sa.BigInteger, nullable=False, default=0, server_default="0"),
)

timeline_cells = sa.Table(
    "timeline_cells",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("content", JSON, nullable=False),
    sa.Column("author_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.Column("deleted_at", UTCDateTime),
    sa.Column("source_event_id", ID),
    sa.Index("ix_timeline_cells_case_created", "case_id", "created_at"),
)

watchers = sa.Table(
    "watchers",
    metadata,
    sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# The transactional outbox. `seq` is the tenant's monotonically increasing sequence; the
# case-event-relay publishes rows in seq order and, after the broker acks, takes them off domain_events_pending.
domain_events = sa.Table(
    "domain_events",
    metadata,
    sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
    sa.Column("id", ID, nullable=False, unique=True),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("case_id", ID),
    sa.Column("actor_id", ID),
    sa.Column("time", UTCDateTime, nullable=False),
    sa.Column("envelope", JSON, nullable=False),
    # Written by the relay until 0023_perf_outbox_pending (rows published before it keep their stamp); what is
    # unpublished now is what domain_events_pending lists.
    sa.Column("published_at", UTCDateTime),
)

# The outbox rows not published yet (0023_perf_outbox_pending): a trigger on domain_events lists each new row here in
# its inserting transaction, and the relay claims from here and deletes a row once the bus acknowledged its event.
# Narrow on purpose: a mark is a delete of a small row, where stamping the wide event row wrote a new version of it
# and an entry in each of its indexes.
domain_events_pending = sa.Table(
    "domain_events_pending",
    metadata,
    sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
    sa.Column("case_id", ID),
)

# -- caseworker (0003): attachments, retention policies, purge audit --------------------------------
attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("blob_key", sa.String(255), nullable=False, unique=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("detail", sa.String(1024)),
    sa.Column("uploaded_by_id", ID),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.Column("deleted_at", UTCDateTime),
    sa.Index("ix_attachments_case", "case_id", "created_at"),
    sa.Index("ix_attachments_state", "state"),
)

# Case retention per org (project_id NULL) or per project (overrides the org's).
retention_policies = sa.Table(
    "retention_policies",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("project_id", ID),
    sa.Column("closed_case_retention_days", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("org_id", "project_id", name="uq_retention_policies_org_project"),
)

# What the retention workflow purged: the case itself is gone, this row says it existed and why it went.
case_purges = sa.Table(
    "case_purges",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False, index=True),
    sa.Column("case_id", ID, nullable=False, unique=True),
    sa.Column("case_key", sa.String(32), nullable=False),
    sa.Column("project_id", ID, nullable=False),
    sa.Column("closed_at", UTCDateTime),
    sa.Column("archived_at", UTCDateTime),
    sa.Column("retention_days", sa.Integer, nullable=False),
    sa.Column("counts", JSON, nullable=False),
    sa.Column("workflow_id", sa.String(255)),
    sa.Column("purged_at", UTCDateTime, nullable=False),
)

_mapped = False


def start_mappers() -> None:
    """Map the domain classes onto the tables (once per process)."""
    global _mapped
    if _mapped:
        return
    from casem.domain.attachments import Attachment
    from casem.domain.case_types import CaseType, CustomAttributeConfig
    from casem.domain.cases import Case
    from casem.domain.identity import Credential, Org, Team, User, Watcher
    from casem.domain.notifications import Delivery
    from casem.domain.projects import Project
    from casem.domain.timeline import TimelineCell

    for cls, table in (
        (Org, orgs),
        (User, users),
        (Team, teams),
        (Credential, credentials),
        (Project, projects),
        (CaseType, case_types),
        (CustomAttributeConfig, custom_attribute_configs),
        (Case, cases),
        (TimelineCell, timeline_cells),
        (Watcher, watchers),
        (Attachment, attachments),
        (Delivery, notification_deliveries),
    ):
        mapper_registry.map_imperatively(cls, table)
    _map_views_links()
    _map_chat()
    _map_integrations()
    _mapped = True


__all__ = ["metadata", "start_mappers", "date"]

# case-event-handler: which events each flavor has applied (the idempotency record, written in the
# same transaction as the flavor's effect).
handler_processed_events = sa.Table(
    "handler_processed_events",
    metadata,
    sa.Column("flavor", sa.String(64), primary_key=True),
    sa.Column("event_id", ID, primary_key=True),
    sa.Column("processed_at", UTCDateTime, nullable=False),
)

# audit-trail flavor: append-only record of who changed what (one row per domain event).
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
    sa.Column("event_id", ID, nullable=False, unique=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("case_id", ID),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("event_type", sa.String(128), nullable=False),
    sa.Column("actor_id", ID),
    sa.Column("time", UTCDateTime, nullable=False),
    sa.Column("changes", JSON, nullable=False),
    sa.Index("ix_audit_log_org_time", "org_id", "time"),
    sa.Index("ix_audit_log_case", "case_id", "seq"),
)

# analytics flavor: one row per case, from which created/closed counts, open-by-priority, time to
# first response (MTTA) and time to close (MTTR) are computed per org and project.
case_metrics = sa.Table(
    "case_metrics",
    metadata,
    sa.Column("case_id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("project_id", ID, nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("first_response_at", UTCDateTime),
    sa.Column("closed_at", UTCDateTime),
    sa.Index("ix_case_metrics_org_project", "org_id", "project_id"),
)

# -- notifications (0005): project notification rules, org endpoints, the watcher inbox, deliveries ----------
notification_rules = sa.Table(
    "notification_rules",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("is_enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("query", sa.Text, nullable=False, default=""),
    sa.Column("triggers", JSON, nullable=False),
    sa.Column("recipients", JSON, nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.Index("ix_notification_rules_project", "project_id", "created_at"),
)

# Named outgoing endpoints of an org (generic webhooks, Teams connectors) that rule recipients refer to
# by name; the HMAC secret of a webhook stays here and never travels on the bus.
notification_endpoints = sa.Table(
    "notification_endpoints",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("secret", sa.Text),  # sealed (casem.adapters.secrets, `fernet:...`) since 0013
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("org_id", "kind", "name", name="uq_notification_endpoints_org_kind_name"),
)

# Networks an org's webhooks and connectors may reach although they are not public (an on-premises
# receiver). Operators manage it with `casem admin outbound-allow ...`; tenants cannot: it is no API.
org_outbound_allow = sa.Table(
    "org_outbound_allow",
    metadata,
    sa.Column("org_id", ID, sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("network", sa.String(64), primary_key=True),
    sa.Column("note", sa.String(255)),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# watcher-notifications flavor: a user's in-app inbox (one row per watcher per case event).
notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("case_id", ID, nullable=False),
    sa.Column("case_key", sa.String(32), nullable=False),
    sa.Column("event_id", ID, nullable=False),
    sa.Column("event_type", sa.String(128), nullable=False),
    sa.Column("actor_id", ID),
    sa.Column("summary", sa.String(1024), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("read_at", UTCDateTime),
    sa.UniqueConstraint("user_id", "event_id", name="uq_notifications_user_event"),
    sa.Index("ix_notifications_user_created", "org_id", "user_id", "created_at"),
)

# notification-rules flavor → delivery flavors: one row per message, with its sending state.
notification_deliveries = sa.Table(
    "notification_deliveries",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("rule_id", ID),
    sa.Column("source_event_id", ID, nullable=False),
    sa.Column("case_id", ID),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("target", JSON, nullable=False),
    sa.Column("payload", JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime),
    sa.Index("ix_notification_deliveries_org_created", "org_id", "created_at"),
    sa.Index("ix_notification_deliveries_source", "source_event_id"),
)

# -- automation (0006): automation rules, SLA clocks, due-date reminders, per-project settings --------------
# Datadog's case automation rules of a project (trigger + one action), evaluated by the automation-rules flavor.
automation_rules = sa.Table(
    "automation_rules",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("trigger", JSON, nullable=False),
    sa.Column("action", JSON, nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("modified_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.Index("ix_automation_rules_project", "project_id", "created_at"),
)

# automation-rules flavor: one row per rule evaluation that acted or was held back (loop guard depth).
automation_runs = sa.Table(
    "automation_runs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("rule_id", ID, nullable=False),
    sa.Column("case_id", ID, nullable=False),
    sa.Column("trigger_event_id", ID, nullable=False),
    sa.Column("depth", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("executed_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("rule_id", "trigger_event_id", name="uq_automation_runs_rule_event"),
    sa.Index("ix_automation_runs_case_rule", "case_id", "rule_id", "executed_at"),
)

# The events a rule's action recorded, with the chain depth they continue (the loop guard reads it back).
automation_caused_events = sa.Table(
    "automation_caused_events",
    metadata,
    sa.Column("event_id", ID, primary_key=True),
    sa.Column("rule_id", ID, nullable=False),
    sa.Column("depth", sa.Integer, nullable=False),
)

# casem's per-project settings of the SLA, reminder and duplicate flavors (null: the defaults apply).
project_automation_settings = sa.Table(
    "project_automation_settings",
    metadata,
    sa.Column("project_id", ID, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("sla", JSON),
    sa.Column("reminders", JSON),
    sa.Column("duplicates", JSON),
    sa.Column("modified_by_id", ID),
    sa.Column("modified_at", UTCDateTime, nullable=False),
)

# due-date-reminders flavor: one row per reminder of a case's current due date; `fired_at` makes it once.
case_reminders = sa.Table(
    "case_reminders",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("case_id", ID, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("lead_seconds", sa.Integer, nullable=False),
    sa.Column("fire_at", UTCDateTime, nullable=False),
    sa.Column("fired_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("case_id", "due_date", "lead_seconds", name="uq_case_reminders_case_due_lead"),
    sa.Index("ix_case_reminders_pending", "fired_at", "fire_at"),
)

# sla-tracking flavor: one clock per case; a breach is stamped once per kind (acknowledge, close).
sla_clocks = sa.Table(
    "sla_clocks",
    metadata,
    sa.Column("case_id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("project_id", ID, nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("acknowledged_at", UTCDateTime),
    sa.Column("closed_at", UTCDateTime),
    sa.Column("acknowledge_due_at", UTCDateTime),
    sa.Column("close_due_at", UTCDateTime),
    sa.Column("acknowledge_breached_at", UTCDateTime),
    sa.Column("close_breached_at", UTCDateTime),
    sa.Index("ix_sla_clocks_project", "org_id", "project_id"),
    sa.Index("ix_sla_clocks_acknowledge_due", "acknowledge_due_at"),
    sa.Index("ix_sla_clocks_close_due", "close_due_at"),
)

# -- merges (0007): duplicate cases merged into a primary by the caseworker ---------------------------------
# One row per merge request; the workflow moves it PENDING → RUNNING → COMPLETED (or FAILED).
case_merges = sa.Table(
    "case_merges",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("primary_case_id", ID, nullable=False),
    sa.Column("duplicate_ids", JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),  # "api" or the flavor that asked (duplicate-detection)
    sa.Column("workflow_id", sa.String(255), nullable=False),
    sa.Column("requested_by_id", ID),
    sa.Column("detail", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("completed_at", UTCDateTime),
    sa.Index("ix_case_merges_org_primary", "org_id", "primary_case_id"),
)

# One row per duplicate a merge has handled, written in the transaction that handled it: its presence is
# what makes the step idempotent (a retried or replayed activity finds it and does nothing).
case_merge_progress = sa.Table(
    "case_merge_progress",
    metadata,
    sa.Column("merge_id", ID, primary_key=True),
    sa.Column("duplicate_id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("cells_copied", sa.Integer, nullable=False),
    sa.Column("watchers_added", sa.Integer, nullable=False),
    sa.Column("done_at", UTCDateTime, nullable=False),
)


# -- views and links (0008): saved case views, case links, project favorites, maintenance windows, insights --
case_views = sa.Table(
    "case_views",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("query", sa.Text, nullable=False),
    sa.Column("np_rule_id", ID),
    sa.Column("created_by_id", ID),
    sa.Column("modified_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.Index("ix_case_views_project", "org_id", "project_id", "created_at"),
)

# Datadog's case links (POST /api/v2/cases/link): any of the model's relationships, between a case and a
# case, incident, page or agent conversation; a non-case end is kept by its id only. The one table of links
# between cases: a merge links each duplicate to its primary here too (DUPLICATES, with the merge's id, added
# in 0009; one per duplicate). Links outlive purges (history).
case_entity_links = sa.Table(
    "case_entity_links",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("parent_entity_type", sa.String(32), nullable=False),
    sa.Column("parent_entity_id", sa.String(255), nullable=False),
    sa.Column("child_entity_type", sa.String(32), nullable=False),
    sa.Column("child_entity_id", sa.String(255), nullable=False),
    sa.Column("relationship", sa.String(32), nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint(
        "org_id",
        "parent_entity_type",
        "parent_entity_id",
        "child_entity_type",
        "child_entity_id",
        "relationship",
        name="uq_case_entity_links_ends",
    ),
    sa.Index("ix_case_entity_links_parent", "org_id", "parent_entity_type", "parent_entity_id"),
    sa.Index("ix_case_entity_links_child", "org_id", "child_entity_type", "child_entity_id"),
    sa.Column("merge_id", ID),
    sa.Index(
        "uq_case_entity_links_merged",
        "parent_entity_type",
        "parent_entity_id",
        unique=True,
        sqlite_where=sa.text("merge_id IS NOT NULL"),
        postgresql_where=sa.text("merge_id IS NOT NULL"),
    ),
)

project_favorites = sa.Table(
    "project_favorites",
    metadata,
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("project_id", ID, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

maintenance_windows = sa.Table(
    "maintenance_windows",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("query", sa.Text, nullable=False),
    sa.Column("start_at", UTCDateTime, nullable=False),
    sa.Column("end_at", UTCDateTime, nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("updated_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.Index("ix_maintenance_windows_org_start", "org_id", "start_at"),
)

case_insights = sa.Table(
    "case_insights",
    metadata,
    sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("type", sa.String(64), primary_key=True),
    sa.Column("resource_id", sa.String(255), primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("ref", sa.String(2048), nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
)


def _map_views_links() -> None:
    from casem.domain.case_links import CaseLink
    from casem.domain.case_views import CaseView
    from casem.domain.favorites import ProjectFavorite
    from casem.domain.insights import CaseInsight
    from casem.domain.maintenance_windows import MaintenanceWindow

    for cls, table in (
        (CaseView, case_views),
        (CaseLink, case_entity_links),
        (ProjectFavorite, project_favorites),
        (MaintenanceWindow, maintenance_windows),
        (CaseInsight, case_insights),
    ):
        mapper_registry.map_imperatively(cls, table)


# -- chat interactions (0009): chat workspaces installed per org, chat users mapped to casem users, cases linked
# to chat conversations, which chat messages are on which case, and the bridges' durable inbox --
chat_installations = sa.Table(
    "chat_installations",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("workspace_id", sa.String(255), nullable=False),
    sa.Column("workspace_name", sa.String(255)),
    sa.Column("app_id", sa.String(255)),
    sa.Column("bot_user_id", sa.String(255)),
    sa.Column("bot_token", sa.Text),  # sealed with casem/adapters/secrets.py, never stored in clear
    sa.Column("default_project_id", ID),
    sa.Column("installed_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime),
    # Teams: the Bot Connector service URL of the tenant's latest validated activity (where casem posts to it).
    sa.Column("service_url", sa.String(2048)),
    sa.UniqueConstraint("platform", "workspace_id", name="uq_chat_installations_workspace"),
    sa.Index("ix_chat_installations_org", "org_id"),
)

chat_channel_settings = sa.Table(
    "chat_channel_settings",
    metadata,
    sa.Column("platform", sa.String(16), primary_key=True),
    sa.Column("workspace_id", sa.String(255), primary_key=True),
    sa.Column("channel_id", sa.String(255), primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("default_project_id", ID, nullable=False),
    sa.Column("updated_by_id", ID),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

chat_user_links = sa.Table(
    "chat_user_links",
    metadata,
    sa.Column("platform", sa.String(16), primary_key=True),
    sa.Column("workspace_id", sa.String(255), primary_key=True),
    sa.Column("chat_user_id", sa.String(255), primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("method", sa.String(16), nullable=False),  # email, code, install
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_chat_user_links_user", "org_id", "user_id"),
)

chat_link_codes = sa.Table(
    "chat_link_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("used_at", UTCDateTime),
)

chat_links = sa.Table(
    "chat_links",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("workspace_id", sa.String(255), nullable=False),
    sa.Column("channel_id", sa.String(255), nullable=False),
    sa.Column("thread_id", sa.String(255), nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint(
        "case_id", "platform", "workspace_id", "channel_id", "thread_id", name="uq_chat_links_case_conversation"
    ),
    sa.Index("ix_chat_links_conversation", "platform", "workspace_id", "channel_id"),
)

# Each chat message is on a case's timeline at most once, whichever way it came (event, shortcut, gRPC).
chat_excerpt_messages = sa.Table(
    "chat_excerpt_messages",
    metadata,
    sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("platform", sa.String(16), primary_key=True),
    sa.Column("workspace_id", sa.String(255), primary_key=True),
    sa.Column("channel_id", sa.String(255), primary_key=True),
    sa.Column("message_id", sa.String(255), primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("cell_id", ID, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# What the chat bridges acknowledged and still have to do: written before the HTTP answer, applied once.
chat_inbox = sa.Table(
    "chat_inbox",
    metadata,
    sa.Column("id", sa.String(512), primary_key=True),  # platform:workspace:delivery id (Slack event_id, ...)
    sa.Column("platform", sa.String(16), nullable=False),
    sa.Column("workspace_id", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("payload", JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending, done, failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("not_before", UTCDateTime, nullable=False),
    sa.Column("processed_at", UTCDateTime),
    sa.Column("error", sa.Text),
    sa.Index("ix_chat_inbox_pending", "status", "not_before"),
)


def _map_chat() -> None:
    from casem.domain.chat import ChatLink

    mapper_registry.map_imperatively(ChatLink, chat_links)


# -- console (0009): sign-in accounts of people and their server-side sessions --------------------------------
# One account per person who signs in to the web console, keyed by e-mail across all orgs (the sign-in form
# asks for an e-mail, not an org). `password_hash` is Argon2id (NULL: this account signs in through OIDC only).
console_accounts = sa.Table(
    "console_accounts",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("email", sa.String(255), nullable=False, unique=True),
    sa.Column("org_id", ID, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("oidc_subject", sa.String(255), unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("password_changed_at", UTCDateTime),
    sa.Column("last_sign_in_at", UTCDateTime),
    # Failed sign-ins in a row, and until when the account may not try again (see app/console/accounts.py).
    sa.Column("failed_sign_ins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sign_in_blocked_until", UTCDateTime),
)

# A signed-in browser. The cookie holds a random token; only its SHA-256 is stored here (a database leak does
# not hand out sessions). `csrf_token` is the synchronizer token every form and fetch of the session echoes.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("account_id", ID, sa.ForeignKey("console_accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("user_agent", sa.String(255)),
    sa.Index("ix_console_sessions_account", "account_id"),
    sa.Index("ix_console_sessions_expires", "expires_at"),
)

# The console's case list counts an org's live cases on every page: a covering index keeps that count off the
# table (100k cases: ~30 ms instead of ~340 ms on SQLite), for the common status and priority filters too.
sa.Index("ix_cases_org_archived_status", cases.c.org_id, cases.c.archived_at, cases.c.status, cases.c.priority)


# -- integrations (0012): Jira sites and ServiceNow instances, templates, case links, sync bookkeeping ------------
integration_accounts = sa.Table(
    "integration_accounts",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("system", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("base_url", sa.String(2048), nullable=False),
    sa.Column("auth_type", sa.String(32), nullable=False),
    sa.Column("principal", sa.String(255), nullable=False),
    # Fernet tokens (casem/adapters/secrets.py): never returned by a read, opened only where used.
    sa.Column("sealed_credentials", sa.Text, nullable=False),
    sa.Column("sealed_webhook_secret", sa.Text, nullable=False),
    sa.Column("remote_user_id", sa.String(255)),
    sa.Column("remote_user_name", sa.String(255)),
    sa.Column("created_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.Column("last_webhook_at", UTCDateTime),
    sa.Column("deleted_at", UTCDateTime),
    sa.Index("ix_integration_accounts_org", "org_id", "system"),
)

jira_issue_templates = sa.Table(
    "jira_issue_templates",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("account_id", ID, sa.ForeignKey("integration_accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("project_id", sa.String(255), nullable=False),
    sa.Column("issue_type_id", sa.String(255), nullable=False),
    sa.Column("fields", JSON, nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.Index("ix_jira_issue_templates_org", "org_id", "created_at"),
)

servicenow_templates = sa.Table(
    "servicenow_templates",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("instance_id", ID, sa.ForeignKey("integration_accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("handle_name", sa.String(255), nullable=False),
    sa.Column("table_name", sa.String(80), nullable=False),
    sa.Column("assignment_group_id", ID),
    sa.Column("business_service_id", ID),
    sa.Column("user_id", ID),
    sa.Column("fields_mapping", JSON, nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.UniqueConstraint("org_id", "handle_name", name="uq_servicenow_templates_org_handle"),
)

# A case's link to its Jira issue / ServiceNow ticket (at most one per system), found by the remote id
# when a remote change arrives.
remote_links = sa.Table(
    "remote_links",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    sa.Column("system", sa.String(16), nullable=False),
    sa.Column("account_id", ID, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("remote_id", sa.String(255)),
    sa.Column("remote_key", sa.String(255)),
    sa.Column("remote_url", sa.String(2048)),
    sa.Column("project_key", sa.String(255)),
    sa.Column("error", sa.String(2048)),
    # What was asked for when casem creates the remote issue (project, issue type, fields...), and who holds
    # the attempt in progress: kept so an interrupted creation resumes without creating a second issue.
    sa.Column("request", JSON),
    sa.Column("claimed_at", UTCDateTime),
    sa.Column("last_remote_change_at", UTCDateTime),
    sa.Column("created_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.UniqueConstraint("case_id", "system", name="uq_remote_links_case_system"),
    sa.Index("ix_remote_links_remote", "account_id", "remote_id"),
)

# Remote objects (comments) paired with a timeline cell, whichever side wrote first: a comment casem sent
# is not applied back when its webhook arrives, and a remote comment is applied once.
remote_objects = sa.Table(
    "remote_objects",
    metadata,
    sa.Column("account_id", ID, primary_key=True),
    sa.Column("remote_object_id", sa.String(255), primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
    sa.Column("cell_id", ID, nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),  # "casem" or the remote system
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_remote_objects_cell", "cell_id"),
)

# The reconciliation poller's watermark per account: remote changes up to here were published.
integration_poll_state = sa.Table(
    "integration_poll_state",
    metadata,
    sa.Column("account_id", ID, primary_key=True),
    sa.Column("watermark", UTCDateTime, nullable=False),
    sa.Column("polled_at", UTCDateTime, nullable=False),
)


def _map_integrations() -> None:
    from casem.domain.integrations import IntegrationAccount, JiraIssueTemplate, RemoteLink, ServiceNowTemplate

    for cls, table in (
        (IntegrationAccount, integration_accounts),
        (JiraIssueTemplate, jira_issue_templates),
        (ServiceNowTemplate, servicenow_templates),
        (RemoteLink, remote_links),
    ):
        mapper_registry.map_imperatively(cls, table)


# -- on-call (0013): team memberships (case-management, beside teams) and the on-call tenant's own tables --------
# Team members, as Datadog's Teams API serves them; in the case-management tenant with the teams and users.
team_memberships = sa.Table(
    "team_memberships",
    metadata,
    sa.Column("team_id", ID, sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", ID, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("role", sa.String(16)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_team_memberships_user", "user_id"),
)

# The on-call tenant's tables refer to users and teams by id only: those live in the case-management tenant's
# database, where no foreign key from here can reach (casem/app/oncall/directory.py checks the ids on write).
# Layers are stored with their schedule (JSON): a schedule is replaced whole, in one row.
oncall_schedules = sa.Table(
    "oncall_schedules",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("time_zone", sa.String(64), nullable=False),
    sa.Column("layers", JSON, nullable=False),
    sa.Column("team_ids", JSON, nullable=False),
    sa.Column("tags", JSON, nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    # The SHA-256 of the schedule's calendar feed token (the feed URL is the only credential a calendar has).
    sa.Column("feed_token_hash", sa.String(64), unique=True),
    sa.Index("ix_oncall_schedules_org_name", "org_id", "name"),
)

oncall_overrides = sa.Table(
    "oncall_overrides",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("schedule_id", ID, sa.ForeignKey("oncall_schedules.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("start_at", UTCDateTime, nullable=False),
    sa.Column("end_at", UTCDateTime, nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_oncall_overrides_schedule", "schedule_id", "created_at"),
)

oncall_policies = sa.Table(
    "oncall_policies",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("retries", sa.Integer, nullable=False),
    sa.Column("resolve_page_on_policy_end", sa.Boolean, nullable=False),
    sa.Column("steps", JSON, nullable=False),
    sa.Column("team_ids", JSON, nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.Index("ix_oncall_policies_org", "org_id", "created_at"),
)

# One row per team: its ordered routing rules.
oncall_routing_rules = sa.Table(
    "oncall_routing_rules",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("rules", JSON, nullable=False),
    sa.Column("modified_by_id", ID),
    sa.Column("modified_at", UTCDateTime, nullable=False),
)

# Where each round-robin step stands: the next responder's position among its targets.
oncall_round_robin = sa.Table(
    "oncall_round_robin",
    metadata,
    sa.Column("policy_id", ID, primary_key=True),
    sa.Column("step_id", ID, primary_key=True),
    sa.Column("next_index", sa.Integer, nullable=False),
)

oncall_channels = sa.Table(
    "oncall_channels",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("config", JSON, nullable=False),
    sa.Column("secret", sa.Text),  # push: the webhook signing secret, sealed (casem/adapters/secrets.py)
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_oncall_channels_user", "org_id", "user_id"),
)

oncall_notification_rules = sa.Table(
    "oncall_notification_rules",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("channel_id", ID, sa.ForeignKey("oncall_channels.id", ondelete="CASCADE"), nullable=False),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("method", sa.String(8)),
    sa.Column("delay_minutes", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime),
    sa.Index("ix_oncall_notification_rules_user", "org_id", "user_id"),
)

# A page: its case (same id) holds the title, status and timeline; this row holds what paging needs.
oncall_pages = sa.Table(
    "oncall_pages",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("key", sa.String(32), nullable=False),
    sa.Column("title", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("urgency", sa.String(8), nullable=False),
    sa.Column("tags", JSON, nullable=False),
    sa.Column("target_type", sa.String(16), nullable=False),
    sa.Column("target_id", sa.String(255), nullable=False),  # a user, team or schedule id, or a team handle
    sa.Column("team_id", ID),
    sa.Column("policy_id", ID),
    sa.Column("routing_rule_id", ID),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_by_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("acknowledged_at", UTCDateTime),
    sa.Column("acknowledged_by_id", ID),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("resolved_by_id", ID),
    sa.Column("escalations", sa.Integer, nullable=False),
    sa.Column("source_tenant", sa.String(32)),
    sa.Column("source_case_id", ID),
    sa.Column("source_case_key", sa.String(32)),
    sa.Index("ix_oncall_pages_org_created", "org_id", "created_at"),
    sa.Index("ix_oncall_pages_source_case", "source_case_id"),
)

# Who each step of a page's escalation targeted, resolved once (a retried activity reads it back).
oncall_page_steps = sa.Table(
    "oncall_page_steps",
    metadata,
    sa.Column("page_id", ID, sa.ForeignKey("oncall_pages.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True),
    sa.Column("step_index", sa.Integer, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("user_ids", JSON, nullable=False),
    sa.Column("resolved_at", UTCDateTime, nullable=False),
)

# Every notification of a page, by idempotency key, with its outcome: `sent` is never sent again.
oncall_notifications = sa.Table(
    "oncall_notifications",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("page_id", ID, sa.ForeignKey("oncall_pages.id", ondelete="CASCADE"), nullable=False),
    sa.Column("idempotency_key", sa.String(255), nullable=False, unique=True),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("channel_id", ID),
    sa.Column("medium", sa.String(8), nullable=False),
    sa.Column("destination", sa.String(255), nullable=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("step_index", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("provider_ref", sa.String(255)),
    sa.Column("detail", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("attempted_at", UTCDateTime),
    sa.Column("sent_at", UTCDateTime),
    sa.Index("ix_oncall_notifications_page", "page_id", "created_at"),
)

# A project's paging rule: which of its cases page which on-call team (the paging flavor applies it).
oncall_project_paging = sa.Table(
    "oncall_project_paging",
    metadata,
    sa.Column("project_id", ID, primary_key=True),
    sa.Column("org_id", ID, nullable=False),
    sa.Column("team_id", ID, nullable=False),
    sa.Column("query", sa.Text, nullable=False),
    sa.Column("urgency", sa.String(8), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("modified_by_id", ID),
    sa.Column("modified_at", UTCDateTime, nullable=False),
)


# Fixed-window request counters shared by every case-api replica on PostgreSQL (casem/services/common/rate_limit.py):
# one row per counted caller (its org, or its key's hash), holding the current window and the requests in it.
rate_limit_counters = sa.Table(
    "rate_limit_counters",
    metadata,
    sa.Column("scope", sa.String(8), primary_key=True),  # "org" or "key"
    sa.Column("ident", sa.String(64), primary_key=True),  # the org's id, or the SHA-256 of the key
    sa.Column("window_start", sa.BigInteger, nullable=False),  # epoch seconds, a multiple of the period
    sa.Column("used", sa.Integer, nullable=False),
)
