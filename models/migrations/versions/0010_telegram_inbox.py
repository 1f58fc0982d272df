"""the inbox: Telegram updates kept before they are acknowledged, until handled

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox_update",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "update_id"),
    )
    with op.batch_alter_table("inbox_update", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbox_update_handled_at"), ["handled_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox_update", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_update_handled_at"))
    op.drop_table("inbox_update")
