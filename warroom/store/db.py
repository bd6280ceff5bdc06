"""Engine, sessions and schema migration for the SQL store (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

MIGRATIONS = Path(__file__).with_name("migrations")


def normalize_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://) and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        # One connection per process: its transactions queue on the pool (woken at once when the
        # connection is returned) instead of on SQLite's busy handler, which polls with sleeps of
        # up to 100 ms. Other processes sharing the file still meet the busy timeout.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets the API read while the worker writes; the busy timeout makes writers queue
            # instead of failing when the API, the worker and the CLI share one file.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL never corrupts the file; a power loss may drop the last commits,
            # which the workflow writes again (timeline ids are stable). It saves an fsync a commit.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    """An engine plus a session factory; one per process and database URL."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back when it raises.

        `write=True` marks a read-modify-write transaction. PostgreSQL callers lock the rows they
        change (`with_for_update`); SQLite ignores FOR UPDATE and pysqlite runs the reads before
        its implicit BEGIN, so there the transaction takes the database's write lock up front
        (BEGIN IMMEDIATE, waiting up to the busy timeout): concurrent writers queue instead of
        overwriting each other's changes or tripping over each other's inserts.
        """
        with self._sessions() as s, s.begin():
            if write and self.engine.dialect.name == "sqlite":
                s.connection().exec_driver_sql("BEGIN IMMEDIATE")
            yield s

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction through SQLAlchemy Core, for the reads on a room's hot path:
        a statement costs about half of what it costs through a Session (which sets up the ORM's
        execution context even for plain column selects: about 80 µs a statement here)."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def writing(self, *, read_modify_write: bool = False) -> Iterator[Connection]:
        """A write transaction through SQLAlchemy Core, committed when the block ends, rolled back
        when it raises: half the cost of the same statements through a Session, for the writes on
        a room's hot path. `read_modify_write` takes SQLite's write lock up front, as
        `session(write=True)` does; a plain insert that skips what is stored needs no lock."""
        with self.engine.begin() as conn:
            if read_modify_write and self.engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        self.engine.dispose()
