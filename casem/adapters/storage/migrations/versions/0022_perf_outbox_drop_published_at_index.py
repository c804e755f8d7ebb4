"""perf: drop the outbox's (published_at, seq) index

Nothing that reads the unpublished rows uses it any more: the relay's claim, its held-rows check and the backlog
count read the partial pending-rows indexes (0004, 0018). It cost one entry when a row is written and another each
time the relay marks it published (a mark is a new row version; with `published_at` indexed, every index gets an
entry for it). Its last reader, retention, now walks the primary key from the oldest row instead.

Revision ID: 0022_perf_outbox_mark
Revises: 0021_console_throttle
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0022_perf_outbox_mark"
down_revision = "0021_console_throttle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_domain_events_unpublished", table_name="domain_events")


def downgrade() -> None:
    op.create_index("ix_domain_events_unpublished", "domain_events", ["published_at", "seq"])
