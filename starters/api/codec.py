"""Temporal's codec server protocol, so Temporal UI and `temporal` CLI can show decrypted payloads.

`POST /codec/decode` and `POST /codec/encode` (also `/codec/{namespace}/decode|encode`: only the
last path segment counts) take and answer `{"payloads": [...]}` in protobuf JSON (metadata values
and data base64). Undecodable input answers 400. With WARROOM_API_TOKEN set, callers present it:

- the CLI: `temporal workflow show -w incident-<id> --codec-endpoint http://<api>/codec
  --codec-auth "Bearer $WARROOM_API_TOKEN"`;
- a browser (Temporal UI): open `http://<api>/codec/session` once and enter the token; the API sets
  an HttpOnly cookie that the UI sends along when its codec endpoint is configured with
  "include cross-origin credentials" (`TEMPORAL_CODEC_INCLUDE_CREDENTIALS=true`).

CORS answers only the origins in WARROOM_CODEC_CORS_ORIGINS (the Temporal UI's), with credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload

from connection.codec import PayloadKeyError, payload_codec
from starters.api.deps import app_state
from warroom.settings import Settings

router = APIRouter(prefix="/codec", tags=["operations"])
COOKIE = "warroom_codec"
COOKIE_MAX_AGE = 12 * 3600


# Decrypting payloads for whoever asks would undo the encryption: with a key, only for a token.
OPEN_CODEC = (
    "the codec endpoint is off: WARROOM_PAYLOAD_KEY is set but WARROOM_API_TOKEN is not, so it would "
    "decrypt workflow payloads for anyone who can reach the API; set WARROOM_API_TOKEN"
)


def _origins(settings: Settings) -> set[str]:
    return {o.strip().rstrip("/") for o in settings.codec_cors_origins.split(",") if o.strip()}


def _cors(request: Request, response: Response) -> Response:
    origin = request.headers.get("origin", "")
    if origin and origin.rstrip("/") in _origins(app_state(request).settings):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, X-Namespace, Authorization"
        response.headers["Access-Control-Max-Age"] = "600"
    response.headers["Vary"] = "Origin"
    return response


def _session_value(token: str) -> str:
    """What the cookie holds: derived from the token, so the browser never stores the token itself."""
    return hmac.new(token.encode(), b"warroom codec session", hashlib.sha256).hexdigest()


def _authorized(request: Request) -> bool:
    token = app_state(request).settings.api_token.get_secret_value()
    if not token:
        return True
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
        return True
    cookie = request.cookies.get(COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), _session_value(token).encode())


def _error(request: Request, status: int, code: str, message: str) -> Response:
    return _cors(request, JSONResponse({"error": {"code": code, "message": message}}, status_code=status))


@router.get("/session", response_class=HTMLResponse, include_in_schema=False)
async def session_page(request: Request) -> HTMLResponse:
    return HTMLResponse(_SESSION_PAGE.format(message=""))


@router.post("/session", response_class=HTMLResponse, include_in_schema=False)
async def session_login(request: Request) -> HTMLResponse:
    """Trade the API token for an HttpOnly cookie the Temporal UI's codec requests carry."""
    settings = app_state(request).settings
    token = settings.api_token.get_secret_value()
    given = (parse_qs((await request.body()).decode(errors="replace")).get("token") or [""])[0].strip()
    if token and not hmac.compare_digest(given.encode(), token.encode()):
        return HTMLResponse(_SESSION_PAGE.format(message="<p class=bad>That is not the API token.</p>"), 401)
    page = HTMLResponse(_SESSION_PAGE.format(message="<p>Done: Temporal UI in this browser can decode payloads.</p>"))
    if token:
        secure = settings.public_url.startswith("https://")
        page.set_cookie(
            COOKIE,
            _session_value(token),
            max_age=COOKIE_MAX_AGE,
            path="/codec",
            httponly=True,
            secure=secure,
            samesite="none" if secure else "lax",  # plain http: UI and API on one host (same site)
        )
    return page


@router.options("/{path:path}", include_in_schema=False)
async def preflight(path: str, request: Request) -> Response:
    return _cors(request, Response(status_code=204))


@router.post("/{path:path}")
async def codec(path: str, request: Request) -> Response:
    """Decode or encode payloads (Temporal codec server protocol)."""
    op = path.rstrip("/").rsplit("/", 1)[-1]
    if op not in ("decode", "encode"):
        return _error(request, 404, "not_found", "POST …/codec/decode or …/codec/encode")
    settings = app_state(request).settings
    if settings.payload_key.get_secret_value() and not settings.api_token.get_secret_value():
        return _error(request, 403, "codec_disabled", OPEN_CODEC)
    if not _authorized(request):
        return _error(
            request, 401, "unauthorized", "send `Authorization: Bearer <API token>` or sign in at /codec/session"
        )
    try:
        body = json.loads(await request.body() or b"{}")
        payloads = [json_format.ParseDict(p, Payload()) for p in body.get("payloads") or []]
    except (ValueError, AttributeError, TypeError, json_format.ParseError) as e:
        return _error(request, 400, "invalid", f"not a Payloads JSON body: {e}")
    try:
        codec_ = payload_codec(app_state(request).settings)
        if codec_ is not None:
            payloads = await (codec_.decode(payloads) if op == "decode" else codec_.encode(payloads))
    except PayloadKeyError as e:
        return _error(request, 400, "undecodable", str(e))
    out = {"payloads": [json_format.MessageToDict(p) for p in payloads]}
    return _cors(request, JSONResponse(out))


_SESSION_PAGE = """<!doctype html><html><head><meta charset=utf-8><title>War Room: decode payloads</title>
<style>body{{font:15px system-ui;max-width:32em;margin:3em auto}}.bad{{color:#b00}}</style></head><body>
<h1>Decode payloads in Temporal UI</h1>
<p>Enter the War Room API token. This browser then gets a cookie for this API's <code>/codec</code>
endpoint, valid 12 hours, and Temporal UI (with its codec endpoint set to this API's
<code>/codec</code> and "include cross-origin credentials") shows decrypted payloads.</p>
{message}<form method=post><input type=password name=token autocomplete=off autofocus>
<button>Sign in</button></form></body></html>"""
