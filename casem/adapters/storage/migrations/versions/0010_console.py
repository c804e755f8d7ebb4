"""console: sign-in accounts (Argon2 password hashes, OIDC subjects) and server-side sessions

Revision ID: 0010_console
Revises: 0009_chat
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import casem.adapters.storage.tables

UTC_DT = casem.adapters.storage.tables.UTCDateTime
ID = sa.String(length=36)

revision = "0010_console"
down_revision = "0009_chat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_accounts",
        sa.Column("id", ID, nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("oidc_subject", sa.String(length=255), nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("password_changed_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("last_sign_in_at", UTC_DT(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_console_accounts_org_id_orgs")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_console_accounts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_accounts")),
        sa.UniqueConstraint("email", name=op.f("uq_console_accounts_email")),
        sa.UniqueConstraint("user_id", name=op.f("uq_console_accounts_user_id")),
        sa.UniqueConstraint("oidc_subject", name=op.f("uq_console_accounts_oidc_subject")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("last_seen_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("expires_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("user_agent", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["console_accounts.id"],
            name=op.f("fk_console_sessions_account_id_console_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index("ix_console_sessions_account", "console_sessions", ["account_id"])
    op.create_index("ix_console_sessions_expires", "console_sessions", ["expires_at"])
    # The case list's count of an org's live cases, answered from the index alone.
    op.create_index("ix_cases_org_archived_status", "cases", ["org_id", "archived_at", "status", "priority"])


def downgrade() -> None:
    op.drop_index("ix_cases_org_archived_status", table_name="cases")
    op.drop_index("ix_console_sessions_expires", table_name="console_sessions")
    op.drop_index("ix_console_sessions_account", table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_accounts")
