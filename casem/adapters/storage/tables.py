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
    sa.UniqueConstraint("project_id", "number", name="uq_cases_project_number"),
    sa.UniqueConstraint("org_id", "intake_key", name="uq_cases_org_intake_key"),
    sa.Index("ix_cases_org_created", "org_id", "created_at"),
    sa.Index("ix_cases_org_key", "org_id", "key"),
    sa.Index("ix_cases_org_status", "org_id", "status"),
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
# case-event-relay publishes rows in seq order and stamps `published_at` after the broker acks.
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
    sa.Column("published_at", UTCDateTime),
    sa.Index("ix_domain_events_unpublished", "published_at", "seq"),
)

_mapped = False


def start_mappers() -> None:
    """Map the domain classes onto the tables (once per process)."""
    global _mapped
    if _mapped:
        return
    from casem.domain.case_types import CaseType, CustomAttributeConfig
    from casem.domain.cases import Case
    from casem.domain.identity import Credential, Org, Team, User, Watcher
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
    ):
        mapper_registry.map_imperatively(cls, table)
    _mapped = True


__all__ = ["metadata", "start_mappers", "date"]
