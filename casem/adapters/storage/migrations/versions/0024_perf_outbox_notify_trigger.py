"""perf: the outbox's wake-up sent by a trigger, not by a statement of every committing transaction (PostgreSQL)

A transaction that wrote outbox rows woke relays in other processes with `SELECT pg_notify(...)`, one more round
trip to the server in every write transaction with events (a ninth one for a batch of IngestCases). A statement-level
trigger on `domain_events` now sends it as part of the INSERT: PostgreSQL still delivers it only when the transaction
commits (a rollback notifies nobody) and folds a transaction's identical notifications into one.

The payload is empty: the trigger does not know the tenant's name. A listener hears only its own database, which is
its tenant's, so it wakes its own tenant's relay (casem.adapters.storage.outbox_wakeup).

SQLite has no NOTIFY (its relays are woken in-process): nothing to do there.

Revision ID: 0024_perf_outbox_notify_trigger
Revises: 0023_perf_outbox_pending
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0024_perf_outbox_notify_trigger"
down_revision = "0023_perf_outbox_pending"
branch_labels = None
depends_on = None

# The channel is casem.adapters.storage.outbox_wakeup.OUTBOX_NOTIFY_CHANNEL, written out: a migration keeps the
# value it was written with.
_PG_FUNCTION = """
CREATE FUNCTION domain_events_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('casem_outbox', '');
    RETURN NULL;
END
$$
"""
_PG_TRIGGER = """
CREATE TRIGGER domain_events_notify_outbox AFTER INSERT ON domain_events
FOR EACH STATEMENT EXECUTE FUNCTION domain_events_notify_outbox()
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_PG_FUNCTION)
    op.execute(_PG_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER domain_events_notify_outbox ON domain_events")
    op.execute("DROP FUNCTION domain_events_notify_outbox()")
