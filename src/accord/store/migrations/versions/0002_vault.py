"""Vault: sequence high-water marks, reversible mappings (originals encrypted), unmask counters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accord_vault_sequence",
        sa.Column("type", sa.String(64), primary_key=True),
        sa.Column("reserved", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "accord_vault_mapping",
        sa.Column("scope", sa.String(128), primary_key=True),
        sa.Column("token", sa.String(96), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("number", sa.BigInteger, nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(32), nullable=True),
        sa.Column("original", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("scope", "type", "fingerprint", name="uq_accord_vault_mapping_fingerprint"),
    )
    op.create_index("ix_accord_vault_mapping_last_used", "accord_vault_mapping", ["last_used_at"])
    op.create_table(
        "accord_vault_counter",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        sa.table("accord_vault_counter", sa.column("name", sa.String), sa.column("value", sa.BigInteger)),
        [{"name": "unmask_misses", "value": 0}, {"name": "unmask_expired", "value": 0}],
    )


def downgrade() -> None:
    op.drop_table("accord_vault_counter")
    op.drop_index("ix_accord_vault_mapping_last_used", "accord_vault_mapping")
    op.drop_table("accord_vault_mapping")
    op.drop_table("accord_vault_sequence")
