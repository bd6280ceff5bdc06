"""The web console (issue 18) in a real browser against the real stack: Temporal dev server,
SQL store, worker and the API served by uvicorn. Playwright drives Debian's /usr/bin/chromium.

Set WARROOM_SCREENSHOTS=1 to (re)write the README's screenshots into docs/console/."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from starters.api import session
from starters.api.app import create_app
from warroom.settings import Settings

from .serving import serving
from .test_browser import needs_chromium

CHROMIUM = "/usr/bin/chromium"
TOKEN = "service-token-for-tests"
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "console"
pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.timeout(150)]


async def shot(page: Any, name: str) -> None:
    if os.environ.get("WARROOM_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def console_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_token": SecretStr(TOKEN)})


@pytest_asyncio.fixture
async def base_url(client, worker, store, console_settings) -> AsyncIterator[str]:
    now = datetime.now(UTC)
    store.accounts.put("ann@example.com", name="Ann", password="ann-password-1", admin=False, now=now)
    store.accounts.put("eve@example.com", name="Eve", password="eve-password-1", admin=False, now=now)
    async with serving(create_app(console_settings, client=client, store=store)) as url:
        yield url


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    async_api = pytest.importorskip("playwright.async_api")
    async with async_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def new_page(browser: Any, errors: list[str], **kw: Any) -> Any:
    context = await browser.new_context(viewport=kw.pop("viewport", {"width": 1280, "height": 800}), **kw)
    pg = await context.new_page()
    pg.set_default_timeout(15_000)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: m.type == "error" and "Content Security Policy" in m.text and errors.append(m.text))
    return pg


async def sign_in(page: Any, base_url: str, *, token: str | None = None, email: str = "", password: str = "") -> None:
    tid = page.get_by_test_id
    await page.goto(f"{base_url}/")
    assert "/signin" in page.url
    if token:
        await tid("signin-token-input").fill(token)
        await tid("signin-token-submit").click()
    else:
        await tid("signin-email").fill(email)
        await tid("signin-pass").fill(password)
        await tid("signin-submit").click()
    await page.wait_for_url(f"{base_url}/")


def api(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30)


async def test_walkthrough_token_signin_room_live_dismiss(base_url: str, browser: Any) -> None:
    """Sign in with the token, create an incident, Create War Room → View War Room → acknowledge
    → the sandbox card changes; a click in the sandbox room → the page updates without reload;
    close → Dismiss War Room → dismissed. Hostile text stays text."""
    from playwright.async_api import expect

    errors: list[str] = []
    page = await new_page(browser, errors)
    tid = page.get_by_test_id
    await page.goto(f"{base_url}/")
    await shot(page, "signin")
    await sign_in(page, base_url, token=TOKEN)
    await expect(tid("who")).to_contain_text("admin")
    await expect(tid("list-empty")).to_be_visible()

    hostile = '<img src=x onerror="document.title=1">Checkout is down'
    await tid("create-title").fill(hostile)
    await tid("create-severity").select_option("high")
    await tid("create-responders").fill("Ann <ann@example.com>")
    started = time.perf_counter()
    await tid("create-submit").click()
    await expect(tid("incident-title")).to_have_text(hostile)  # shown as text, not markup
    print(f"create incident → its page: {time.perf_counter() - started:.2f} s")
    assert await page.locator("#main img").count() == 0
    incident_id = page.url.rsplit("/", 1)[-1]

    await tid("create-room").click()
    await expect(tid("room-state")).to_have_text("active")
    await expect(tid("member").and_(page.locator('[data-email="ann@example.com"]'))).to_have_attribute(
        "data-state", "invited"
    )
    view = tid("view-room")
    href = await view.get_attribute("href")
    assert href and "/sandbox#room=" in href
    await expect(tid("create-room")).to_have_count(0)
    await expect(tid("dismiss-room")).to_have_count(0)  # not before the incident is closed

    await tid("action-acknowledge").click()
    await expect(tid("incident-status")).to_have_text("acknowledged")
    await tid("role-select").select_option("lead")
    await tid("role-person").fill("Ann Example")
    await tid("role-save").click()
    await expect(tid("role-lead")).to_have_text("lead: Ann Example")
    await tid("role-select").select_option("comms")
    await tid("role-person").fill("<!here>")  # mention syntax: refused, nothing changes
    await tid("role-save").click()
    await expect(page.locator(".flash.error")).to_contain_text("by email or by name")
    await expect(tid("role-comms")).to_have_text("comms: nobody")
    await shot(page, "incident")
    async with api(base_url) as http:
        chat_id = (await http.get(f"/api/v1/incidents/{incident_id}")).json()["war_room"]["chat_id"]

        async def card_status() -> str:
            room = (await http.get(f"/sandbox/api/rooms/{chat_id}")).json()
            return str(room["card"])

        for _ in range(100):
            if "acknowledged" in await card_status():
                break
            await page.wait_for_timeout(100)
        assert "acknowledged" in await card_status()
        entries = (await http.get(f"/api/v1/incidents/{incident_id}/timeline")).json()
        assert ("action.acknowledge", "admin", "web") in [(e["kind"], e["actor"], e["source"]) for e in entries]

        # Asked in the room, the assistant's impact assessment appears on the page, live.
        r = await http.post(f"/sandbox/api/rooms/{chat_id}/messages", json={"user": "ann@example.com",
                                                                          "text": "@warroom impact"})  # fmt: skip
        assert r.status_code == 201, r.text
        await expect(tid("impact")).to_contain_text("Impact", timeout=15_000)
        await expect(tid("impact")).to_contain_text("severity high, acknowledged")
        assert await tid("impact").locator("img").count() == 0

        # A click in the sandbox room, as Ann: the open page follows, without a reload.
        await expect(tid("live")).to_have_text("live")
        marker = await page.evaluate("() => { window.__same = 1; return 1 }")
        started = time.perf_counter()
        r = await http.post(
            f"/sandbox/api/rooms/{chat_id}/actions", json={"user": "ann@example.com", "action": "close"}
        )
        assert r.status_code < 300, r.text
        await expect(tid("incident-status")).to_have_text("closed", timeout=10_000)
        print(f"room click → page updated: {time.perf_counter() - started:.2f} s")
        assert await page.evaluate("() => window.__same") == marker  # the same page: no reload
        # hostile chat text shows as text in the sandbox, and the timeline entry says who closed
        await expect(tid("timeline-entry").and_(page.locator('[data-kind="action.close"]')).first).to_contain_text(
            "ann@example.com"
        )

    await tid("dismiss-room").click()
    await expect(tid("room-state")).to_have_text("dismissed")
    await expect(tid("view-room")).to_have_count(0)

    await page.goto(f"{base_url}/")
    row = tid("incident-row").and_(page.locator(f'[data-id="{incident_id}"]'))
    await expect(row.get_by_test_id("row-status")).to_have_text("closed")
    await expect(row.get_by_test_id("row-room")).to_contain_text("dismissed")
    await tid("filter-status").select_option("triggered")
    await tid("filter-apply").click()
    await expect(tid("list-empty")).to_contain_text("No incident matches")
    await page.goto(f"{base_url}/incidents/nope")
    await expect(tid("not-found")).to_be_visible()
    assert not errors, errors


async def test_local_accounts_refusals_and_personal_tokens(base_url: str, browser: Any, store: Any) -> None:
    """Ann (a responder) may act; Eve (not one) reads it, her forged POST is refused, and her
    personal token is refused by the API; Ann's token acts as Ann whatever it claims."""
    from playwright.async_api import expect

    async with api(base_url) as http:
        r = await http.post(
            "/api/v1/incidents",
            json={"title": "DB failover", "responders": [{"email": "ann@example.com", "name": "Ann"}]},
        )
        incident_id = r.json()["id"]

    errors: list[str] = []
    eve = await new_page(browser, errors)
    await eve.goto(f"{base_url}/")
    await eve.get_by_test_id("signin-email").fill("eve@example.com")
    await eve.get_by_test_id("signin-pass").fill("wrong password")
    await eve.get_by_test_id("signin-submit").click()
    await expect(eve.get_by_test_id("signin-error")).to_contain_text("Wrong email or password")
    await sign_in(eve, base_url, email="eve@example.com", password="eve-password-1")
    await eve.goto(f"{base_url}/incidents/{incident_id}")
    await expect(eve.get_by_test_id("read-only")).to_be_visible()
    await expect(eve.get_by_test_id("action-acknowledge")).to_have_count(0)
    await expect(eve.get_by_test_id("create-room")).to_have_count(0)
    # the form she may not see, sent anyway with her own session and CSRF token: refused
    csrf = session.read(
        Settings(WARROOM_API_TOKEN=TOKEN, _env_file=None),
        next(c["value"] for c in await eve.context.cookies() if c["name"] == session.COOKIE),
    ).csrf
    forged = await eve.request.post(
        f"{base_url}/incidents/{incident_id}/act", form={"csrf": csrf, "action": "acknowledge"}
    )
    assert forged.ok  # redirected back to the page, with the refusal
    assert "Refused: eve@example.com is not a responder" in await forged.text()
    # without the CSRF token (another site's form): refused too
    forged = await eve.request.post(f"{base_url}/incidents/{incident_id}/act", form={"action": "close"})
    assert "came from another site" in await forged.text()
    await eve.reload()
    await expect(eve.get_by_test_id("incident-status")).to_have_text("triggered")

    # personal tokens: made on the console, used by a script
    await eve.goto(f"{base_url}/tokens")
    await eve.get_by_test_id("token-label").fill("laptop")
    await eve.get_by_test_id("token-create").click()
    eve_token = (await eve.get_by_test_id("token-secret").locator("code").inner_text()).strip()
    assert eve_token.startswith("wrp_")
    ann_token = store.accounts.new_token("ann@example.com", "ci", datetime.now(UTC))[1]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        r = await http.post(
            f"/api/v1/incidents/{incident_id}/actions",
            json={"action": "acknowledge", "actor": "ann@example.com"},
            headers={"authorization": f"Bearer {eve_token}"},
        )
        assert r.status_code == 403, r.text
        r = await http.post(
            f"/api/v1/incidents/{incident_id}/actions",
            json={"action": "acknowledge", "actor": "someone-else@example.com"},
            headers={"authorization": f"Bearer {ann_token}"},
        )
        assert r.status_code in (200, 202), r.text
        r = await http.get("/api/v1/incidents", headers={"authorization": "Bearer wrp_not-a-token"})
        assert r.status_code == 401
        entries = (
            await http.get(f"/api/v1/incidents/{incident_id}/timeline", headers={"authorization": f"Bearer {TOKEN}"})
        ).json()
    acked = [e for e in entries if e["kind"] == "action.acknowledge"]
    assert [(e["actor"], e["source"]) for e in acked] == [("ann@example.com", "api")]
    # Eve's refused console action is in the timeline, and shown on the page
    refused = [(e["actor"], e["source"], e["outcome"]) for e in entries if e["kind"] == "action.refused"]
    assert refused == [("eve@example.com", "web", "refused")], refused
    await eve.goto(f"{base_url}/incidents/{incident_id}")
    await expect(
        eve.get_by_test_id("timeline-entry").and_(eve.locator('[data-kind="action.refused"]'))
    ).to_contain_text("eve@example.com")

    ann = await new_page(browser, errors)
    await sign_in(ann, base_url, email="ann@example.com", password="ann-password-1")
    await ann.goto(f"{base_url}/incidents/{incident_id}")
    await expect(ann.get_by_test_id("incident-status")).to_have_text("acknowledged")
    await ann.get_by_test_id("action-close").click()
    await expect(ann.get_by_test_id("incident-status")).to_have_text("closed")
    assert not errors, errors


async def test_link_users_one_click_and_phone_layout(base_url: str, browser: Any, store: Any) -> None:
    from playwright.async_api import expect

    async with api(base_url) as http:
        for title, people in (
            ("Payments slow", [{"email": "ann@example.com", "name": "Ann"}, {"email": "bob@example.com"}]),
            ("Search errors", [{"email": "cy@example.com", "name": "Cy <b>bold</b>"}]),
        ):
            assert (
                await http.post("/api/v1/incidents", json={"title": title, "responders": people})
            ).status_code == 201
    errors: list[str] = []
    page = await new_page(browser, errors)
    tid = page.get_by_test_id
    await sign_in(page, base_url, token=TOKEN)
    await shot(page, "incidents")
    await page.goto(f"{base_url}/users")
    await expect(tid("person")).to_have_count(3)
    await expect(page.get_by_text("Cy <b>bold</b>")).to_be_visible()  # escaped, shown as typed
    await expect(tid("person").first.get_by_test_id("link-sandbox")).to_contain_text("not linked")
    await tid("one-click-link-sandbox").click()
    await expect(tid("link-result")).to_contain_text("3 linked, 0 not linked on sandbox")
    for row in await tid("person").all():
        await expect(row.get_by_test_id("link-sandbox")).to_contain_text("by email")
    await tid("fix-open").click()
    await tid("fix-email").fill("dan@example.com")
    await tid("fix-user").fill("U-DAN")
    await tid("fix-save").click()
    await expect(tid("flash")).to_contain_text("dan@example.com linked on sandbox by hand")
    await expect(tid("person").and_(page.locator('[data-email="dan@example.com"]'))).to_contain_text("by manual")
    await shot(page, "link-users")

    await page.goto(f"{base_url}/runbooks/new")
    await tid("runbook-name").fill("db-failover")
    await tid("runbook-text").fill(
        "# DB failover\n\n1. Promote the replica\n\n<script>x()</script> [x](javascript:alert(1))"
    )
    await tid("runbook-save").click()
    await expect(tid("runbook-body").locator("h1")).to_have_text("DB failover")
    assert await tid("runbook-body").locator("script").count() == 0
    assert await tid("runbook-body").locator('a[href^="javascript"]').count() == 0
    await shot(page, "runbook")

    phone = await new_page(browser, errors, viewport={"width": 390, "height": 844}, is_mobile=True)
    await sign_in(phone, base_url, token=TOKEN)
    width = await phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the list overflows a phone's width: {width}px"
    await phone.get_by_test_id("incident-link").first.click()
    await expect(phone.get_by_test_id("incident-title")).to_be_visible()
    assert await phone.evaluate("() => document.documentElement.scrollWidth") <= 390
    await shot(phone, "phone")
    assert not errors, errors


async def test_oidc_signin_with_pkce_against_the_fake_provider(
    client, worker, store, console_settings, browser: Any
) -> None:
    """Sign in through the fake OIDC provider: code + PKCE, the ID token checked; a callback with
    a forged state is refused; the person is a non-admin unless listed."""
    from playwright.async_api import expect

    from .fakes.oidc_idp import FakeIdp

    idp = FakeIdp()
    async with serving(idp.app()) as idp_url:
        idp.issuer = idp_url
        app = create_app(console_settings, client=client, store=store)
        async with serving(app) as url:
            app.state.warroom.settings = console_settings.model_copy(
                update={
                    "public_url": url,
                    "oidc_issuer": idp_url,
                    "oidc_client_id": idp.client_id,
                    "oidc_client_secret": SecretStr(idp.client_secret),
                    "oidc_name": "Keycloak",
                    "oidc_admins": "boss@example.com",
                }
            )
            errors: list[str] = []
            page = await new_page(browser, errors)
            tid = page.get_by_test_id
            await page.goto(f"{url}/runbooks")
            await tid("signin-oidc").click()
            await tid("idp-email").fill("Zoe@Example.com")
            await tid("idp-approve").click()
            await page.wait_for_url(f"{url}/runbooks")
            await expect(tid("who")).to_have_text("Zoe")
            assert not idp.refusals, idp.refusals
            assert store.accounts.get("zoe@example.com") is not None  # created on first sign-in

            # a callback this console did not start (forged code and state): refused, no session
            other = await new_page(browser, errors)
            await other.goto(f"{url}/signin/oidc/callback?code=forged&state=forged")
            await expect(other.get_by_test_id("flash")).to_contain_text("did not start here")
            await other.goto(f"{url}/")
            assert "/signin" in other.url
            # someone listed in WARROOM_OIDC_ADMINS signs in as an admin
            await other.goto(f"{url}/signin/oidc")
            approve_url = other.url
            assert "code_challenge_method=S256" in approve_url
            await other.get_by_test_id("idp-email").fill("boss@example.com")
            await other.get_by_test_id("idp-approve").click()
            await expect(other.get_by_test_id("who")).to_contain_text("admin")  # listed in WARROOM_OIDC_ADMINS
            assert not errors, errors
