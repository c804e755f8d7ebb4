"""case-event-handler: idempotency record, audit log, case metrics

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import casem.adapters.storage.tables

UTC_DT = casem.adapters.storage.tables.UTCDateTime
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handler_processed_events",
        sa.Column("flavor", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("processed_at", casem.adapters.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("flavor", "event_id", name=op.f("pk_handler_processed_events")),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=True),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("actor_id", sa.String(length=36), nullable=True),
        sa.Column("time", UTC_DT(timezone=True), nullable=False),
        sa.Column("changes", JSON, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("event_id", name=op.f("uq_audit_log_event_id")),
    )
    op.create_index("ix_audit_log_org_time", "audit_log", ["org_id", "time"])
    op.create_index("ix_audit_log_case", "audit_log", ["case_id", "seq"])
    op.create_table(
        "case_metrics",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("first_response_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("closed_at", UTC_DT(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_metrics")),
    )
    op.create_index("ix_case_metrics_org_project", "case_metrics", ["org_id", "project_id"])
    op.create_index(
        "ix_domain_events_pending_case",
        "domain_events",
        ["case_id", "seq"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_domain_events_pending_case", table_name="domain_events")
    op.drop_table("case_metrics")
    op.drop_table("audit_log")
    op.drop_table("handler_processed_events")
