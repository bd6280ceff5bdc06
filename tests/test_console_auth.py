"""Console sign-in under hostile input, over plain HTTP (no browser): forged and expired session
cookies, wrong passwords, the sign-in form without its CSRF token, open redirects, and the
password hashes themselves."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime
from urllib.parse import unquote

import httpx
from pydantic import SecretStr

from starters.api import session
from starters.api.app import create_app
from tests.fakes.oidc_idp import FakeIdp
from tests.serving import serving
from warroom.passwords import hash_password, verify_password


def test_password_hashes() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert hash_password("correct horse") != stored  # salted
    for bad in (None, "", "md5$x", "scrypt$1$2$3$zz$yy", "scrypt$notanumber$8$1$00$00"):
        assert not verify_password("correct horse", bad)


def test_session_cookie_forged_or_expired(settings) -> None:
    secured = settings.model_copy(update={"api_token": SecretStr("t0ken")})
    who, value = session.issue(secured, "ann@example.com", "Ann", admin=False, via="password")
    assert session.read(secured, value) == who
    body, _, mac = value.rpartition(".")
    # the same body claiming admin, with the old signature: refused
    claims = json.loads(session._unb64(body)) | {"admin": True}
    assert session.read(secured, session._b64(json.dumps(claims).encode()) + "." + mac) is None
    assert session.read(secured, value[:-2] + "xx") is None
    assert session.read(secured.model_copy(update={"api_token": SecretStr("other")}), value) is None
    for junk in ("", ".", "a.b", "x" * 5000, "%%%.%%%"):
        assert session.read(secured, junk) is None
    expired = dataclasses.replace(who, expires=time.time() - 1)
    body = session._b64(json.dumps(dataclasses.asdict(expired)).encode())
    mac = session._b64(session.hmac.new(session._secret(secured), body.encode(), session.hashlib.sha256).digest())
    assert session.read(secured, f"{body}.{mac}") is None


async def test_signin_refusals_and_open_redirects(settings, store) -> None:
    secured = settings.model_copy(update={"api_token": SecretStr("t0ken")})
    store.accounts.put("ann@example.com", name="Ann", password="ann-password-1", admin=False, now=datetime.now(UTC))
    app = create_app(secured, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.get("/")).status_code == 303  # to /signin
        assert (await http.get("/users")).headers["location"].startswith("/signin?next=%2Fusers")
        form = await http.get("/signin?next=//evil.example/x")
        assert form.status_code == 200 and "evil.example" not in form.text

        def csrf() -> str:  # each sign-in form rendered comes with a fresh one
            return http.cookies[session.PRE_COOKIE]

        # no CSRF token: refused, nothing signed in
        r = await http.post("/signin", data={"email": "ann@example.com", "password": "ann-password-1"})
        assert r.status_code == 400 and session.COOKIE not in r.cookies
        for email, password in (("ann@example.com", "wrong"), ("nobody@example.com", "ann-password-1")):
            r = await http.post("/signin", data={"csrf": csrf(), "email": email, "password": password})
            assert r.status_code == 401 and "Wrong email or password" in r.text
        r = await http.post("/signin", data={"csrf": csrf(), "token": "not-it"})
        assert r.status_code == 401
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            await http.get("/signin")
            r = await http.post(
                "/signin",
                data={"csrf": csrf(), "email": "ann@example.com", "password": "ann-password-1", "next": target},
            )
            assert r.status_code == 303 and r.headers["location"] == "/", target
        page = await http.get("/")
        assert page.status_code == 200 and "Ann" in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "<script>" not in page.text
        # a bad form on an action: a clear refusal, never a 500
        r = await http.post("/incidents/nope/act", data={"action": "acknowledge"})
        assert r.status_code == 303
        r = await http.post("/incidents", data={"csrf": "x", "title": "t"})
        assert r.status_code == 303
        assert (await http.get("/incidents/" + "x" * 500)).status_code == 404
        assert (await http.get("/console/static/../app.py")).status_code == 404


async def test_oidc_sign_in_self_links_the_im_user_id_the_provider_vouches_for(client, settings, store) -> None:
    """With WARROOM_OIDC_IM_CLAIMS, the user id an ID-token claim carries is linked to the person
    at sign-in (method self-link); a claim that is no plausible id is ignored, sign-in goes on; a
    replayed callback (its code used already) makes no session."""
    idp = FakeIdp()
    idp.extra_claims["zoe@example.com"] = {"https://slack.com/user_id": "U0ZOE42"}
    idp.extra_claims["max@example.com"] = {"https://slack.com/user_id": "<!channel>\n" * 40}
    async with serving(idp.app()) as idp_url, httpx.AsyncClient() as idp_http:
        idp.issuer = idp_url
        app = create_app(settings, client=client, store=store)
        async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
            app.state.warroom.settings = settings.model_copy(update={
                "public_url": url, "oidc_issuer": idp_url, "oidc_client_id": idp.client_id,
                "oidc_client_secret": SecretStr(idp.client_secret),
                "oidc_im_claims": "slack=https://slack.com/user_id, nosuch=sub",
            })  # fmt: skip
            for email in ("Zoe@Example.com", "max@example.com"):
                http.cookies.clear()
                authorize = httpx.URL((await http.get("/signin/oidc")).headers["location"])
                flow = http.cookies["warroom_oidc"]
                approved = await idp_http.post(
                    f"{idp_url}/authorize", data={**dict(authorize.params), "login_email": email.lower()}
                )
                signed_in = await http.get(approved.headers["location"])
                assert signed_in.status_code == 303 and signed_in.headers["location"] == "/", signed_in.text
                # The same callback again, flow cookie and all (a replayed code): the provider
                # refuses the code's second use, and no session is made.
                http.cookies.clear()
                http.cookies.set("warroom_oidc", flow)
                replayed = await http.get(approved.headers["location"])
                assert replayed.headers["location"] == "/signin" and session.COOKIE not in replayed.cookies
                assert idp.refusals and "invalid_grant" in idp.refusals[-1]
    links = store.links.list("slack")
    assert [(u.email, u.im_user_id, u.method) for u in links] == [("zoe@example.com", "U0ZOE42", "self-link")]
    assert len(idp.refusals) == 2  # the two replays, nothing else


async def test_the_incident_list_pages_back_through_a_long_history(settings, store) -> None:
    """Newest 200 first, then Older → the rest (filters kept); a cursor that is not ours shows the
    newest page, not a 500."""
    from datetime import timedelta

    from warroom.models import IncidentIn

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(230):
        store.incidents.upsert(IncidentIn(id=f"old-{n:03d}", title=f"Incident {n}"), t0 + timedelta(minutes=n))
    app = create_app(settings, store=store)  # no token and no accounts: the local console is open
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        first = await http.get("/", params={"text": "incident"})
        assert first.status_code == 200 and first.text.count('data-testid="incident-row"') == 200
        assert "old-229" in first.text and "old-029" not in first.text
        older = first.text.split('href="/?', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        assert "text=incident" in older and "cursor=" in older
        second = await http.get(f"/?{older}")
        assert second.text.count('data-testid="incident-row"') == 30 and "old-000" in second.text
        assert 'data-testid="newest"' in second.text and 'data-testid="older"' not in second.text
        forged = await http.get("/", params={"cursor": "not-ours"})
        assert forged.status_code == 200 and forged.text.count('data-testid="incident-row"') == 200


def test_self_link_tokens_are_ours_fresh_and_untampered(settings) -> None:
    from warroom import selflink

    keyed = settings.model_copy(update={"session_secret": SecretStr("s3cret")})
    url = selflink.offer(keyed, "slack", "U0EVE", now=1000.0)
    assert url and url.startswith(f"{keyed.public_url}/users/self-link?t=")
    token = url.split("?t=", 1)[1].replace("%2E", ".")
    assert selflink.verify(keyed, token, now=1001.0) == selflink.Claim("slack", "U0EVE")
    assert selflink.verify(keyed, token, now=1000.0 + selflink.VALID_SECONDS + 1) is None  # expired
    other = keyed.model_copy(update={"session_secret": SecretStr("another")})
    assert selflink.verify(other, token, now=1001.0) is None  # signed by someone else
    body, mac = token.split(".")
    forged = selflink.offer(other, "slack", "U0ADMIN", now=1000.0).split("?t=", 1)[1]  # type: ignore[union-attr]
    assert selflink.verify(keyed, forged.split(".")[0] + "." + mac, now=1001.0) is None  # body swapped
    for garbage in ("", ".", "x" * 3000, "a.b", "\x00.\xff", body + "."):
        assert selflink.verify(keyed, garbage, now=1001.0) is None
    assert selflink.offer(settings, "slack", "U0EVE") is None  # no key to sign with: nothing offered


async def test_self_link_page_links_the_account_to_the_signed_in_person(client, settings, store) -> None:
    """The address a room's refusal offered: signed in, a person confirms and the account is theirs;
    an expired or forged address changes nothing; a confirmation without CSRF is refused."""
    from warroom import selflink

    keyed = settings.model_copy(update={"api_token": SecretStr("t0ken")})
    store.accounts.put("eve@example.com", name="Eve", password="eve-password-1", admin=False, now=datetime.now(UTC))
    token = selflink.offer(keyed, "slack", "U0EVE").split("?t=", 1)[1]  # type: ignore[union-attr]
    app = create_app(keyed, client=client, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        first = await http.get(f"/users/self-link?t={token}")
        assert first.status_code == 303 and first.headers["location"].startswith("/signin")  # who are you?
        await http.get("/signin")
        r = await http.post("/signin", data={"csrf": http.cookies[session.PRE_COOKIE], "email": "eve@example.com",
                                             "password": "eve-password-1"})  # fmt: skip
        assert r.status_code == 303
        page = await http.get(f"/users/self-link?t={token}")
        assert page.status_code == 200 and "U0EVE" in page.text and "eve@example.com" in page.text
        assert store.links.list("slack") == []  # looking changes nothing
        assert (await http.get("/users/self-link?t=forged.token")).status_code == 410
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        refused = await http.post("/users/self-link", data={"csrf": "wrong", "t": token})
        assert refused.status_code == 303 and store.links.list("slack") == []
        done = await http.post("/users/self-link", data={"csrf": csrf, "t": unquote(token)})
        assert done.status_code == 303 and done.headers["location"] == "/users"
    assert [(u.email, u.im_user_id, u.method) for u in store.links.list("slack")] == [
        ("eve@example.com", "U0EVE", "self-link")
    ]
