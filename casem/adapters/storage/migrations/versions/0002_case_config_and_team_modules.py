"""custom attribute map_from and live-key uniqueness; team modules

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.add_column("custom_attribute_configs", sa.Column("map_from", sa.String(length=255), nullable=True))
    # A key is unique among the live configs of one case type; soft-deleted ones free their key.
    op.create_index(
        "uq_custom_attribute_configs_live_key",
        "custom_attribute_configs",
        ["org_id", "case_type_id", "key"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.add_column("teams", sa.Column("visible_modules", JSON, nullable=True))
    op.add_column("teams", sa.Column("hidden_modules", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch_op:
        batch_op.drop_column("hidden_modules")
        batch_op.drop_column("visible_modules")
    op.drop_index("uq_custom_attribute_configs_live_key", table_name="custom_attribute_configs")
    with op.batch_alter_table("custom_attribute_configs") as batch_op:
        batch_op.drop_column("map_from")
