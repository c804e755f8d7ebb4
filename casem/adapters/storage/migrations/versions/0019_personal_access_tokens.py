"""personal access tokens: credentials of kind 'pat' with an expiry, scopes, a public portion and a last use

A personal access token acts as its user in DD-APPLICATION-KEY, like an application key, until it expires or
is revoked; its secret is stored as a hash like every other key's.

Revision ID: 0019_personal_access_tokens
Revises: 0018_perf_outbox
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import casem.adapters.storage.tables

UTC_DT = casem.adapters.storage.tables.UTCDateTime
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0019_personal_access_tokens"
down_revision = "0018_perf_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch_op:
        batch_op.add_column(sa.Column("expires_at", UTC_DT(), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", UTC_DT(), nullable=True))
        batch_op.add_column(sa.Column("public_portion", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("scopes", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch_op:
        for column in ("scopes", "public_portion", "last_used_at", "expires_at"):
            batch_op.drop_column(column)
