"""perf: the outbox's unpublished rows listed in a narrow table of their own, deleted when published

Marking a batch published was an UPDATE of every row in it: a new version of each wide row (its envelope copied),
never a HOT update (the pending-rows indexes' predicate reads `published_at`), so each mark also added an entry to
the primary key and to the event id's unique index. It was the largest part of the relay's database work per
batch (9.4 ms of 500 rows against 1.1 ms to delete 500 rows of a two-column table, on the bench's machine).

Now a trigger lists each new event in `domain_events_pending` (sequence number, case id) in the inserting
transaction, so an event and its listing commit together; the relay claims from that table and deletes from it
once the bus acknowledged. `domain_events.published_at` is no longer written (rows published before this
migration keep their stamp); retention takes published rows by their event time. The two partial indexes over
`published_at IS NULL` go: the pending table's primary key is what the claim walks.

Revision ID: 0023_perf_outbox_pending
Revises: 0022_perf_outbox_mark
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_perf_outbox_pending"
down_revision = "0022_perf_outbox_mark"
branch_labels = None
depends_on = None

PENDING = sa.text("published_at IS NULL")

# PostgreSQL: one statement-level trigger (a multi-row INSERT of the outbox lists all its rows in one statement).
_PG_FUNCTION = """
CREATE FUNCTION domain_events_list_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO domain_events_pending (seq, case_id) SELECT seq, case_id FROM inserted;
    RETURN NULL;
END
$$
"""
_PG_TRIGGER = """
CREATE TRIGGER domain_events_list_pending AFTER INSERT ON domain_events
REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION domain_events_list_pending()
"""
# SQLite has row-level triggers only.
_SQLITE_TRIGGER = """
CREATE TRIGGER domain_events_list_pending AFTER INSERT ON domain_events
BEGIN
    INSERT INTO domain_events_pending (seq, case_id) VALUES (NEW.seq, NEW.case_id);
END
"""


def upgrade() -> None:
    op.create_table(
        "domain_events_pending",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_domain_events_pending")),
    )
    op.execute(
        "INSERT INTO domain_events_pending (seq, case_id) SELECT seq, case_id FROM domain_events"
        " WHERE published_at IS NULL"
    )
    if _postgresql():
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)
    op.drop_index("ix_domain_events_pending_case", table_name="domain_events")
    op.drop_index("ix_domain_events_pending", table_name="domain_events")


def downgrade() -> None:
    op.execute("DROP TRIGGER domain_events_list_pending" + (" ON domain_events" if _postgresql() else ""))
    if _postgresql():
        op.execute("DROP FUNCTION domain_events_list_pending()")
    # Rows no longer listed were published: they get the stamp the relay used to write.
    op.execute(
        "UPDATE domain_events SET published_at = CURRENT_TIMESTAMP WHERE published_at IS NULL"
        " AND seq NOT IN (SELECT seq FROM domain_events_pending)"
    )
    op.create_index(
        "ix_domain_events_pending", "domain_events", ["seq"], postgresql_where=PENDING, sqlite_where=PENDING
    )
    op.create_index(
        "ix_domain_events_pending_case",
        "domain_events",
        ["case_id", "seq"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.drop_table("domain_events_pending")


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"
