"""Signing in to the console, and who may do what once in.

Ways in: the WARROOM_API_TOKEN form (the service/admin token, CONTRACT), a local account
(`warroom users add`), and OIDC (oidc.py). While neither a token nor an account is configured the
console is open (a one-person install on a laptop) and acts as `web`, an admin.

The rule for acting is the room's: a responder of the incident (by email) or an admin may act;
anyone else signed in reads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from starters.api import session
from starters.api.deps import AppState, app_state
from starters.api.session import Identity
from starters.console import oidc
from starters.console.begin import safe_next, start_session
from starters.console.render import flash, page
from warroom.models import Incident

router = APIRouter(include_in_schema=False)
OPEN = Identity(email="web", name="web (console is open)", admin=True, via="open")


class SignInNeeded(Exception):
    """Raised by a page that needs a signed-in person; answered with a redirect to /signin."""


async def required(state: AppState) -> bool:
    """Does the console ask who you are? Yes once a token or any account is configured."""
    if state.settings.api_token.get_secret_value():
        return True
    return await asyncio.to_thread(state.store.accounts.any)


async def identify(request: Request) -> Identity:
    """The signed-in person (set on request.state.who), or SignInNeeded."""
    state = app_state(request)
    who = session.read(state.settings, request.cookies.get(session.COOKIE))
    if who is None:
        if await required(state):
            raise SignInNeeded
        who = dataclasses.replace(OPEN, csrf=session.open_csrf(state.settings))
    request.state.who = who
    return who


def can_act(who: Identity, incident: Incident) -> bool:
    if who.admin:
        return True
    mine = who.email.lower()
    return any((r.email or "").lower() == mine for r in incident.responders)


def check_csrf(request: Request, who: Identity, given: str) -> None:
    if not session.same(given, who.csrf):
        raise PermissionError("the form expired or came from another site; reload the page and try again")


def _signin_page(request: Request, error: str = "", status: int = 200, next_url: str = "/") -> Response:
    state = app_state(request)
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "signin.html",
        status,
        csrf=token,
        error=error,
        next_url=next_url,
        token_form=bool(state.settings.api_token.get_secret_value()),
        oidc=oidc.configured(state.settings),
    )
    response.set_cookie(session.PRE_COOKIE, token, max_age=1800, **session.cookie_options(state.settings))
    return response


@router.get("/signin")
async def signin_form(request: Request, next: str = "/") -> Response:
    return _signin_page(request, next_url=safe_next(next))


@router.post("/signin")
async def signin(
    request: Request,
    csrf: str = Form(""),
    token: str = Form("", max_length=1000),
    email: str = Form("", max_length=320),
    password: str = Form("", max_length=1000),
    next: str = Form("/", max_length=2000),
) -> Response:
    state = app_state(request)
    if not session.same(csrf, request.cookies.get(session.PRE_COOKIE, "")):
        return _signin_page(request, "The form expired; please sign in again.", 400, next)
    if token:
        service = state.settings.api_token.get_secret_value()
        if service and session.same(token.strip(), service):
            return start_session(request, "admin", "admin (API token)", admin=True, via="token", next_url=next)
        account = await asyncio.to_thread(state.store.accounts.by_token, token.strip())
        if account:
            return start_session(request, account.email, account.name, admin=account.admin, via="token", next_url=next)
        return _signin_page(request, "That token is not right.", 401, next)
    if email and password:
        account = await asyncio.to_thread(state.store.accounts.check, email, password)
        if account:
            return start_session(
                request, account.email, account.name, admin=account.admin, via="password", next_url=next
            )
        return _signin_page(request, "Wrong email or password.", 401, next)
    return _signin_page(request, "Give the API token, or your email and password.", 400, next)


@router.post("/signout")
async def signout(request: Request, csrf: str = Form("")) -> Response:
    who = await identify(request)
    response = RedirectResponse("/signin", status_code=303)
    if session.same(csrf, who.csrf):
        response.delete_cookie(session.COOKIE, path="/")
        return response
    return flash(RedirectResponse("/", status_code=303), "error", "Sign-out form expired; try again.")


def signin_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


@router.get("/console/session")
async def whoami(request: Request) -> Response:
    """Who is signed in, and the CSRF token the site's own scripts (the sandbox page) send with
    their API calls instead of keeping the API token in the browser's storage."""
    from fastapi.responses import JSONResponse

    try:
        who = await identify(request)
    except SignInNeeded:
        return JSONResponse({"error": {"code": "unauthorized", "message": "not signed in"}}, status_code=401)
    body = {"email": who.email, "name": who.name, "admin": who.admin, "csrf": who.csrf}
    return JSONResponse(body, headers={"cache-control": "no-store"})
