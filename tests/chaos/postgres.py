"""A PostgreSQL server of the chaos run's own, so the run can restart it like an operator would.

The machine's PostgreSQL is shared with every other test (and, on a developer's machine, with
whatever else runs there): restarting it is not ours to do. A private cluster from the same
binaries (`initdb` in a temporary directory, on a free port, trust auth on 127.0.0.1) can be
stopped and started at will. Where the binaries are missing, or PostgreSQL refuses to run as the
current user and no `postgres` user exists to run it as, `PrivatePostgres.create` returns None and
the run falls back to cutting every connection of the machine's server.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.serving import free_port


class PrivatePostgres:
    def __init__(self, bindir: Path, datadir: Path, user: str | None) -> None:
        self.bindir, self.datadir, self.user = bindir, datadir, user
        self.port = free_port()
        self.restarts = 0

    @classmethod
    def create(cls) -> PrivatePostgres | None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            return None
        user = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as its own user
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return None
            user = "postgres"
        datadir = Path(tempfile.mkdtemp(prefix="warroom-chaos-pg-"))
        if user:
            shutil.chown(datadir, user)
        server = cls(Path(found[-1]).parent, datadir, user)
        server._run("initdb", "-D", str(datadir / "data"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        return server

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.datadir / "data"), "-l", str(self.datadir / "log"), "-o", options,
                  "-w", "start")  # fmt: skip

    def restart(self) -> None:
        """Stop it the way a restart does (every connection cut, in-flight transactions rolled back), start it again."""
        self._run("pg_ctl", "-D", str(self.datadir / "data"), "-m", "fast", "-w", "stop")
        self.start()
        self.restarts += 1

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir / "data"), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.datadir, ignore_errors=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
