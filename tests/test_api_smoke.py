from __future__ import annotations

import httpx

from starters.api.app import create_app

from .conftest import eventually


async def test_api_flow(client, worker, store, settings):
    app = create_app(settings, client=client, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        r = await http.post("/api/v1/incidents", json={"title": "API down", "responders": [{"email": "a@x.io"}]})
        assert r.status_code == 201, r.text
        iid = r.json()["id"]
        r = await http.post(f"/api/v1/incidents/{iid}/war-room", json={})
        assert r.status_code == 201, r.text
        chat = r.json()["chat_id"]
        r = await http.post(f"/api/v1/incidents/{iid}/war-room", json={})
        assert r.status_code == 200 and r.json()["chat_id"] == chat
        r = await http.post(f"/sandbox/api/rooms/{chat}/actions", json={"user": "a@x.io", "action": "acknowledge"})
        assert r.status_code == 200, r.text

        async def acked():
            return (await http.get(f"/api/v1/incidents/{iid}")).json()["incident"]["status"] == "acknowledged"

        await eventually(acked)
        r = await http.delete(f"/api/v1/incidents/{iid}/war-room")
        assert r.status_code == 409, r.text
        print(r.json())
        r = await http.post(f"/api/v1/incidents/{iid}/actions", json={"action": "close", "actor": "a@x.io"})
        assert r.status_code == 200, r.text
        r = await http.delete(f"/api/v1/incidents/{iid}/war-room")
        assert r.status_code == 200, r.text
        print((await http.get(f"/api/v1/incidents/{iid}/timeline")).json())
        print((await http.get("/metrics")).text, (await http.get("/healthz")).json())
