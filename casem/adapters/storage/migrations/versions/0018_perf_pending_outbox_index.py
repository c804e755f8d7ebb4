"""perf: a partial index of the outbox rows not published yet, in sequence order

The relay claims the first unpublished rows by sequence and looks at those before its last one; with the
published rows kept for days, only an index that holds nothing else keeps both reads proportional to the
backlog rather than to the table.

Revision ID: 0018_perf_outbox
Revises: 0017_teams_service_url
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_perf_outbox"
down_revision = "0017_teams_service_url"
branch_labels = None
depends_on = None

PENDING = sa.text("published_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_domain_events_pending", "domain_events", ["seq"], postgresql_where=PENDING, sqlite_where=PENDING
    )


def downgrade() -> None:
    op.drop_index("ix_domain_events_pending", table_name="domain_events")
