"""caseworker: attachments, retention policies, case purge audit

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)
ID = sa.String(36)


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", ID, primary_key=True),
        sa.Column("org_id", ID, nullable=False),
        sa.Column(
            "case_id",
            ID,
            sa.ForeignKey("cases.id", ondelete="CASCADE", name="fk_attachments_case_id_cases"),
            nullable=False,
        ),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("blob_key", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(1024)),
        sa.Column("uploaded_by_id", ID),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("modified_at", TS),
        sa.Column("deleted_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_attachments"),
        sa.UniqueConstraint("blob_key", name="uq_attachments_blob_key"),
    )
    op.create_index("ix_attachments_case", "attachments", ["case_id", "created_at"])
    op.create_index("ix_attachments_state", "attachments", ["state"])
    op.create_table(
        "retention_policies",
        sa.Column("id", ID),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("project_id", ID),
        sa.Column("closed_case_retention_days", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retention_policies"),
        sa.UniqueConstraint("org_id", "project_id", name="uq_retention_policies_org_project"),
    )
    op.create_table(
        "case_purges",
        sa.Column("id", ID),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("case_key", sa.String(32), nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("closed_at", TS),
        sa.Column("archived_at", TS),
        sa.Column("retention_days", sa.Integer, nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("workflow_id", sa.String(255)),
        sa.Column("purged_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_purges"),
        sa.UniqueConstraint("case_id", name="uq_case_purges_case_id"),
    )
    op.create_index("ix_case_purges_org_id", "case_purges", ["org_id"])


def downgrade() -> None:
    op.drop_index("ix_case_purges_org_id", table_name="case_purges")
    op.drop_table("case_purges")
    op.drop_table("retention_policies")
    op.drop_index("ix_attachments_state", table_name="attachments")
    op.drop_index("ix_attachments_case", table_name="attachments")
    op.drop_table("attachments")
