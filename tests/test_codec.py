"""Encrypted payloads: with WARROOM_PAYLOAD_KEY set, no email reaches the Temporal server in plain
text, keys rotate by key id, and the API's codec endpoint decodes for Temporal UI and the
`temporal` CLI (which is driven here against a real API server, as an operator would)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import socket
import subprocess
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
import uvicorn
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from connection.codec import EncryptionCodec, KeyRing, PayloadKeyError, data_converter
from starters.api.app import create_app
from starters.service import WarRoomService
from warroom.models import Action, IncidentIn, Responder, RoomState, Source
from warroom.settings import Settings
from warroom.store import Store
from workers.main import build_worker

from .conftest import binary

SECRET_EMAIL = "ann.secret@example.com"
TOKEN = "codec-test-token"
K1 = base64.b64encode(bytes(range(32))).decode()
K0 = base64.b64encode(bytes(range(100, 116))).decode()


# ---------------------------------------------------------------------------- keys


def test_key_format_and_errors() -> None:
    ring = KeyRing.parse(f"2025b:{K1}, 2025a:{K0}")
    assert ring.ids == ("2025b", "2025a") and ring.current == "2025b"
    assert KeyRing.parse(K1).ids[0].startswith("k")  # a bare key gets a fingerprint id
    urlsafe = base64.urlsafe_b64encode(bytes(range(200, 232))).decode().rstrip("=")
    assert KeyRing.parse(f"u:{urlsafe}").ids == ("u",)
    for bad, says in [
        ("kid:not base64!", "not base64"),
        (f"kid:{base64.b64encode(b'short').decode()}", "needs 16, 24 or 32"),
        (f"a:{K1},a:{K0}", "twice"),
        (f"bad id:{K1}", "key id"),
        (" , ", "no key"),
    ]:
        with pytest.raises(PayloadKeyError, match=says) as e:
            KeyRing.parse(bad)
        assert K1 not in str(e.value)  # key material never in an error


async def test_rotation_decrypts_with_any_listed_key_and_encrypts_with_the_first() -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"email": SECRET_EMAIL}).encode())
    old = EncryptionCodec(KeyRing.parse(f"2025a:{K0}"))
    rotated = EncryptionCodec(KeyRing.parse(f"2025b:{K1},2025a:{K0}"))
    retired = EncryptionCodec(KeyRing.parse(f"2025b:{K1}"))

    (by_old,) = await old.encode([plain])
    assert by_old.metadata["encoding"] == b"binary/encrypted" and by_old.metadata["encryption-key-id"] == b"2025a"
    assert SECRET_EMAIL.encode() not in by_old.SerializeToString()
    assert (await rotated.decode([by_old])) == [plain]
    (by_new,) = await rotated.encode([plain])
    assert by_new.metadata["encryption-key-id"] == b"2025b"
    assert (await retired.decode([by_new])) == [plain]
    with pytest.raises(PayloadKeyError, match="2025a"):
        await retired.decode([by_old])
    tampered = Payload(metadata=by_new.metadata, data=by_new.data[:-1] + bytes([by_new.data[-1] ^ 1]))
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        await rotated.decode([tampered])
    assert (await rotated.decode([plain])) == [plain]  # written before encryption: passes through


# ---------------------------------------------------------------------------- on a real server


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"payload_key": SecretStr(f"2025b:{K1},2025a:{K0}"), "api_token": SecretStr(TOKEN)}
    )


@pytest_asyncio.fixture
async def encrypted_client(dev_env: WorkflowEnvironment, keyed: Settings) -> Client:
    return await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=data_converter(keyed),
    )


async def _life(client: Client, store: Store, settings: Settings) -> str:
    """An incident whose responder's email is the secret: room, acknowledge, close, dismiss."""
    worker, im = build_worker(client, store, settings)
    async with worker:
        svc = WarRoomService(client, store, settings)
        incident, _ = await svc.upsert_incident(
            IncidentIn(title="Card data leak", responders=[Responder(email=SECRET_EMAIL)]),
            actor=SECRET_EMAIL,
            source=Source.API,
        )
        room = await svc.create_room(incident.id, platform="sandbox", actor=SECRET_EMAIL, source=Source.API)
        assert room.done and room.value.state is RoomState.ACTIVE
        for action in (Action.ACKNOWLEDGE, Action.CLOSE):
            assert (await svc.act(incident.id, action, actor=SECRET_EMAIL, source=Source.API)).done
        assert (await svc.dismiss_room(incident.id, actor=SECRET_EMAIL, source=Source.API)).done
        await svc.handle(incident.id).result()
    await im.aclose()
    return f"incident-{incident.id}"


async def _raw_history_bytes(dev_env: WorkflowEnvironment, workflow_id: str) -> list[bytes]:
    """The history as the server stores it, fetched without any codec."""
    history = await dev_env.client.get_workflow_handle(workflow_id).fetch_history()
    return [e.SerializeToString() for e in history.events]


async def test_history_holds_no_plaintext_email_with_a_key(dev_env, encrypted_client, client, store, settings, keyed):
    plain_wid = await _life(client, store, settings)  # control: without a key, the email is there
    assert any(SECRET_EMAIL.encode() in e for e in await _raw_history_bytes(dev_env, plain_wid))

    wid = await _life(encrypted_client, store, keyed)
    events = await _raw_history_bytes(dev_env, wid)
    assert len(events) > 20
    assert not any(SECRET_EMAIL.encode() in e for e in events)
    assert not any(b"Card data leak" in e for e in events)
    assert any(b"binary/encrypted" in e for e in events)
    # The workflow still reads its own history (the worker decrypts): the result is readable.
    view = await encrypted_client.get_workflow_handle(wid).result()
    assert view["incident"]["responders"][0]["email"] == SECRET_EMAIL


# ---------------------------------------------------------------------------- the codec endpoint


def _first_input(history_json: dict) -> dict:
    started = history_json["events"][0]["workflowExecutionStartedEventAttributes"]
    return started["input"]["payloads"][0]


async def test_codec_endpoint_decodes_for_the_ui(dev_env, encrypted_client, store, keyed):
    wid = await _life(encrypted_client, store, keyed)
    history = await dev_env.client.get_workflow_handle(wid).fetch_history()
    encrypted = _first_input(json.loads(history.to_json()))
    assert base64.b64decode(encrypted["metadata"]["encoding"]) == b"binary/encrypted"

    app = create_app(keyed, client=encrypted_client, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        body = {"payloads": [encrypted]}
        assert (await http.post("/codec/decode", json=body)).status_code == 401
        ok = await http.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200, ok.text
        (decoded,) = ok.json()["payloads"]
        assert base64.b64decode(decoded["metadata"]["encoding"]) == b"json/plain"
        assert json.loads(base64.b64decode(decoded["data"]))["incident"]["responders"][0]["email"] == SECRET_EMAIL

        # Temporal UI in a browser: preflight from its origin, then a cookie session.
        pre = await http.options(
            "/codec/default/decode",
            headers={"Origin": "http://localhost:8233", "Access-Control-Request-Method": "POST"},
        )
        assert pre.headers["access-control-allow-origin"] == "http://localhost:8233"
        assert pre.headers["access-control-allow-credentials"] == "true"
        assert "x-namespace" in pre.headers["access-control-allow-headers"].lower()
        evil = await http.options("/codec/decode", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in evil.headers
        assert (await http.post("/codec/session", content="token=wrong")).status_code == 401
        login = await http.post("/codec/session", content=f"token={TOKEN}")
        assert login.status_code == 200 and "warroom_codec" in login.headers["set-cookie"]
        assert TOKEN not in login.headers["set-cookie"]
        by_cookie = await http.post(
            "/codec/default/decode", json=body, headers={"Origin": "http://localhost:8233", "X-Namespace": "default"}
        )
        assert by_cookie.status_code == 200 and by_cookie.json() == ok.json()
        assert by_cookie.headers["access-control-allow-origin"] == "http://localhost:8233"

        # Encode → decode round trip; garbage and unknown keys answer 400.
        enc = await http.post(
            "/codec/encode", json={"payloads": [decoded]}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert base64.b64decode(enc.json()["payloads"][0]["metadata"]["encryption-key-id"]) == b"2025b"
        again = await http.post("/codec/decode", json=enc.json(), headers={"Authorization": f"Bearer {TOKEN}"})
        assert again.json()["payloads"] == [decoded]
        bad = await http.post("/codec/decode", content=b"{not json", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bad.status_code == 400
        foreign = {"metadata": {**encrypted["metadata"], "encryption-key-id": base64.b64encode(b"other").decode()}}
        foreign["data"] = encrypted["data"]
        unknown = await http.post(
            "/codec/decode", json={"payloads": [foreign]}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert unknown.status_code == 400 and "other" in unknown.json()["error"]["message"]


@contextlib.asynccontextmanager
async def _served(app) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_temporal_cli_shows_decoded_history_through_the_codec_endpoint(dev_env, encrypted_client, store, keyed):
    wid = await _life(encrypted_client, store, keyed)
    app = create_app(keyed, client=encrypted_client, store=store)
    address = dev_env.client.service_client.config.target_host
    async with _served(app) as base:

        def show(*extra: str) -> str:
            cmd = [binary("temporal"), "workflow", "show", "-w", wid, "--address", address, "-o", "json", *extra]
            env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
            assert done.returncode == 0, done.stderr
            return done.stdout

        assert not any(SECRET_EMAIL in t for t in _texts(json.loads(await asyncio.to_thread(show))))
        decoded = await asyncio.to_thread(show, "--codec-endpoint", f"{base}/codec", "--codec-auth", f"Bearer {TOKEN}")
        assert any(SECRET_EMAIL in t for t in _texts(json.loads(decoded)))


def _texts(node: object) -> list[str]:
    """Every string in the CLI's JSON history, payload `data` base64-decoded."""
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "data" and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    out.append(base64.b64decode(value).decode(errors="replace"))
            out += _texts(value)
    elif isinstance(node, list):
        for value in node:
            out += _texts(value)
    elif isinstance(node, str):
        out.append(node)
    return out


async def test_codec_endpoint_is_off_with_a_key_and_no_token(encrypted_client, store, keyed, caplog):
    open_api = keyed.model_copy(update={"api_token": SecretStr("")})
    with caplog.at_level(logging.WARNING, logger="warroom.api"):
        app = create_app(open_api, client=encrypted_client, store=store)
    assert any("WARROOM_API_TOKEN" in r.getMessage() for r in caplog.records)  # said at start
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        r = await http.post("/codec/decode", json={"payloads": []})
    assert r.status_code == 403 and r.json()["error"]["code"] == "codec_disabled"
