"""views and links: saved case views, case links, project favorites, maintenance windows, case insights

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import casem.adapters.storage.tables

UTC_DT = casem.adapters.storage.tables.UTCDateTime
ID = sa.String(length=36)

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_views",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("np_rule_id", ID, nullable=True),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("modified_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_case_views_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_views")),
    )
    op.create_index("ix_case_views_project", "case_views", ["org_id", "project_id", "created_at"])
    op.create_table(
        "case_entity_links",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("parent_entity_type", sa.String(length=32), nullable=False),
        sa.Column("parent_entity_id", sa.String(length=255), nullable=False),
        sa.Column("child_entity_type", sa.String(length=32), nullable=False),
        sa.Column("child_entity_id", sa.String(length=255), nullable=False),
        sa.Column("relationship", sa.String(length=32), nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_entity_links")),
        sa.UniqueConstraint(
            "org_id",
            "parent_entity_type",
            "parent_entity_id",
            "child_entity_type",
            "child_entity_id",
            "relationship",
            name="uq_case_entity_links_ends",
        ),
    )
    op.create_index(
        "ix_case_entity_links_parent", "case_entity_links", ["org_id", "parent_entity_type", "parent_entity_id"]
    )
    op.create_index(
        "ix_case_entity_links_child", "case_entity_links", ["org_id", "child_entity_type", "child_entity_id"]
    )
    op.create_table(
        "project_favorites",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_project_favorites_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "project_id", name=op.f("pk_project_favorites")),
    )
    op.create_table(
        "maintenance_windows",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("start_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("end_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("updated_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("modified_at", UTC_DT(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
    )
    op.create_index("ix_maintenance_windows_org_start", "maintenance_windows", ["org_id", "start_at"])
    op.create_table(
        "case_insights",
        sa.Column("case_id", ID, nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=255), nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("ref", sa.String(length=2048), nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_insights_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("case_id", "type", "resource_id", name=op.f("pk_case_insights")),
    )


def downgrade() -> None:
    op.drop_table("case_insights")
    op.drop_table("maintenance_windows")
    op.drop_table("project_favorites")
    op.drop_table("case_entity_links")
    op.drop_table("case_views")
