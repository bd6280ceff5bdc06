"""Sign-in with OpenID Connect: authorization code with PKCE (S256), through Authlib's OAuth 2
client, and the ID token verified with joserfc against the provider's published keys.

The state, nonce and code verifier of a sign-in in progress ride in a short-lived signed cookie
(no server-side table); the callback accepts only the state it issued, the ID token only with
our issuer, audience and nonce, and an email the provider says is verified (when it says).
Any standard provider works: Keycloak, Google, Okta, and the IM platforms' OAuth where they speak
OIDC.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from starters.api import session
from starters.api.deps import app_state
from starters.console.begin import start_session
from warroom.im.plugins import platform_names
from warroom.settings import Settings

log = logging.getLogger("warroom.console")

router = APIRouter(include_in_schema=False)
FLOW_COOKIE = "warroom_oidc"
FLOW_SECONDS = 600
_discovery: dict[str, tuple[float, dict[str, Any]]] = {}


def configured(settings: Settings) -> str:
    """The sign-in button's label when a provider is configured, else ''."""
    return settings.oidc_name if settings.oidc_issuer and settings.oidc_client_id else ""


def _redirect_uri(settings: Settings) -> str:
    return f"{settings.public_url.rstrip('/')}/signin/oidc/callback"


async def _metadata(settings: Settings) -> dict[str, Any]:
    """The provider's discovery document (cached for ten minutes)."""
    issuer = settings.oidc_issuer.rstrip("/")
    cached = _discovery.get(issuer)
    if cached and cached[0] > time.time():
        return cached[1]
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{issuer}/.well-known/openid-configuration")
        r.raise_for_status()
        meta = r.json()
        meta["jwks"] = (await http.get(meta["jwks_uri"])).json()
    _discovery[issuer] = (time.time() + 600, meta)
    return meta


def _sign(settings: Settings, data: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    mac = hmac.new(session._secret(settings), b"oidc:" + body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def _unsign(settings: Settings, value: str) -> dict[str, Any] | None:
    body, _, mac = value.rpartition(".")
    want = hmac.new(session._secret(settings), b"oidc:" + body.encode(), hashlib.sha256).hexdigest()
    if not body or not hmac.compare_digest(mac.encode(), want.encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body.encode()))
    except ValueError:
        return None
    return data if data.get("exp", 0) > time.time() else None


def _client(settings: Settings) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        settings.oidc_client_id,
        settings.oidc_client_secret.get_secret_value() or None,
        scope=settings.oidc_scopes,
        redirect_uri=_redirect_uri(settings),
        code_challenge_method="S256",
        timeout=10,
    )


def _failed(why: str) -> Response:
    from starters.console.render import flash

    return flash(RedirectResponse("/signin", status_code=303), "error", f"Single sign-on failed: {why}")


@router.get("/signin/oidc")
async def start(request: Request, next: str = "/") -> Response:
    settings = app_state(request).settings
    if not configured(settings):
        return _failed("no provider is configured (WARROOM_OIDC_ISSUER, WARROOM_OIDC_CLIENT_ID)")
    try:
        meta = await _metadata(settings)
    except (httpx.HTTPError, KeyError, ValueError) as e:
        return _failed(f"the provider at {settings.oidc_issuer} did not answer its discovery document ({e})")
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    async with _client(settings) as client:
        url, state = client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
    flow = {"state": state, "nonce": nonce, "verifier": verifier, "next": next, "exp": time.time() + FLOW_SECONDS}
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(FLOW_COOKIE, _sign(settings, flow), max_age=FLOW_SECONDS, **session.cookie_options(settings))
    return response


@router.get("/signin/oidc/callback")
async def callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    app = app_state(request)
    settings = app.settings
    flow = _unsign(settings, request.cookies.get(FLOW_COOKIE, ""))
    if error:
        return _failed(f"the provider said {error[:100]!r}")
    if flow is None or not session.same(state, flow["state"]) or not code:
        return _failed("the sign-in expired or did not start here; try again")
    try:
        meta = await _metadata(settings)
        async with _client(settings) as client:
            token = await client.fetch_token(meta["token_endpoint"], code=code, code_verifier=flow["verifier"])
        id_token = jwt.decode(token["id_token"], KeySet.import_key_set(meta["jwks"]))
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": meta.get("issuer", settings.oidc_issuer)},
            aud={"essential": True, "value": settings.oidc_client_id},
            nonce={"essential": True, "value": flow["nonce"]},
            exp={"essential": True},
        ).validate(id_token.claims)
    except (httpx.HTTPError, KeyError, ValueError, JoseError, Exception) as e:
        return _failed(f"the provider's answer did not check out ({type(e).__name__}: {str(e)[:200]})")
    claims = id_token.claims
    email = str(claims.get("email") or "").strip().lower()
    if not email or claims.get("email_verified") is False:
        return _failed("the provider gave no verified email for this person")
    name = str(claims.get("name") or claims.get("preferred_username") or "")[:200]
    account = await asyncio.to_thread(app.store.accounts.ensure, email, name=name, now=datetime.now(UTC))
    await _self_link(app, email, account.name or name, claims)
    admins = {a.strip().lower() for a in settings.oidc_admins.split(",") if a.strip()}
    response = start_session(
        request, email, account.name or name, admin=account.admin or email in admins, via="oidc", next_url=flow["next"]
    )
    response.delete_cookie(FLOW_COOKIE, path="/")
    return response


def im_claims(settings: Settings) -> dict[str, str]:
    """WARROOM_OIDC_IM_CLAIMS as {platform: claim}, installed platforms only."""
    pairs = (item.split("=", 1) for item in settings.oidc_im_claims.split(",") if "=" in item)
    return {p.strip(): c.strip() for p, c in pairs if p.strip() in platform_names() and c.strip()}


async def _self_link(app: Any, email: str, name: str, claims: dict[str, Any]) -> None:
    """Link the person to the IM user ids their provider vouches for, then have their open war
    rooms invite them. Sign-in goes on whatever happens here: the link can be fixed later."""
    for platform, claim in im_claims(app.settings).items():
        value = claims.get(claim)
        if not isinstance(value, str) or not 0 < len(value) <= 200 or not value.isprintable():
            continue
        try:
            await asyncio.to_thread(app.store.links.save, platform, email=email, phone=None, name=name,
                                    im_user_id=value, method="self-link", now=datetime.now(UTC))  # fmt: skip
            await (await app.service()).people_linked(platform, [email])
        except Exception as e:
            log.warning("could not self-link %s on %s at sign-in: %s", email, platform, str(e)[:200])
