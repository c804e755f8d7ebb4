"""fidelity: a revision on each case, raised by every commit that records an event about it (comments and
watchers included): the version of its search document, so an older write never overwrites a newer one.

Revision ID: 0016_fidelity
Revises: 0015_fidelity
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_fidelity"
down_revision = "0015_fidelity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("revision", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("revision")
