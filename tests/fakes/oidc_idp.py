"""A fake OpenID Connect provider that speaks the protocol strictly, for the console's real
Authlib client: discovery, an authorization endpoint with a "who are you" form, a token endpoint
that checks the client, the redirect URI, the single-use code and its PKCE S256 verifier, and
the RS256 ID token (iss, aud, nonce, exp, email, email_verified) with its JWKS.

Refusals answer as RFC 6749 says (`invalid_grant`, `invalid_client`, `invalid_request`); every
refusal is kept in `refusals` so a test can see what the client got wrong.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    email: str
    verified: bool
    expires: float


@dataclass
class FakeIdp:
    client_id: str = "warroom-console"
    client_secret: str = "idp-secret"
    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "idp-1"}))
    grants: dict[str, Grant] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    extra_claims: dict[str, dict[str, Any]] = field(default_factory=dict)  # by email: more ID-token claims

    def app(self) -> FastAPI:
        app = FastAPI()
        idp = self

        def refuse(error: str, why: str, status: int = 400) -> JSONResponse:
            idp.refusals.append(f"{error}: {why}")
            return JSONResponse({"error": error, "error_description": why}, status_code=status)

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": idp.issuer,
                "authorization_endpoint": f"{idp.issuer}/authorize",
                "token_endpoint": f"{idp.issuer}/token",
                "jwks_uri": f"{idp.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            return KeySet([idp.key]).as_dict(private=False)

        @app.get("/authorize")
        async def authorize(request: Request) -> Response:
            q = request.query_params
            problems = [
                p
                for p, bad in (
                    ("response_type must be code", q.get("response_type") != "code"),
                    ("unknown client_id", q.get("client_id") != idp.client_id),
                    ("scope must include openid", "openid" not in (q.get("scope") or "").split()),
                    ("PKCE S256 is required", q.get("code_challenge_method") != "S256" or not q.get("code_challenge")),
                    ("state is required", not q.get("state")),
                    ("nonce is required", not q.get("nonce")),
                )
                if bad
            ]
            if problems:
                idp.refusals.extend(problems)
                return HTMLResponse("; ".join(problems), status_code=400)
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in q.items()
            )
            return HTMLResponse(
                f'<form method="post" action="/authorize">{hidden}'
                '<label>Email <input name="login_email" data-testid="idp-email"></label>'
                '<button data-testid="idp-approve">Approve</button></form>'
            )

        @app.post("/authorize")
        async def approve(request: Request) -> Response:
            f = await request.form()
            code = secrets.token_urlsafe(24)
            idp.grants[code] = Grant(
                client_id=str(f["client_id"]),
                redirect_uri=str(f["redirect_uri"]),
                challenge=str(f["code_challenge"]),
                nonce=str(f["nonce"]),
                email=str(f["login_email"]),
                verified=True,
                expires=time.time() + 60,
            )
            return RedirectResponse(f"{f['redirect_uri']}?{urlencode({'code': code, 'state': f['state']})}", 303)

        @app.post("/token")
        async def token(
            request: Request,
            grant_type: str = Form(""),
            code: str = Form(""),
            redirect_uri: str = Form(""),
            code_verifier: str = Form(""),
            client_id: str = Form(""),
            client_secret: str = Form(""),
        ) -> Response:
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("basic "):
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            if client_id != idp.client_id or client_secret != idp.client_secret:
                return refuse("invalid_client", "client authentication failed", 401)
            if grant_type != "authorization_code":
                return refuse("unsupported_grant_type", grant_type)
            grant = idp.grants.pop(code, None)  # single use
            if grant is None or grant.expires < time.time():
                return refuse("invalid_grant", "unknown, used or expired code")
            if redirect_uri != grant.redirect_uri:
                return refuse("invalid_grant", "redirect_uri differs from the authorization request")
            digest = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
            if not code_verifier or digest != grant.challenge:
                return refuse("invalid_grant", "PKCE verification failed")
            now = int(time.time())
            claims = {
                "iss": idp.issuer,
                "sub": hashlib.sha256(grant.email.encode()).hexdigest()[:16],
                "aud": idp.client_id,
                "iat": now,
                "exp": now + 300,
                "nonce": grant.nonce,
                "email": grant.email,
                "email_verified": grant.verified,
                "name": grant.email.split("@")[0].title(),
                **idp.extra_claims.get(grant.email.lower(), {}),
            }
            id_token = jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, idp.key)
            return JSONResponse(
                {
                    "access_token": secrets.token_urlsafe(16),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": id_token,
                }
            )

        return app
