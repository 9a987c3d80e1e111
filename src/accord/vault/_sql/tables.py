"""Vault tables, matching migration 0002; kept apart from the KV store's tables.

A mapping row is live while ``expired_at`` is NULL. Expiry keeps the row as a tombstone (so an
unmask of its token is counted as expired, and its number is never reused) but erases the
encrypted original and its fingerprint.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

sequence = sa.Table(
    "accord_vault_sequence",
    metadata,
    sa.Column("type", sa.String(64), primary_key=True),
    # Every number ever issued for this name is <= reserved; ranges above it are handed out exclusively.
    sa.Column("reserved", sa.BigInteger, nullable=False),
)

mapping = sa.Table(
    "accord_vault_mapping",
    metadata,
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
    sa.Index("ix_accord_vault_mapping_last_used", "last_used_at"),
)

counter = sa.Table(
    "accord_vault_counter",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

UNMASK_MISSES = "unmask_misses"
UNMASK_EXPIRED = "unmask_expired"
