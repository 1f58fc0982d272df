"""numbered menus and inbound receipts (Zalo)

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-25

Written on the `zalo` branch while 0005 was being written on main: down_revision is
"0004" until the branches meet, then "0005".
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "message_id"),
    )
    with op.batch_alter_table("inbound_receipt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inbound_receipt_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "numbered_menu",
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("chat_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "chat_id"),
    )


def downgrade() -> None:
    op.drop_table("numbered_menu")
    with op.batch_alter_table("inbound_receipt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_receipt_received_at"))

    op.drop_table("inbound_receipt")
