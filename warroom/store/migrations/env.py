"""Alembic environment: runs migrations for the URL given by `warroom.store.migrate.migrate`."""

from __future__ import annotations

import importlib

from alembic import context

from warroom.im.plugins import get_plugin, platform_names
from warroom.store.db import make_engine
from warroom.store.tables import Base

config = context.config
for _name in platform_names():  # platforms' own tables belong to the schema too (autogenerate sees them)
    if (_tables := get_plugin(_name).tables) is not None:
        importlib.import_module(_tables)


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "migrate() sets sqlalchemy.url"
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")
run_migrations_online()
