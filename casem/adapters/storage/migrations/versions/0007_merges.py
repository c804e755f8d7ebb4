"""merges: case merges, their per-duplicate progress, and case links

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import casem.adapters.storage.tables

UTC_DT = casem.adapters.storage.tables.UTCDateTime
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID = sa.String(length=36)

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_merges",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("primary_case_id", ID, nullable=False),
        sa.Column("duplicate_ids", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("requested_by_id", ID, nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("started_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("completed_at", UTC_DT(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_merges")),
    )
    op.create_index("ix_case_merges_org_primary", "case_merges", ["org_id", "primary_case_id"])
    op.create_table(
        "case_merge_progress",
        sa.Column("merge_id", ID, nullable=False),
        sa.Column("duplicate_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("cells_copied", sa.Integer(), nullable=False),
        sa.Column("watchers_added", sa.Integer(), nullable=False),
        sa.Column("done_at", UTC_DT(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("merge_id", "duplicate_id", name=op.f("pk_case_merge_progress")),
    )
    op.create_table(
        "case_links",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("linked_case_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("merge_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_links")),
        sa.UniqueConstraint("case_id", "kind", name="uq_case_links_case_kind"),
    )
    op.create_index("ix_case_links_linked", "case_links", ["linked_case_id", "kind"])


def downgrade() -> None:
    op.drop_table("case_links")
    op.drop_table("case_merge_progress")
    op.drop_table("case_merges")
