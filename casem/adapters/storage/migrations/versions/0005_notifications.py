"""notifications: project notification rules, org endpoints, watcher inbox, deliveries

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import casem.adapters.storage.tables

UTC_DT = casem.adapters.storage.tables.UTCDateTime
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID = sa.String(length=36)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_rules",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("triggers", JSON, nullable=False),
        sa.Column("recipients", JSON, nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_notification_rules_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_rules")),
    )
    op.create_index("ix_notification_rules_project", "notification_rules", ["project_id", "created_at"])
    op.create_table(
        "notification_endpoints",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.String(length=255), nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_endpoints")),
        sa.UniqueConstraint("org_id", "kind", "name", name="uq_notification_endpoints_org_kind_name"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("case_key", sa.String(length=32), nullable=False),
        sa.Column("event_id", ID, nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("actor_id", ID, nullable=True),
        sa.Column("summary", sa.String(length=1024), nullable=False),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("read_at", UTC_DT(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("user_id", "event_id", name="uq_notifications_user_event"),
    )
    op.create_index("ix_notifications_user_created", "notifications", ["org_id", "user_id", "created_at"])
    op.create_table(
        "notification_deliveries",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("rule_id", ID, nullable=True),
        sa.Column("source_event_id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", JSON, nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("sent_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("updated_at", UTC_DT(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
    )
    op.create_index("ix_notification_deliveries_org_created", "notification_deliveries", ["org_id", "created_at"])
    op.create_index("ix_notification_deliveries_source", "notification_deliveries", ["source_event_id"])


def downgrade() -> None:
    op.drop_table("notification_deliveries")
    op.drop_table("notifications")
    op.drop_table("notification_endpoints")
    op.drop_table("notification_rules")
