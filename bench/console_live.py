"""What 50 open console pages cost the API: each holds one live event stream (live.py).

Runs `warroom api` (uvicorn, its own process, a fresh SQLite store with one incident), opens N
event streams on the incident's page, lets them idle for SECONDS, and prints the API process's
CPU over that time (from /proc, user + system) as a share of one core.

    .venv/bin/python bench/console_live.py [N] [SECONDS]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time

import httpx

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def main(n: int, seconds: float) -> None:
    tmp = tempfile.mkdtemp()
    env = {**os.environ, "WARROOM_DATABASE_URL": f"sqlite:///{tmp}/w.db", "WARROOM_API_TOKEN": ""}
    port = "8765"
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "starters.api.app:create_app",
            "--port",
            port,
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=None) as http:
            for _ in range(100):
                try:
                    await http.get("/console/static/console.css")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            from warroom.store import Store

            store = Store(env["WARROOM_DATABASE_URL"])
            from datetime import UTC, datetime

            from warroom.models import IncidentIn

            incident, _ = store.incidents.upsert(IncidentIn(title="bench"), datetime.now(UTC))
            t0 = time.perf_counter()
            r = await http.get(f"/incidents/{incident.id}")
            print(f"incident page load: {(time.perf_counter() - t0) * 1000:.1f} ms ({r.status_code})")

            async def hold() -> None:
                async with http.stream("GET", f"/incidents/{incident.id}/live") as s:
                    async for _ in s.aiter_bytes():
                        pass

            streams = [asyncio.create_task(hold()) for _ in range(n)]
            await asyncio.sleep(3)
            before, t = cpu_seconds(api.pid), time.perf_counter()
            await asyncio.sleep(seconds)
            used, spent = cpu_seconds(api.pid) - before, time.perf_counter() - t
            print(f"{n} open pages, idle {spent:.0f} s: API process CPU {100 * used / spent:.2f} % of one core")
            for s in streams:
                s.cancel()
    finally:
        api.terminate()
        api.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50, float(sys.argv[2]) if len(sys.argv) > 2 else 30))
