"""Alembic environment: runs on the connection the app hands over (batch mode, for SQLite)."""

from alembic import context

from spoke_client.db.models import Base

config = context.config
connection = config.attributes["connection"]


def include_object(obj, name, type_, reflected, compare_to):
    # The FTS5 index and its shadow tables are made by raw SQL in 0001; autogenerate must not touch them.
    return not (type_ == "table" and name.startswith("patient_fts"))


context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  include_object=include_object)
with context.begin_transaction():
    context.run_migrations()
