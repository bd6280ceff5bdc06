"""Processes started together on a fresh database all come up, and the schema is migrated once.

Before migrations ran under a lock, four processes started at once on a fresh database crashed
one of them in 5 of 10 tries on SQLite ("duplicate column name") and 9 of 10 on PostgreSQL
(duplicate type in pg_type): what systemd, Kubernetes or a shell script starting the API and
the workers together meets on day one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from warroom.store.db import make_engine
from warroom.store.migrate import Migrated, MigrationTimeout, _file_lock, head_revision, migrate

BIN = Path(sys.executable).parent
TRIES = 3
# How the API and the workers start (their Store migrates), and the deployment's one-shot.
STORE = "from warroom.store import Store; Store({url!r}).close()"


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


def _warroom(*args: str, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"WARROOM_DATABASE_URL": url, "PATH": str(BIN), "HOME": str(Path.home()), "NO_COLOR": "1"}
    return subprocess.run([str(BIN / "warroom"), *args], capture_output=True, text=True, env=base | env, timeout=60)


@pytest.mark.parametrize("command", [("migrate",), ("worker",), ("api", "--port", "0")])
def test_an_unreachable_database_is_one_line_and_exit_3(command: tuple[str, ...], tmp_path: Path) -> None:
    for url in ("postgresql+psycopg://nobody@127.0.0.1:1/none", f"sqlite:///{tmp_path}/no/such/dir/w.db"):
        done = _warroom(*command, url=url)
        assert done.returncode == 3, (command, url, done.stdout, done.stderr)
        assert "cannot reach the database" in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert "WARROOM_DATABASE_URL" in done.stderr


def test_a_process_that_outwaits_a_migration_exits_1_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "held.db"
    with _file_lock(db.with_name(db.name + ".migrate-lock"), 1):  # another process migrating, for long
        for command in (("worker",), ("migrate", "--wait", "0.3")):
            done = _warroom(*command, url=f"sqlite:///{db}", WARROOM_MIGRATE_WAIT_SECONDS="0.3")
            assert done.returncode == 1, (command, done.stdout, done.stderr)
            assert "held" in done.stderr and "WARROOM_MIGRATE_WAIT_SECONDS" in done.stderr, done.stderr
            assert "Traceback" not in done.stderr, done.stderr
