"""keys: who created and last changed each key, and Datadog's API key settings (the Key Management API)

Revision ID: 0011_keys
Revises: 0010_console
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import casem.adapters.storage.tables

UTC_DT = casem.adapters.storage.tables.UTCDateTime
ID = sa.String(length=36)

revision = "0011_keys"
down_revision = "0010_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch_op:
        batch_op.add_column(sa.Column("modified_at", UTC_DT(), nullable=True))
        batch_op.add_column(sa.Column("created_by", ID, nullable=True))
        batch_op.add_column(sa.Column("modified_by", ID, nullable=True))
        batch_op.add_column(sa.Column("category", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("remote_config_read_enabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index("ix_credentials_org_kind", "credentials", ["org_id", "kind", "revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_credentials_org_kind", table_name="credentials")
    with op.batch_alter_table("credentials") as batch_op:
        for column in ("remote_config_read_enabled", "category", "modified_by", "created_by", "modified_at"):
            batch_op.drop_column(column)
