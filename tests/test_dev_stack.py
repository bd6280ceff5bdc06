"""`warroom dev` as a real subprocess on free ports: the Temporal dev server starts (file-backed,
with the search attributes), the worker and the API answer, an incident gets a war room, Ctrl-C
stops everything cleanly, and a second start on the same data folder finds it all again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find child processes")


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def children(pid: int) -> dict[int, str]:
    """Direct child processes of `pid`: {pid: command name}."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == pid:
            found[int(entry.name)] = name
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class Stack:
    def __init__(self, tmp: Path, ports: list[int]) -> None:
        self.api, self.temporal, self.ui = ports
        self.tmp = tmp
        self.url = f"http://127.0.0.1:{self.api}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
        self.env["COLUMNS"] = "160"

    def args(self) -> list[str]:
        return [
            sys.executable, "-m", "starters.cli", "dev",
            "--data-dir", str(self.tmp / "data"),
            "--api-port", str(self.api), "--temporal-port", str(self.temporal), "--ui-port", str(self.ui),
        ]  # fmt: skip

    def start(self, log: str) -> subprocess.Popen[bytes]:
        out = (self.tmp / log).open("wb")
        return subprocess.Popen(self.args(), cwd=self.tmp, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def wait_healthy(self, proc: subprocess.Popen[bytes], log: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"warroom dev exited {proc.returncode}:\n{(self.tmp / log).read_text()}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"/healthz never answered 200:\n{(self.tmp / log).read_text()}")

    def stop(self, proc: subprocess.Popen[bytes], log: str) -> str:
        temporal = {p for p, name in children(proc.pid).items() if name.startswith("temporal")}
        assert temporal, f"no temporal child process: {children(proc.pid)}"
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        text = (self.tmp / log).read_text()
        assert code == 0, f"warroom dev exited {code} after SIGINT:\n{text}"
        assert not [p for p in temporal if alive(p)], "the temporal dev server outlived warroom dev"
        return text


@pytest.mark.timeout(300)
def test_dev_stack(tmp_path: Path):
    stack = Stack(tmp_path, free_ports(3))
    proc = stack.start("dev1.log")
    try:
        stack.wait_healthy(proc, "dev1.log")
        with httpx.Client(base_url=stack.url, timeout=30) as http:
            assert "sandbox" in http.get("/sandbox").text.lower()
            assert http.get("/docs").status_code == 200
            r = http.post("/api/v1/incidents", json={"title": "Dev stack", "responders": [{"email": "a@x.io"}]})
            assert r.status_code == 201, r.text
            iid = r.json()["id"]
            r = http.post(f"/api/v1/incidents/{iid}/war-room", json={})
            assert r.status_code == 201 and r.json()["state"] == "active", r.text
            chat = r.json()["chat_id"]
            assert http.get(f"/sandbox/api/rooms/{chat}").status_code == 200
        ui = httpx.get(f"http://127.0.0.1:{stack.ui}/", timeout=10)
        assert ui.status_code == 200

        # A second `warroom dev` on the same ports says clearly what is wrong.
        second = subprocess.run(stack.args(), cwd=tmp_path, env=stack.env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert f"port {stack.api}" in second.stderr and "already in use" in second.stderr

        text = stack.stop(proc, "dev1.log")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"http://localhost:{stack.api}/sandbox" in text
    assert f"http://localhost:{stack.ui}" in text
    assert "stopped" in text
    assert (tmp_path / "data" / "temporal.db").exists() and (tmp_path / "data" / "warroom.db").exists()

    # Start again on the same data folder: Temporal's file keeps the workflow (and the search
    # attributes register again without complaint), the SQL store keeps the incident.
    proc = stack.start("dev2.log")
    try:
        stack.wait_healthy(proc, "dev2.log")
        with httpx.Client(base_url=stack.url, timeout=30) as http:
            got = http.get(f"/api/v1/incidents/{iid}").json()
            assert got["war_room"]["state"] == "active" and got["war_room"]["chat_id"] == chat
            r = http.post(f"/api/v1/incidents/{iid}/actions", json={"action": "acknowledge", "actor": "a@x.io"})
            assert r.status_code == 200 and r.json()["status"] == "acknowledged", r.text
            r = http.post(f"/api/v1/incidents/{iid}/war-room", json={})
            assert r.status_code == 200 and r.json()["chat_id"] == chat, r.text  # the same room, not a new one
        # The search attributes are registered and set: Temporal UI can find the room by them.
        query = f"IncidentId = '{iid}' AND IncidentStatus = 'acknowledged' AND WarRoomState = 'active'"
        deadline = time.monotonic() + 30
        while True:
            out = subprocess.run(
                [str(Path(sys.executable).parent / "temporal"), "workflow", "list",
                 "--address", f"127.0.0.1:{stack.temporal}", "--query", query, "--output", "json"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
            if f"incident-{iid}" in out.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert f"incident-{iid}" in out.stdout, out.stdout
        stack.stop(proc, "dev2.log")
    finally:
        if proc.poll() is None:
            proc.kill()
