"""teams bot connector: each Teams installation remembers its Bot Connector service URL (the `serviceUrl` of the
last validated activity from that tenant), where casem posts the messages it sends into the tenant's conversations.

Revision ID: 0017_teams_service_url
Revises: 0016_fidelity
Create Date: 2026-12-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_teams_service_url"
down_revision = "0016_fidelity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chat_installations") as batch:
        batch.add_column(sa.Column("service_url", sa.String(2048), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_installations") as batch:
        batch.drop_column("service_url")
