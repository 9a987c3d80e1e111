"""Events: the table the event consumer (and the producer's database stage) inserts into (docs/events.md).

``event_id`` is the primary key so every redelivery is ``ON CONFLICT (event_id) DO NOTHING``; the
whole event is kept as JSON in ``body``, with the fields queries filter on copied into columns.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accord_event",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("ts", sa.Float(precision=53), nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("route", sa.String(512), nullable=False, server_default=""),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("request_id", sa.String(200), nullable=True),
        sa.Column("sampling_rule", sa.String(16), nullable=False, server_default=""),
        sa.Column("producer", sa.String(32), nullable=False, server_default=""),
        sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_accord_event_ts", "accord_event", ["ts"])
    op.create_index("ix_accord_event_service_ts", "accord_event", ["service", "ts"])
    op.create_index("ix_accord_event_request_id", "accord_event", ["request_id"])


def downgrade() -> None:
    op.drop_table("accord_event")
