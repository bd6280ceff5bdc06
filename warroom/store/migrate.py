"""Schema migrations, one process at a time, however many start at once.

The API, the workers and `warroom migrate` may all start together on a fresh database (systemd,
Kubernetes and shell scripts start processes in any order and at once). Alembic itself is not
safe against that: two upgrades read the same version and run the same DDL, and one of them dies
on "duplicate column" or "alembic_version already exists". So an upgrade runs under a lock:

- PostgreSQL: a session-level advisory lock, held on its own connection for the whole upgrade;
- SQLite: an exclusive `flock` on a file beside the database. SQLite's own `BEGIN EXCLUSIVE`
  cannot be it: Alembic runs its migrations in transactions of its own on its connection, and
  SQLite's batch mode recreates tables, which a transaction held elsewhere would block.

A process that finds the lock taken says once that it waits, and goes on when the schema is at
head (or fails after `wait` seconds, saying who to look at). A process that finds the schema
already at head takes no lock at all: restarts cost one read.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from warroom.store.db import MIGRATIONS, make_engine, normalize_url

log = logging.getLogger("warroom.store")
LOCK_KEY = 0x5741_5252_4D49_4752  # pg_advisory_lock key: "WARRMIGR"
WAIT_SECONDS = 300.0
POLL_SECONDS = 0.2


class MigrationTimeout(RuntimeError):
    """Another process held the migration lock for longer than this one would wait."""


@dataclass(frozen=True)
class Migrated:
    before: str | None  # the revision found (None: an empty database)
    after: str  # the revision now (head)

    @property
    def changed(self) -> bool:
        return self.before != self.after


def migrate(url: str, *, wait: float = WAIT_SECONDS) -> Migrated:
    """Bring the database to the newest schema; safe from any number of processes at once."""
    url = normalize_url(url)
    head = head_revision()
    engine = make_engine(url)
    try:
        found = current_revision(engine)
        if found == head:
            return Migrated(found, head)
        with _migration_lock(url, engine, wait):
            before = current_revision(engine)  # another process may have done it meanwhile
            if before != head:
                _upgrade(url)
            return Migrated(before, current_revision(engine) or head)
    finally:
        engine.dispose()


def head_revision() -> str:
    from alembic.script import ScriptDirectory  # imported here: processes at head need not pay

    head = ScriptDirectory.from_config(_config("")).get_current_head()
    assert head, "the store has migrations"
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _upgrade(url: str) -> None:
    from alembic import command

    command.upgrade(_config(url), "head")


def _config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextmanager
def _migration_lock(url: str, engine: Engine, wait: float) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, wait):
            yield
    elif engine.dialect.name == "sqlite" and (path := _sqlite_file(url)) is not None:
        with _file_lock(path.with_name(path.name + ".migrate-lock"), wait):
            yield
    else:  # an in-memory SQLite database belongs to this process alone
        yield


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    return None if not database or database == ":memory:" else Path(database)


@contextmanager
def _advisory_lock(engine: Engine, wait: float) -> Iterator[None]:
    with engine.connect() as conn:
        _acquire(lambda: bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar()), wait)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            conn.commit()


@contextmanager
def _file_lock(path: Path, wait: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:

        def take() -> bool:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        _acquire(take, wait, where=str(path))
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _acquire(take, wait: float, *, where: str = "the database's advisory lock") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + wait
    said = False
    while not take():
        if not said:
            log.info("waiting for the schema migration another process is running (%s)", where)
            said = True
        if time.monotonic() > deadline:
            raise MigrationTimeout(
                f"another process has held the schema migration lock ({where}) for over {wait:.0f} s; "
                "see that process's log (`warroom migrate` runs it alone)"
            )
        time.sleep(POLL_SECONDS)
