"""One row naming this deployment: the id that namespaces its Redis keys and the key that signs its bus messages.

Both live in the database because the database is the authority: a process that can read it may
publish and verify changes; a process that can only reach Redis can do neither. The row is
created here, once, under the migration lock, so every process of a deployment reads the same one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import os
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "accord_deployment",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("bus_key", sa.LargeBinary, nullable=False),
    )
    op.bulk_insert(table, [{"id": secrets.token_hex(8), "bus_key": os.urandom(32)}])


def downgrade() -> None:
    op.drop_table("accord_deployment")
