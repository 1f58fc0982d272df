"""moderation indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_open",
            ["created_at", "id"],
            unique=False,
            postgresql_where=sa.text("status IN ('submitted', 'claimed')"),
            sqlite_where=sa.text("status IN ('submitted', 'claimed')"),
        )

    with op.batch_alter_table("report_photo", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_photo_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report_photo", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_photo_sha256"))

    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_report_open",
            postgresql_where=sa.text("status IN ('submitted', 'claimed')"),
            sqlite_where=sa.text("status IN ('submitted', 'claimed')"),
        )
