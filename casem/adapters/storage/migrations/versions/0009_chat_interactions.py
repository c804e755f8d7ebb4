"""chat interactions: installations, channel settings, user links and link codes, case chat links, excerpt
messages, the bridges' inbox

Revision ID: 0009_chat
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

import casem.adapters.storage.tables

UTC_DT = casem.adapters.storage.tables.UTCDateTime
ID = sa.String(length=36)
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
NAME = sa.String(length=255)
PLATFORM = sa.String(length=16)

revision = "0009_chat"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_installations",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("platform", PLATFORM, nullable=False),
        sa.Column("workspace_id", NAME, nullable=False),
        sa.Column("workspace_name", NAME, nullable=True),
        sa.Column("app_id", NAME, nullable=True),
        sa.Column("bot_user_id", NAME, nullable=True),
        sa.Column("bot_token", sa.Text(), nullable=True),
        sa.Column("default_project_id", ID, nullable=True),
        sa.Column("installed_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("updated_at", UTC_DT(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_installations")),
        sa.UniqueConstraint("platform", "workspace_id", name="uq_chat_installations_workspace"),
    )
    op.create_index("ix_chat_installations_org", "chat_installations", ["org_id"])
    op.create_table(
        "chat_channel_settings",
        sa.Column("platform", PLATFORM, nullable=False),
        sa.Column("workspace_id", NAME, nullable=False),
        sa.Column("channel_id", NAME, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("default_project_id", ID, nullable=False),
        sa.Column("updated_by_id", ID, nullable=True),
        sa.Column("updated_at", UTC_DT(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "workspace_id", "channel_id", name=op.f("pk_chat_channel_settings")),
    )
    op.create_table(
        "chat_user_links",
        sa.Column("platform", PLATFORM, nullable=False),
        sa.Column("workspace_id", NAME, nullable=False),
        sa.Column("chat_user_id", NAME, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "workspace_id", "chat_user_id", name=op.f("pk_chat_user_links")),
    )
    op.create_index("ix_chat_user_links_user", "chat_user_links", ["org_id", "user_id"])
    op.create_table(
        "chat_link_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("expires_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("used_at", UTC_DT(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_chat_link_codes")),
    )
    op.create_table(
        "chat_links",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("platform", PLATFORM, nullable=False),
        sa.Column("workspace_id", NAME, nullable=False),
        sa.Column("channel_id", NAME, nullable=False),
        sa.Column("thread_id", NAME, nullable=False),
        sa.Column("created_by_id", ID, nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_chat_links_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_links")),
        sa.UniqueConstraint(
            "case_id", "platform", "workspace_id", "channel_id", "thread_id", name="uq_chat_links_case_conversation"
        ),
    )
    op.create_index("ix_chat_links_conversation", "chat_links", ["platform", "workspace_id", "channel_id"])
    op.create_table(
        "chat_excerpt_messages",
        sa.Column("case_id", ID, nullable=False),
        sa.Column("platform", PLATFORM, nullable=False),
        sa.Column("workspace_id", NAME, nullable=False),
        sa.Column("channel_id", NAME, nullable=False),
        sa.Column("message_id", NAME, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("cell_id", ID, nullable=False),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_chat_excerpt_messages_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "case_id", "platform", "workspace_id", "channel_id", "message_id", name=op.f("pk_chat_excerpt_messages")
        ),
    )
    op.create_table(
        "chat_inbox",
        sa.Column("id", sa.String(length=512), nullable=False),
        sa.Column("platform", PLATFORM, nullable=False),
        sa.Column("workspace_id", NAME, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", UTC_DT(timezone=True), nullable=False),
        sa.Column("not_before", UTC_DT(timezone=True), nullable=False),
        sa.Column("processed_at", UTC_DT(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_inbox")),
    )
    op.create_index("ix_chat_inbox_pending", "chat_inbox", ["status", "not_before"])


def downgrade() -> None:
    op.drop_index("ix_chat_inbox_pending", table_name="chat_inbox")
    op.drop_table("chat_inbox")
    op.drop_table("chat_excerpt_messages")
    op.drop_index("ix_chat_links_conversation", table_name="chat_links")
    op.drop_table("chat_links")
    op.drop_table("chat_link_codes")
    op.drop_index("ix_chat_user_links_user", table_name="chat_user_links")
    op.drop_table("chat_user_links")
    op.drop_table("chat_channel_settings")
    op.drop_index("ix_chat_installations_org", table_name="chat_installations")
    op.drop_table("chat_installations")
