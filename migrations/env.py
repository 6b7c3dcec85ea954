"""Alembic environment: runs migrations on the sync engine for DATABASE_URL."""

from __future__ import annotations

from alembic import context

from plumbing.settings import load_settings
from store.db import make_engine
from store.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or load_settings().database_url


def run() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode copies a table and drops the original, which foreign keys that point
            # at it forbid. SQLite honours this pragma only outside a transaction, so it goes
            # to the driver before SQLAlchemy begins one; the keys are checked at the end.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                raise RuntimeError("a migration left rows whose foreign key points nowhere")
    engine.dispose()


run()
