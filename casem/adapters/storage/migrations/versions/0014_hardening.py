"""hardening: the per-org outbound allow-list; webhook signing secrets sealed at rest

Revision ID: 0014_hardening
Revises: 0013_oncall
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import casem.adapters.storage.tables
from casem.adapters.secrets import PREFIX, secret_box_from_env

UTC_DT = casem.adapters.storage.tables.UTCDateTime
ID = sa.String(length=36)

revision = "0014_hardening"
down_revision = "0013_oncall"
branch_labels = None
depends_on = None

_endpoints = sa.table("notification_endpoints", sa.column("id", ID), sa.column("secret", sa.Text))


def upgrade() -> None:
    op.create_table(
        "org_outbound_allow",
        sa.Column("org_id", ID, nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=255), nullable=True),
        sa.Column("created_at", UTC_DT(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_org_outbound_allow_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("org_id", "network", name=op.f("pk_org_outbound_allow")),
    )
    # A sealed 255-character secret is about 450 characters.
    with op.batch_alter_table("notification_endpoints") as batch_op:
        batch_op.alter_column("secret", existing_type=sa.String(length=255), type_=sa.Text(), existing_nullable=True)
    _reseal(seal=True)


def downgrade() -> None:
    _reseal(seal=False)
    with op.batch_alter_table("notification_endpoints") as batch_op:
        batch_op.alter_column("secret", existing_type=sa.Text(), type_=sa.String(length=255), existing_nullable=True)
    op.drop_table("org_outbound_allow")


def _reseal(*, seal: bool) -> None:
    """Seal the plaintext secrets stored before this revision (or open them again on the way down).

    The key comes from the environment like the running services' (casem.adapters.secrets): a database
    with no secret to convert needs none, so none is created for it."""
    bind = op.get_bind()
    rows = bind.execute(sa.select(_endpoints.c.id, _endpoints.c.secret).where(_endpoints.c.secret.is_not(None)))
    todo = [row for row in rows if row.secret.startswith(PREFIX) != seal]
    if not todo:
        return
    box = secret_box_from_env()
    for row in todo:
        value = box.seal(row.secret) if seal else box.open(row.secret)
        bind.execute(sa.update(_endpoints).where(_endpoints.c.id == row.id).values(secret=value))
