"""moderation

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "runtime_setting",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "ban",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("banned_by_id", sa.Integer(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["banned_by_id"],
            ["person.id"],
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
        ),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("from_status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("to_status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=4096), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["person.id"],
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["report.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entry_report_id"), ["report_id"], unique=False)

    op.create_table(
        "pending_input",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("report_version", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["report.id"],
        ),
        sa.PrimaryKeyConstraint("person_id", "chat_id"),
    )
    op.create_table(
        "report_approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("moderator_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["moderator_id"],
            ["person.id"],
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["report.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id", "moderator_id"),
    )
    with op.batch_alter_table("report_approval", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_report_approval_report_id"), ["report_id"], unique=False
        )

    op.create_table(
        "report_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=4096), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["person.id"],
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["report.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("report_note", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_note_report_id"), ["report_id"], unique=False)

    with op.batch_alter_table("media_file", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("phash", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.add_column(sa.Column("phash_q0", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("phash_q1", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("phash_q2", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("phash_q3", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_media_file_phash_q0"), ["phash_q0"], unique=False)
        batch_op.create_index(batch_op.f("ix_media_file_phash_q1"), ["phash_q1"], unique=False)
        batch_op.create_index(batch_op.f("ix_media_file_phash_q2"), ["phash_q2"], unique=False)
        batch_op.create_index(batch_op.f("ix_media_file_phash_q3"), ["phash_q3"], unique=False)

    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "purpose",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="",
            )
        )
        batch_op.create_index(
            batch_op.f("ix_outbox_message_report_id"), ["report_id"], unique=False
        )
        batch_op.create_foreign_key("fk_outbox_message_report_id", "report", ["report_id"], ["id"])

    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "nominee_key",
                sqlmodel.sql.sqltypes.AutoString(length=256),
                nullable=False,
                server_default="",
            )
        )
        batch_op.add_column(
            sa.Column("content_version", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("claimed_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("duplicate_of_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("decided_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("reject_reason", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True)
        )
        batch_op.add_column(
            sa.Column("headline", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True)
        )
        batch_op.add_column(
            sa.Column("public_story", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.create_index(
            "ix_report_duplicates", ["commune_code", "nominee_key", "created_at"], unique=False
        )
        batch_op.create_index("ix_report_queue", ["status", "created_at"], unique=False)
        batch_op.create_foreign_key("fk_report_decided_by_id", "person", ["decided_by_id"], ["id"])
        batch_op.create_foreign_key("fk_report_claimed_by_id", "person", ["claimed_by_id"], ["id"])
        batch_op.create_foreign_key(
            "fk_report_duplicate_of_id", "report", ["duplicate_of_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_constraint("fk_report_duplicate_of_id", type_="foreignkey")
        batch_op.drop_constraint("fk_report_claimed_by_id", type_="foreignkey")
        batch_op.drop_constraint("fk_report_decided_by_id", type_="foreignkey")
        batch_op.drop_index("ix_report_queue")
        batch_op.drop_index("ix_report_duplicates")
        batch_op.drop_column("public_story")
        batch_op.drop_column("headline")
        batch_op.drop_column("reject_reason")
        batch_op.drop_column("decided_at")
        batch_op.drop_column("decided_by_id")
        batch_op.drop_column("duplicate_of_id")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by_id")
        batch_op.drop_column("nominee_key")
        batch_op.drop_column("content_version")

    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_constraint("fk_outbox_message_report_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_outbox_message_report_id"))
        batch_op.drop_column("purpose")
        batch_op.drop_column("report_id")

    with op.batch_alter_table("media_file", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_file_phash_q3"))
        batch_op.drop_index(batch_op.f("ix_media_file_phash_q2"))
        batch_op.drop_index(batch_op.f("ix_media_file_phash_q1"))
        batch_op.drop_index(batch_op.f("ix_media_file_phash_q0"))
        batch_op.drop_column("phash_q3")
        batch_op.drop_column("phash_q2")
        batch_op.drop_column("phash_q1")
        batch_op.drop_column("phash_q0")
        batch_op.drop_column("phash")

    with op.batch_alter_table("report_note", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_note_report_id"))

    op.drop_table("report_note")
    with op.batch_alter_table("report_approval", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_approval_report_id"))

    op.drop_table("report_approval")
    op.drop_table("pending_input")
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entry_report_id"))

    op.drop_table("audit_entry")
    op.drop_table("ban")
    op.drop_table("runtime_setting")
