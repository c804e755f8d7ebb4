"""automation: automation rules and their runs, per-project SLA/reminder/duplicate settings, reminders, SLA clocks

Revision ID: 0006
Revises: 0005
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

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automation_rules",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("trigger", JSON, nullable=False),
        sa.Column("action", JSON, nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("modified_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_automation_rules_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_rules")),
    )
    op.create_index("ix_automation_rules_project", "automation_rules", ["project_id", "created_at"])
    op.create_table(
        "automation_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("rule_id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("trigger_event_id", ID, nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("executed_at", UTC_DT(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_runs")),
        sa.UniqueConstraint("rule_id", "trigger_event_id", name="uq_automation_runs_rule_event"),
    )
    op.create_index("ix_automation_runs_case_rule", "automation_runs", ["case_id", "rule_id", "executed_at"])
    op.create_table(
        "automation_caused_events",
        sa.Column("event_id", ID, nullable=False),
        sa.Column("rule_id", ID, nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_automation_caused_events")),
    )
    op.create_table(
        "project_automation_settings",
        sa.Column("project_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("sla", JSON, nullable=True),
        sa.Column("reminders", JSON, nullable=True),
        sa.Column("duplicates", JSON, nullable=True),
        sa.Column("modified_by_id", ID, nullable=True),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_automation_settings_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_automation_settings")),
    )
    op.create_table(
        "case_reminders",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("lead_seconds", sa.Integer(), nullable=False),
        sa.Column("fire_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("fired_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_reminders")),
        sa.UniqueConstraint("case_id", "due_date", "lead_seconds", name="uq_case_reminders_case_due_lead"),
    )
    op.create_index("ix_case_reminders_pending", "case_reminders", ["fired_at", "fire_at"])
    op.create_table(
        "sla_clocks",
        sa.Column("case_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("acknowledged_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("closed_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("acknowledge_due_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("close_due_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("acknowledge_breached_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("close_breached_at", UTC_DT(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_sla_clocks")),
    )
    op.create_index("ix_sla_clocks_project", "sla_clocks", ["org_id", "project_id"])
    op.create_index("ix_sla_clocks_acknowledge_due", "sla_clocks", ["acknowledge_due_at"])
    op.create_index("ix_sla_clocks_close_due", "sla_clocks", ["close_due_at"])


def downgrade() -> None:
    op.drop_table("sla_clocks")
    op.drop_table("case_reminders")
    op.drop_table("project_automation_settings")
    op.drop_table("automation_caused_events")
    op.drop_table("automation_runs")
    op.drop_table("automation_rules")
