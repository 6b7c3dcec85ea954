"""Alembic environment: runs migrations on the sync engine for DATABASE_URL."""

from __future__ import annotations

from alembic import context

from khalex_pay.settings import load_settings
from store.db import make_engine
from store.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or load_settings().database_url


def run() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
