"""console: failed sign-ins counted per account, and a back-off after a run of them

Without a limit, anyone who can reach the console can try passwords for an address as fast as Argon2 lets
them. The count and the time the account may try again live on the account's row, so every console replica
sees the same.

Revision ID: 0021_console_throttle
Revises: 0020_shared_rate_limit_counters
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import casem.adapters.storage.tables

revision = "0021_console_throttle"
down_revision = "0020_shared_rate_limit_counters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("console_accounts") as batch:
        batch.add_column(sa.Column("failed_sign_ins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("sign_in_blocked_until", casem.adapters.storage.tables.UTCDateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("console_accounts") as batch:
        batch.drop_column("sign_in_blocked_until")
        batch.drop_column("failed_sign_ins")
