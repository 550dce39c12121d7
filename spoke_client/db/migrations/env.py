"""Alembic environment: runs on the connection the app hands over (batch mode, for SQLite)."""

from alembic import context

from spoke_client.db.models import Base

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
