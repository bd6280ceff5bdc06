"""The sandbox IM page (`/sandbox`) in a real browser, against the real stack: the Temporal dev
server, SQL store and worker of conftest.py, and the API served by uvicorn on a free port.
Playwright drives Debian's /usr/bin/chromium (never a downloaded browser).

Also the sandbox routes the page relies on, over plain HTTP."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from starters.api.app import create_app

from .conftest import eventually
from .serving import serving

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 15_000

needs_chromium = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)",
)


@pytest_asyncio.fixture
async def base_url(client, worker, store, settings) -> AsyncIterator[str]:
    """The API with the sandbox page."""
    async with serving(create_app(settings, client=client, store=store)) as url:
        yield url


@pytest_asyncio.fixture
async def page() -> AsyncIterator[Any]:
    async_api = pytest.importorskip(
        "playwright.async_api", reason="playwright is not installed (pip install -e .[test])"
    )
    async with async_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = await browser.new_context()
            pg = await context.new_page()
            pg.set_default_timeout(TIMEOUT_MS)
            script_errors: list[str] = []
            pg.on("pageerror", lambda e: script_errors.append(str(e)))
            # what the page's Content-Security-Policy blocked (an inline script or style, say)
            pg.on(
                "console",
                lambda m: m.type == "error" and "Content Security Policy" in m.text and script_errors.append(m.text),
            )
            yield pg
            assert not script_errors, f"JavaScript errors on the page: {script_errors}"
        finally:
            await browser.close()


@pytest.mark.browser
@needs_chromium
@pytest.mark.timeout(90)
async def test_sandbox_page_walkthrough(base_url: str, page: Any) -> None:
    from playwright.async_api import expect

    tid = page.get_by_test_id
    await page.goto(f"{base_url}/sandbox")
    await expect(tid("live")).to_have_text("live")
    await expect(tid("rooms-empty")).to_be_visible()

    # Create an incident with a responder who has an email, and open its war room, from the page.
    await tid("create-title").fill("Checkout is down")
    await tid("create-severity").select_option("high")
    await tid("create-responders").fill("Ann <ann@example.com>")
    await tid("create-submit").click()
    await expect(tid("note")).to_contain_text("created")

    # The new room is selected; its card and members show up as the workflow builds the room.
    await expect(tid("room-item")).to_have_count(1)
    await expect(tid("room-item")).to_have_class("selected")
    card = tid("card")
    await expect(card.get_by_test_id("card-title")).to_have_text("Checkout is down")
    await expect(card.get_by_test_id("card-severity")).to_have_text("high")
    await expect(card.get_by_test_id("card-status")).to_have_text("triggered")
    await expect(card.get_by_test_id("card-members")).to_contain_text("Ann (invited)")
    ann = tid("member").and_(page.locator('[data-email="ann@example.com"]'))
    await expect(ann.get_by_test_id("member-state")).to_have_text("joined")
    await expect(tid("responder").and_(page.locator('[data-email="ann@example.com"]'))).to_have_attribute(
        "data-state", "invited"
    )
    chat_id = await tid("room-item").get_attribute("data-chat-id")
    assert chat_id and f"#room={chat_id}" in page.url
    # snooze choices come from the card (the settings' defaults: 2h, 4h, 12h)
    await expect(card.get_by_test_id("card-action-snooze-120")).to_have_text("Snooze 2h")

    # Someone who is not in the room cannot click: the API's refusal is shown.
    await tid("user-custom").fill("eve@example.com")
    await tid("user-custom-use").click()
    await expect(tid("user-select")).to_have_value("eve@example.com")
    await card.get_by_test_id("card-action-acknowledge").click()
    await expect(tid("error")).to_contain_text("join it first")
    # Joined by the room's link, but not a responder: the war room refuses, in the chat and on the page.
    await tid("join-room").click()
    await expect(tid("member").and_(page.locator('[data-email="eve@example.com"]'))).to_be_visible()
    await expect(tid("join-room")).to_be_hidden()
    await expect(tid("error")).to_have_count(0)
    await card.get_by_test_id("card-action-acknowledge").click()
    notice = tid("action-notice")
    await expect(notice).to_have_attribute("data-state", "refused")
    await expect(notice).to_contain_text("not a linked responder")
    await expect(tid("message").filter(has_text="acknowledge refused")).to_contain_text("@eve")
    await expect(card.get_by_test_id("card-status")).to_have_text("triggered")

    # The responder acknowledges: the click goes through the signed callback path, the card follows.
    await tid("user-select").select_option("ann@example.com")
    await expect(notice).to_be_hidden()
    await card.get_by_test_id("card-action-acknowledge").click()
    await expect(card.get_by_test_id("card-status")).to_have_text("acknowledged")
    await expect(card.get_by_test_id("card-last-action")).to_have_text("ann@example.com acknowledged")
    await expect(notice).to_have_attribute("data-state", "applied")
    await expect(tid("room-item-status")).to_have_text("acknowledged")
    await expect(card.get_by_test_id("card-action-acknowledge")).to_have_count(0)

    # A chat message from the page lands in the room.
    await tid("message-input").fill("looking at the payment gateway")
    await tid("message-send").click()
    await expect(tid("message").filter(has_text="looking at the payment gateway")).to_contain_text("ann")
    await expect(tid("message-input")).to_have_value("")

    # The page's clicks are in the incident's timeline, attributed to the person, from the sandbox.
    async with httpx.AsyncClient(base_url=base_url) as http:
        incident_id = await tid("room-item").get_attribute("data-incident-id")
        timeline = (await http.get(f"/api/v1/incidents/{incident_id}/timeline")).json()
    acted = [(e["kind"], e["actor"], e["source"], e["outcome"]) for e in timeline if e["kind"].startswith("action.")]
    assert ("action.acknowledge", "ann@example.com", "sandbox", "ok") in acted
    assert any(kind == "action.refused" and outcome == "refused" for kind, _, _, outcome in acted), acted

    # A room's link (`/sandbox#room=<chat id>`, as `warroom incident create --room` prints it) opens
    # that room; who you act as is remembered.
    async with httpx.AsyncClient(base_url=base_url) as http:
        hostile = {"service": "<b>search <img src=x onerror=window.pwned=1>"}  # shown as text, never markup
        r = await http.post("/api/v1/incidents", json={"title": "Search is slow", "responders": [], "labels": hostile})
        other = (await http.post(f"/api/v1/incidents/{r.json()['id']}/war-room", json={})).json()["chat_id"]
    await page.goto("about:blank")
    await page.goto(f"{base_url}/sandbox#room={chat_id}")
    await expect(tid("room-item")).to_have_count(2)
    await expect(tid("room-item").and_(page.locator(f'[data-chat-id="{chat_id}"]'))).to_have_class("selected")
    await expect(tid("card").get_by_test_id("card-status")).to_have_text("acknowledged")
    await expect(tid("user-select")).to_have_value("ann@example.com")
    await tid("room-item").and_(page.locator(f'[data-chat-id="{other}"]')).click()
    await expect(tid("card").get_by_test_id("card-title")).to_have_text("Search is slow")
    assert page.url.endswith(f"#room={other}")
    # the assistant's impact line on the card, from the labels, is text
    impact = tid("card").get_by_test_id("card-impact")
    await expect(impact).to_contain_text("Services <b>search <img src=x onerror=window.pwned=1>")
    assert await impact.locator("b, img").count() == 0 and await page.evaluate("window.pwned") is None


@pytest.mark.browser
@needs_chromium
@pytest.mark.timeout(60)
async def test_sandbox_page_asks_for_the_api_token(client, worker, store, settings, page: Any) -> None:
    from playwright.async_api import expect

    tid = page.get_by_test_id
    secured = settings.model_copy(update={"api_token": SecretStr("s3cret")})
    async with serving(create_app(secured, client=client, store=store)) as url:
        await page.goto(f"{url}/sandbox")
        await expect(tid("error")).to_contain_text("401 unauthorized")
        await expect(tid("error")).to_contain_text("API token")
        await expect(tid("live")).to_have_text("offline")
        await tid("api-token").fill("s3cret")
        await tid("api-token").press("Enter")
        await expect(tid("live")).to_have_text("live")
        await expect(tid("error")).to_have_count(0)
        # the token is used for the incident API too, and never kept in the browser's storage
        await tid("create-title").fill("Token-protected")
        await tid("create-submit").click()
        await expect(tid("card").get_by_test_id("card-title")).to_have_text("Token-protected")
        await expect(tid("error")).to_have_count(0)
        assert await page.evaluate("() => Object.keys(localStorage).filter((k) => /token/i.test(k))") == []
        await page.reload()
        await expect(tid("api-token")).to_have_value("")
        await expect(tid("live")).to_have_text("offline")

        # signed in to the console, the page needs no token: the session (cookie + CSRF header) stands for it
        await page.goto(f"{url}/signin")
        await tid("signin-token-input").fill("s3cret")
        await tid("signin-token-submit").click()
        await page.goto(f"{url}/sandbox")
        await expect(tid("live")).to_have_text("live")
        await expect(tid("error")).to_have_count(0)
        await expect(tid("room-item")).to_have_count(1)
        # the cookie alone (another site's request, without the CSRF header) is refused
        r = await page.request.get(f"{url}/api/v1/incidents")
        assert r.status == 401


async def test_sandbox_routes_for_the_page(client, worker, store, settings) -> None:
    app = create_app(settings, client=client, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        page = await http.get("/sandbox")
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert "<script>" not in page.text and "style=" not in page.text  # nothing the policy would block
        for asset, kind in (("sandbox.js", "javascript"), ("sandbox.css", "css")):
            r = await http.get(f"/sandbox/assets/{asset}")
            assert (
                r.status_code == 200 and kind in r.headers["content-type"] and f"/sandbox/assets/{asset}" in page.text
            )
        for name in ("sandbox.html", "..%2Fapi%2Fapp.py", "nope.js"):
            assert (await http.get(f"/sandbox/assets/{name}")).status_code == 404

        r = await http.post("/api/v1/incidents", json={"title": "Disk full", "responders": [{"email": "ann@x.io"}]})
        assert r.status_code == 201, r.text
        iid = r.json()["id"]
        r = await http.post(f"/api/v1/incidents/{iid}/war-room", json={})
        assert r.status_code == 201, r.text
        chat = r.json()["chat_id"]
        actions = f"/sandbox/api/rooms/{chat}/actions"

        # the room list carries what its status card shows
        async def listed() -> dict[str, Any] | None:
            items = (await http.get("/sandbox/api/rooms")).json()["items"]
            return next((i for i in items if i["chat_id"] == chat and i["card"]), None)

        item = await eventually(listed)
        assert item["incident_id"] == iid and item["state"] == "active"
        assert item["card"]["title"] == "Disk full" and item["card"]["status"] == "triggered"

        # only the card's buttons can be clicked; the timer's own action cannot
        for body, says in (
            ({"user": "ann@x.io", "action": "unsnooze"}, "'acknowledge', 'snooze', 'close' or 'reopen'"),
            ({"user": "ann@x.io", "action": "snooze"}, "snooze needs minutes"),
            ({"user": "ann@x.io", "action": "snooze", "minutes": 0}, "minutes"),
            ({"user": "ann@x.io", "action": "snooze", "minutes": 7 * 24 * 60 + 1}, "minutes"),
            ({"user": "ann@x.io", "action": "explode"}, "action"),
            ({"user": "not-an-email", "action": "acknowledge"}, "email"),
        ):
            r = await http.post(actions, json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["error"]["code"] == "invalid" and says in r.json()["error"]["message"], r.text
        r = await http.post(actions, json={"user": "zed@x.io", "action": "acknowledge"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "not_a_member", r.text
        r = await http.post("/sandbox/api/rooms/CNOPE/actions", json={"user": "ann@x.io", "action": "acknowledge"})
        assert r.status_code == 404, r.text
        r = await http.post(actions, json={"user": "ann@x.io", "action": "snooze", "minutes": 30})
        assert r.status_code == 200 and r.json()["user_id"].startswith("U"), r.text

        async def snoozed() -> bool:
            return (await http.get(f"/api/v1/incidents/{iid}")).json()["incident"]["status"] == "snoozed"

        await eventually(snoozed)

        # a dismissed room is read only: its card cannot be clicked any more
        r = await http.post(f"/api/v1/incidents/{iid}/actions", json={"action": "close", "actor": "ann@x.io"})
        assert r.status_code == 200, r.text
        r = await http.delete(f"/api/v1/incidents/{iid}/war-room")
        assert r.status_code == 200, r.text
        r = await http.post(actions, json={"user": "ann@x.io", "action": "reopen"})
        assert r.status_code == 409 and "dismissed" in r.json()["error"]["message"], r.text

    # with an API token, the sandbox's API needs it too; the page itself stays open (it asks for it)
    secured = create_app(settings.model_copy(update={"api_token": SecretStr("s3cret")}), client=client, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=secured), base_url="http://t") as http:
        assert (await http.get("/sandbox")).status_code == 200
        r = await http.get("/sandbox/api/rooms")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text
        r = await http.post(actions, json={"user": "ann@x.io", "action": "reopen"})
        assert r.status_code == 401, r.text
        r = await http.get("/sandbox/api/rooms", headers={"authorization": "Bearer s3cret"})
        assert r.status_code == 200 and r.json()["items"], r.text
