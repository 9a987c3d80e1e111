"""Alembic environment: always run on a connection the store hands over (see accord.store.migrate)."""

from __future__ import annotations

from alembic import context

from accord.store.migrate import VERSION_TABLE
from accord.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("accord migrations run through accord.store.migrate.upgrade(), which supplies a connection")

context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
