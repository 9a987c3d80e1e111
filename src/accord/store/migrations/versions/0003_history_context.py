"""History rows record why they were written (action) and by which request, so history is the audit trail.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accord_kv_history", sa.Column("action", sa.String(32), nullable=True))
    op.add_column("accord_kv_history", sa.Column("request_id", sa.String(64), nullable=True))
    op.create_index("ix_accord_kv_history_at", "accord_kv_history", ["at"])


def downgrade() -> None:
    op.drop_index("ix_accord_kv_history_at", "accord_kv_history")
    with op.batch_alter_table("accord_kv_history") as batch:
        batch.drop_column("request_id")
        batch.drop_column("action")
