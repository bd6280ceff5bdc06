"""Rendering console pages: Jinja templates (autoescaped), Markdown, and the headers of every page.

Pages run only the console's own files (no inline script or style, nothing from elsewhere), so
a title or chat message that smuggles markup in is shown as text and could not run if it did.
Markdown (reviews, runbooks) goes through markdown-it with raw HTML off and unsafe link schemes
(javascript:, data:) refused.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

TEMPLATES = Path(__file__).resolve().parent / "templates"
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
_md = MarkdownIt("js-default", {"linkify": False}).enable("table")


def markdown(text: str) -> Markup:
    return Markup(_md.render(text or ""))


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """`3m`, `2h 5m`, `4d`: how long ago, for lists read at a glance."""
    if when is None:
        return ""
    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h {minutes % 60}m" if minutes % 60 else f"{hours}h"
    return f"{hours // 24}d"


def clock(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if when else ""


def minutes_label(minutes: int) -> str:
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
env.filters.update(markdown=markdown, ago=ago, clock=clock, minutes=minutes_label)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A full page (or, for the live updater, the same page: it swaps the regions that changed)."""
    who = getattr(request.state, "who", None)
    flash = request.cookies.get("warroom_flash")
    html = env.get_template(template).render({"request": request, "who": who, "flash": _flash(flash), **context})
    response = HTMLResponse(html, status_code=status, headers=HEADERS)
    if flash:
        response.delete_cookie("warroom_flash", path="/")
    return response


def flash(response: Response, kind: str, text: str) -> Response:
    """A one-time message for the next page (what an action did, or why it was refused)."""
    value = base64.urlsafe_b64encode(f"{kind}:{text[:500]}".encode()).decode()
    response.set_cookie("warroom_flash", value, max_age=60, httponly=True, samesite="lax", path="/")
    return response


def _flash(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    try:
        kind, _, text = base64.urlsafe_b64decode(value.encode()).decode().partition(":")
    except ValueError:
        return None
    return {"kind": kind if kind in ("ok", "error") else "ok", "text": text[:500]}
