"""Processes started together on a fresh database all come up, and the schema is migrated once.

Before migrations ran under a lock, four processes started at once on a fresh database crashed
one of them in 5 of 10 tries on SQLite ("duplicate column name") and 9 of 10 on PostgreSQL
(duplicate type in pg_type): what systemd, Kubernetes or a shell script starting the API and
the workers together meets on day one."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text

from warroom.store.db import make_engine
from warroom.store.migrate import Migrated, MigrationTimeout, _file_lock, head_revision, migrate

BIN = Path(sys.executable).parent
TRIES = 3
# How the API and the workers start (their Store migrates), and the deployment's one-shot.
STORE = "from warroom.store import Store; Store({url!r}).close()"


@pytest.fixture
def fresh_pg() -> Iterator[Callable[[], str]]:
    """A factory of empty PostgreSQL databases, dropped at the end."""
    made: list[str] = []
    try:
        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True, connect_timeout=5)
        user = "postgres"
    except psycopg.Error:
        try:
            admin = psycopg.connect("postgresql://root@127.0.0.1:5432/test", autocommit=True, connect_timeout=5)
            user = "root"
        except psycopg.Error as e:
            pytest.skip(f"PostgreSQL is not reachable: {e}")

    def make() -> str:
        name = f"warroom_migrate_{uuid.uuid4().hex[:10]}"
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return f"postgresql+psycopg://{user}@127.0.0.1:5432/{name}"

    yield make
    for name in made:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


def _start_together(url: str, env_url: str) -> list[tuple[int, str]]:
    """Three processes opening the store (API, worker, worker) and `warroom migrate`, at once."""
    commands = [[sys.executable, "-c", STORE.format(url=url)] for _ in range(3)]
    commands.append([str(BIN / "warroom"), "migrate"])
    env = {"WARROOM_DATABASE_URL": env_url, "PATH": str(BIN), "HOME": str(Path.home())}
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) for c in commands]
    return [(p.wait(timeout=120), p.stdout.read().decode(errors="replace")) for p in procs]  # type: ignore[union-attr]


def _versions(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


def _check(url: str) -> None:
    results = _start_together(url, url)
    assert all(code == 0 for code, _ in results), "\n---\n".join(output for code, output in results if code)
    assert _versions(url) == [head_revision()]  # migrated to head, once
    assert migrate(url) == Migrated(head_revision(), head_revision())  # and nothing left to do


def test_four_processes_start_together_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    for n in range(TRIES):
        _check(f"sqlite:///{tmp_path / f'fresh-{n}.db'}")


@pytest.mark.postgres
def test_four_processes_start_together_on_a_fresh_postgresql_database(fresh_pg) -> None:
    for _ in range(TRIES):
        _check(fresh_pg())


def test_a_process_waits_for_a_migration_it_cannot_join_and_says_so(tmp_path: Path, caplog) -> None:
    db = tmp_path / "held.db"
    held = _file_lock(db.with_name(db.name + ".migrate-lock"), 1)  # another process migrating
    with held, caplog.at_level("INFO", logger="warroom.store"), pytest.raises(MigrationTimeout, match="held"):
        migrate(f"sqlite:///{db}", wait=0.5)
    assert [r.getMessage() for r in caplog.records].count(
        f"waiting for the schema migration another process is running ({db}.migrate-lock)"
    ) == 1
    assert migrate(f"sqlite:///{db}").changed  # once it is free, the migration runs
