"""The versioned KV store: revision counter, current values, append-only history, setting schemas.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accord_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        sa.table("accord_meta", sa.column("name", sa.String), sa.column("value", sa.BigInteger)),
        [{"name": "revision", "value": 0}, {"name": "compacted_revision", "value": 0}],
    )
    op.create_table(
        "accord_kv",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("flags", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("create_revision", sa.BigInteger, nullable=False),
        sa.Column("mod_revision", sa.BigInteger, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("secret", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "accord_kv_history",
        sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("secret", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_accord_kv_history_key_version", "accord_kv_history", ["key", "version"])
    op.create_table(
        "accord_setting_schema",
        sa.Column("path", sa.String(512), primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("accord_setting_schema")
    op.drop_index("ix_accord_kv_history_key_version", "accord_kv_history")
    op.drop_table("accord_kv_history")
    op.drop_table("accord_kv")
    op.drop_table("accord_meta")
