"""Alembic environment of the hub: runs on the connection handed over (SQLite or PostgreSQL)."""

from alembic import context

from sync.hub.models import HubBase

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=HubBase.metadata,
                  render_as_batch=connection.dialect.name == "sqlite", version_table="hub_alembic_version")
with context.begin_transaction():
    context.run_migrations()
