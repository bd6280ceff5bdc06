"""Starting a console session once someone proved who they are (password, token or OIDC)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from starters.api import session
from starters.api.deps import app_state


def safe_next(next_url: str) -> str:
    """Only a path on this site (never `//evil.example` or `https://…`): no open redirect."""
    return next_url if next_url.startswith("/") and not next_url.startswith("//") and "\\" not in next_url else "/"


def start_session(request: Request, email: str, name: str, *, admin: bool, via: str, next_url: str) -> Response:
    settings = app_state(request).settings
    _, value = session.issue(settings, email, name, admin=admin, via=via)
    response = RedirectResponse(safe_next(next_url), status_code=303)
    response.set_cookie(
        session.COOKIE, value, max_age=int(settings.session_hours * 3600), **session.cookie_options(settings)
    )
    response.delete_cookie(session.PRE_COOKIE, path="/")
    return response
