"""Event producers' reports: each producer's delivery stage and counters, so the server can show them.

One row per running producer (``producer`` is the pipeline's random id), rewritten every few seconds
and removed on close; a row not rewritten for a while is a producer that died or lost its database.
Not revisioned: these are gauges, not configuration (docs/events.md, "Producer reports").

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accord_event_producer",
        sa.Column("producer", sa.String(32), primary_key=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("instance", sa.String(300), nullable=False),
        sa.Column("reported_at", sa.Float(precision=53), nullable=False),
        sa.Column("report", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("accord_event_producer")
