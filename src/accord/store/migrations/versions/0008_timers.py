"""Timers: named deadlines in database time (leases, TTL checks, live replicas), outside the revisioned store.

A timer is liveness, not state: arming one writes no revision, no history row and no bus message,
so a heartbeat every few seconds costs one row update and wakes no watcher.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accord_timer",
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False, server_default=""),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("accord_timer")
