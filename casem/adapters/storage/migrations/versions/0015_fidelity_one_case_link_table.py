"""fidelity: one table for case-to-case links. The merges' `case_links` rows (one `duplicate_of` per merged
duplicate) move into `case_entity_links` as DUPLICATES links (duplicate → primary) that carry their merge's id;
a link stated both ways (a user's DUPLICATES link, then a merge) becomes one row with the merge's id.

Revision ID: 0015_fidelity
Revises: 0014_hardening
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import casem.adapters.storage.tables

UTC_DT = casem.adapters.storage.tables.UTCDateTime
ID = sa.String(length=36)

revision = "0015_fidelity"
down_revision = "0014_hardening"
branch_labels = None
depends_on = None

# The merges' link kinds, and the Datadog relationship each is.
KIND_RELATIONSHIP = {"duplicate_of": "DUPLICATES"}


def upgrade() -> None:
    with op.batch_alter_table("case_entity_links") as batch:
        batch.add_column(sa.Column("merge_id", ID, nullable=True))
    # A case is merged into one primary at most.
    op.create_index(
        "uq_case_entity_links_merged",
        "case_entity_links",
        ["parent_entity_type", "parent_entity_id"],
        unique=True,
        sqlite_where=sa.text("merge_id IS NOT NULL"),
        postgresql_where=sa.text("merge_id IS NOT NULL"),
    )
    conn = op.get_bind()
    old = sa.table(
        "case_links",
        sa.column("id", ID),
        sa.column("org_id", ID),
        sa.column("case_id", ID),
        sa.column("linked_case_id", ID),
        sa.column("kind", sa.String),
        sa.column("merge_id", ID),
        sa.column("created_at", UTC_DT(timezone=True)),
    )
    new = sa.table(
        "case_entity_links",
        sa.column("id", ID),
        sa.column("org_id", ID),
        sa.column("parent_entity_type", sa.String),
        sa.column("parent_entity_id", sa.String),
        sa.column("child_entity_type", sa.String),
        sa.column("child_entity_id", sa.String),
        sa.column("relationship", sa.String),
        sa.column("created_by_id", ID),
        sa.column("created_at", UTC_DT(timezone=True)),
        sa.column("merge_id", ID),
    )
    for row in conn.execute(sa.select(old)).all():
        relationship = KIND_RELATIONSHIP.get(row.kind, row.kind.upper())
        same = sa.and_(
            new.c.org_id == row.org_id,
            new.c.parent_entity_type == "CASE",
            new.c.parent_entity_id == row.case_id,
            new.c.child_entity_type == "CASE",
            new.c.child_entity_id == row.linked_case_id,
            new.c.relationship == relationship,
        )
        if conn.execute(sa.select(new.c.id).where(same)).first() is not None:
            conn.execute(sa.update(new).where(same).values(merge_id=row.merge_id))
            continue
        conn.execute(
            sa.insert(new).values(
                id=row.id,
                org_id=row.org_id,
                parent_entity_type="CASE",
                parent_entity_id=row.case_id,
                child_entity_type="CASE",
                child_entity_id=row.linked_case_id,
                relationship=relationship,
                created_by_id=None,
                created_at=row.created_at,
                merge_id=row.merge_id,
            )
        )
    op.drop_table("case_links")


def downgrade() -> None:
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
    conn = op.get_bind()
    # The merges' links go back to their table; links a person made (a creator) stay, without the merge's id.
    conn.execute(
        sa.text(
            "INSERT INTO case_links (id, org_id, case_id, linked_case_id, kind, merge_id, created_at) "
            "SELECT id, org_id, parent_entity_id, child_entity_id, 'duplicate_of', merge_id, created_at "
            "FROM case_entity_links WHERE merge_id IS NOT NULL"
        )
    )
    conn.execute(sa.text("DELETE FROM case_entity_links WHERE merge_id IS NOT NULL AND created_by_id IS NULL"))
    op.drop_index("uq_case_entity_links_merged", table_name="case_entity_links")
    with op.batch_alter_table("case_entity_links") as batch:
        batch.drop_column("merge_id")
