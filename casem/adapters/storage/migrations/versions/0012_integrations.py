"""integrations: Jira sites and ServiceNow instances, their templates, case links and sync bookkeeping

Revision ID: 0012_integrations
Revises: 0011_keys
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import casem.adapters.storage.tables

UTC_DT = casem.adapters.storage.tables.UTCDateTime
ID = sa.String(length=36)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0012_integrations"
down_revision = "0011_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jira_issue", JSON, nullable=True))
        batch_op.add_column(sa.Column("service_now_ticket", JSON, nullable=True))
    op.create_table(
        "integration_accounts",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("base_url", sa.String(length=2048), nullable=False),
        sa.Column("auth_type", sa.String(length=32), nullable=False),
        sa.Column("principal", sa.String(length=255), nullable=False),
        sa.Column("sealed_credentials", sa.Text(), nullable=False),
        sa.Column("sealed_webhook_secret", sa.Text(), nullable=False),
        sa.Column("remote_user_id", sa.String(length=255), nullable=True),
        sa.Column("remote_user_name", sa.String(length=255), nullable=True),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("last_webhook_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("deleted_at", UTC_DT(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_accounts")),
    )
    op.create_index("ix_integration_accounts_org", "integration_accounts", ["org_id", "system"])
    op.create_table(
        "jira_issue_templates",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("issue_type_id", sa.String(length=255), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["integration_accounts.id"],
            name=op.f("fk_jira_issue_templates_account_id_integration_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jira_issue_templates")),
    )
    op.create_index("ix_jira_issue_templates_org", "jira_issue_templates", ["org_id", "created_at"])
    op.create_table(
        "servicenow_templates",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("instance_id", ID, nullable=False),
        sa.Column("handle_name", sa.String(length=255), nullable=False),
        sa.Column("table_name", sa.String(length=80), nullable=False),
        sa.Column("assignment_group_id", ID, nullable=True),
        sa.Column("business_service_id", ID, nullable=True),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("fields_mapping", JSON, nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["integration_accounts.id"],
            name=op.f("fk_servicenow_templates_instance_id_integration_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servicenow_templates")),
        sa.UniqueConstraint("org_id", "handle_name", name="uq_servicenow_templates_org_handle"),
    )
    op.create_table(
        "remote_links",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=True),
        sa.Column("remote_key", sa.String(length=255), nullable=True),
        sa.Column("remote_url", sa.String(length=2048), nullable=True),
        sa.Column("project_key", sa.String(length=255), nullable=True),
        sa.Column("error", sa.String(length=2048), nullable=True),
        sa.Column("request", JSON, nullable=True),
        sa.Column("claimed_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("last_remote_change_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_remote_links_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_links")),
        sa.UniqueConstraint("case_id", "system", name="uq_remote_links_case_system"),
    )
    op.create_index("ix_remote_links_remote", "remote_links", ["account_id", "remote_id"])
    op.create_table(
        "remote_objects",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("remote_object_id", sa.String(length=255), nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("cell_id", ID, nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_remote_objects_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", "remote_object_id", name=op.f("pk_remote_objects")),
    )
    op.create_index("ix_remote_objects_cell", "remote_objects", ["cell_id"])
    op.create_table(
        "integration_poll_state",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("watermark", UTC_DT(timezone=True), nullable=False),
        sa.Column("polled_at", UTC_DT(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_integration_poll_state")),
    )


def downgrade() -> None:
    op.drop_table("integration_poll_state")
    op.drop_index("ix_remote_objects_cell", table_name="remote_objects")
    op.drop_table("remote_objects")
    op.drop_index("ix_remote_links_remote", table_name="remote_links")
    op.drop_table("remote_links")
    op.drop_table("servicenow_templates")
    op.drop_index("ix_jira_issue_templates_org", table_name="jira_issue_templates")
    op.drop_table("jira_issue_templates")
    op.drop_index("ix_integration_accounts_org", table_name="integration_accounts")
    op.drop_table("integration_accounts")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("service_now_ticket")
        batch_op.drop_column("jira_issue")
