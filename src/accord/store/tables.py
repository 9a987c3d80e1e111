"""Table definitions shared by the store and the Alembic migrations.

Migrations are written by hand against these names; ``create_all`` is never used.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

meta = sa.Table(
    "accord_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

kv = sa.Table(
    "accord_kv",
    metadata,
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

kv_history = sa.Table(
    "accord_kv_history",
    metadata,
    sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("key", sa.String(512), nullable=False),
    sa.Column("op", sa.String(8), nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("secret", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("action", sa.String(32), nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Index("ix_accord_kv_history_key_version", "key", "version"),
    sa.Index("ix_accord_kv_history_at", "at"),
)

setting_schema = sa.Table(
    "accord_setting_schema",
    metadata,
    sa.Column("path", sa.String(512), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

deployment = sa.Table(
    "accord_deployment",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("bus_key", sa.LargeBinary, nullable=False),
)

# Named deadlines in database time (store/timers.py): liveness, never revisioned.
timer = sa.Table(
    "accord_timer",
    metadata,
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False, server_default=""),
    sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
)

instance = sa.Table(
    "accord_instance",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("service", sa.String(200), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.BigInteger, nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("applied_revision", sa.BigInteger, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
)

REVISION_ROW = "revision"
COMPACTED_ROW = "compacted_revision"
