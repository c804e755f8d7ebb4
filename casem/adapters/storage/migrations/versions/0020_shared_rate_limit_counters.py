"""shared rate limits: fixed-window request counters every case-api replica counts in (PostgreSQL)

Revision ID: 0020_shared_rate_limit_counters
Revises: 0019_personal_access_tokens
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_shared_rate_limit_counters"
down_revision = "0019_personal_access_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_counters",
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("ident", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "ident"),
    )


def downgrade() -> None:
    op.drop_table("rate_limit_counters")
