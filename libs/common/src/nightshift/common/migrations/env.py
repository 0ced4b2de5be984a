"""Alembic environment: one history, serialised by an advisory lock."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from nightshift.common.db.models import Base

#: Advisory lock key held while migrating, so concurrent starts do not race.
MIGRATION_LOCK = 7_204_815_301

config = context.config
engine = create_engine(config.get_main_option("sqlalchemy.url") or "")

with engine.connect() as connection:
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
    connection.commit()
    try:
        context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()
engine.dispose()
