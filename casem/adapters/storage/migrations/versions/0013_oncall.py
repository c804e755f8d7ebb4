"""on-call: team memberships, and the on-call tenant's schedules, overrides, escalation policies, routing rules,
notification channels and rules, pages with their escalation steps and notifications, and project paging rules

Revision ID: 0013_oncall
Revises: 0012_integrations
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import casem.adapters.storage.tables

UTC_DT = casem.adapters.storage.tables.UTCDateTime
ID = sa.String(length=36)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0013_oncall"
down_revision = "0012_integrations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oncall_channels",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_channels")),
    )
    with op.batch_alter_table("oncall_channels", schema=None) as batch_op:
        batch_op.create_index("ix_oncall_channels_user", ["org_id", "user_id"], unique=False)

    op.create_table(
        "oncall_pages",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("urgency", sa.String(length=8), nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("target_type", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=255), nullable=False),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("policy_id", ID, nullable=True),
        sa.Column("routing_rule_id", ID, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("acknowledged_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("acknowledged_by_id", ID, nullable=True),
        sa.Column("resolved_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("resolved_by_id", ID, nullable=True),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.Column("source_tenant", sa.String(length=32), nullable=True),
        sa.Column("source_case_id", ID, nullable=True),
        sa.Column("source_case_key", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_pages")),
    )
    with op.batch_alter_table("oncall_pages", schema=None) as batch_op:
        batch_op.create_index("ix_oncall_pages_org_created", ["org_id", "created_at"], unique=False)
        batch_op.create_index("ix_oncall_pages_source_case", ["source_case_id"], unique=False)

    op.create_table(
        "oncall_policies",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("resolve_page_on_policy_end", sa.Boolean(), nullable=False),
        sa.Column("steps", JSON, nullable=False),
        sa.Column("team_ids", JSON, nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_policies")),
    )
    with op.batch_alter_table("oncall_policies", schema=None) as batch_op:
        batch_op.create_index("ix_oncall_policies_org", ["org_id", "created_at"], unique=False)

    op.create_table(
        "oncall_project_paging",
        sa.Column("project_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("team_id", ID, nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("urgency", sa.String(length=8), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("modified_by_id", ID, nullable=True),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_oncall_project_paging")),
    )
    op.create_table(
        "oncall_round_robin",
        sa.Column("policy_id", ID, nullable=False),
        sa.Column("step_id", ID, nullable=False),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("policy_id", "step_id", name=op.f("pk_oncall_round_robin")),
    )
    op.create_table(
        "oncall_routing_rules",
        sa.Column("team_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("rules", JSON, nullable=False),
        sa.Column("modified_by_id", ID, nullable=True),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_oncall_routing_rules")),
    )
    op.create_table(
        "oncall_schedules",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("layers", JSON, nullable=False),
        sa.Column("team_ids", JSON, nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("feed_token_hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_schedules")),
        sa.UniqueConstraint("feed_token_hash", name=op.f("uq_oncall_schedules_feed_token_hash")),
    )
    with op.batch_alter_table("oncall_schedules", schema=None) as batch_op:
        batch_op.create_index("ix_oncall_schedules_org_name", ["org_id", "name"], unique=False)

    op.create_table(
        "oncall_notification_rules",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=True),
        sa.Column("delay_minutes", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["oncall_channels.id"],
            name=op.f("fk_oncall_notification_rules_channel_id_oncall_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_notification_rules")),
    )
    with op.batch_alter_table("oncall_notification_rules", schema=None) as batch_op:
        batch_op.create_index("ix_oncall_notification_rules_user", ["org_id", "user_id"], unique=False)

    op.create_table(
        "oncall_notifications",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("page_id", ID, nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("channel_id", ID, nullable=True),
        sa.Column("medium", sa.String(length=8), nullable=False),
        sa.Column("destination", sa.String(length=255), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("provider_ref", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("attempted_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("sent_at", UTC_DT(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["page_id"],
            ["oncall_pages.id"],
            name=op.f("fk_oncall_notifications_page_id_oncall_pages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_notifications")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_oncall_notifications_idempotency_key")),
    )
    with op.batch_alter_table("oncall_notifications", schema=None) as batch_op:
        batch_op.create_index("ix_oncall_notifications_page", ["page_id", "created_at"], unique=False)

    op.create_table(
        "oncall_overrides",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("schedule_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("start_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("end_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["oncall_schedules.id"],
            name=op.f("fk_oncall_overrides_schedule_id_oncall_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_overrides")),
    )
    with op.batch_alter_table("oncall_overrides", schema=None) as batch_op:
        batch_op.create_index("ix_oncall_overrides_schedule", ["schedule_id", "created_at"], unique=False)

    op.create_table(
        "oncall_page_steps",
        sa.Column("page_id", ID, nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("user_ids", JSON, nullable=False),
        sa.Column("resolved_at", UTC_DT(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["page_id"], ["oncall_pages.id"], name=op.f("fk_oncall_page_steps_page_id_oncall_pages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("page_id", "round", "step_index", name=op.f("pk_oncall_page_steps")),
    )
    op.create_table(
        "team_memberships",
        sa.Column("team_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_memberships_team_id_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_team_memberships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_team_memberships")),
    )
    with op.batch_alter_table("team_memberships", schema=None) as batch_op:
        batch_op.create_index("ix_team_memberships_user", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("team_memberships", schema=None) as batch_op:
        batch_op.drop_index("ix_team_memberships_user")

    op.drop_table("team_memberships")
    op.drop_table("oncall_page_steps")
    with op.batch_alter_table("oncall_overrides", schema=None) as batch_op:
        batch_op.drop_index("ix_oncall_overrides_schedule")

    op.drop_table("oncall_overrides")
    with op.batch_alter_table("oncall_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_oncall_notifications_page")

    op.drop_table("oncall_notifications")
    with op.batch_alter_table("oncall_notification_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_oncall_notification_rules_user")

    op.drop_table("oncall_notification_rules")
    with op.batch_alter_table("oncall_schedules", schema=None) as batch_op:
        batch_op.drop_index("ix_oncall_schedules_org_name")

    op.drop_table("oncall_schedules")
    op.drop_table("oncall_routing_rules")
    op.drop_table("oncall_round_robin")
    op.drop_table("oncall_project_paging")
    with op.batch_alter_table("oncall_policies", schema=None) as batch_op:
        batch_op.drop_index("ix_oncall_policies_org")

    op.drop_table("oncall_policies")
    with op.batch_alter_table("oncall_pages", schema=None) as batch_op:
        batch_op.drop_index("ix_oncall_pages_source_case")
        batch_op.drop_index("ix_oncall_pages_org_created")

    op.drop_table("oncall_pages")
    with op.batch_alter_table("oncall_channels", schema=None) as batch_op:
        batch_op.drop_index("ix_oncall_channels_user")

    op.drop_table("oncall_channels")
