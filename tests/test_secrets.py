"""No secret ever reaches a workflow history: activities look credentials up from settings at call
time. A whole lifecycle runs with every kind of secret configured, then every history is scanned."""

from __future__ import annotations

import base64
import re

import httpx

from starters.api.app import create_app
from warroom.settings import Settings
from workers.main import build_worker

from .conftest import eventually

SECRETS = {
    "WARROOM_API_TOKEN": "api-token-5f1c2e9a",
    "WARROOM_SANDBOX_SIGNING_SECRET": "sandbox-signing-7d3b",
    "SLACK_BOT_TOKEN": "xoxb-secret-slack-0a9e",
    "SLACK_SIGNING_SECRET": "slack-signing-44c1",
    "LARK_APP_SECRET": "lark-app-secret-91b2",
    "LARK_ENCRYPT_KEY": "lark-encrypt-key-6e0d",
    "OPENAI_API_KEY": "sk-openai-secret-3c7f",
}


def _readable(history_json: str) -> str:
    """The history with every payload's base64 data decoded next to it (as the UI would show it)."""
    decoded = [
        base64.b64decode(m.group(1)).decode("utf-8", "replace")
        for m in re.finditer(r'"data":\s*"([A-Za-z0-9+/=]+)"', history_json)
    ]
    return history_json + "\n".join(decoded)


async def test_histories_hold_no_secret(dev_env, tmp_path) -> None:
    settings = Settings(
        WARROOM_DATABASE_URL=f"sqlite:///{tmp_path / 's.db'}",
        WARROOM_TASK_QUEUE="secrets",
        LARK_APP_ID="cli_secret_test",
        _env_file=None,
        **SECRETS,
    )
    from warroom.store import Store

    store = Store(settings.database_url)
    worker, im = build_worker(dev_env.client, store, settings)
    app = create_app(settings, client=dev_env.client, store=store)
    headers = {"authorization": f"Bearer {SECRETS['WARROOM_API_TOKEN']}"}
    async with (
        worker,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers) as api,
    ):
        body = {"title": "Secrets stay out", "responders": [{"email": "ann@example.com"}]}
        incident = (await api.post("/api/v1/incidents", json=body)).json()
        iid = incident["id"]
        room = (await api.post(f"/api/v1/incidents/{iid}/war-room", json={})).json()
        click = {"user": "ann@example.com", "action": "acknowledge"}
        assert (await api.post(f"/sandbox/api/rooms/{room['chat_id']}/actions", json=click)).status_code == 200
        await eventually(lambda: store.incidents.get(iid).status.value == "acknowledged")
        for action in ("close",):
            r = await api.post(f"/api/v1/incidents/{iid}/actions", json={"action": action, "actor": "ann@example.com"})
            assert r.status_code == 200, r.text
        assert (await api.request("DELETE", f"/api/v1/incidents/{iid}/war-room")).status_code == 200
        await api.post("/api/v1/users/link", json={})

        scanned = 0
        async for wf in dev_env.client.list_workflows("TaskQueue = 'secrets'"):
            history = await dev_env.client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
            text = _readable(history.to_json())
            assert "Secrets stay out" in text or wf.id.startswith("link-users")  # payloads were decoded
            scanned += len(history.events)
            leaked = [name for name, value in SECRETS.items() if value in text]
            assert not leaked, f"{wf.id} history contains {leaked}"
        assert scanned > 20  # the lifecycle really ran
    await im.aclose()
    store.close()
