"""The web console (issue 18): server-rendered pages on the API's own FastAPI app.

`install(app)` adds the pages (pages.py), their actions (actions.py), sign-in (auth.py, oidc.py),
live updates (live.py) and the console's static files; a page that needs a signed-in person and
has none redirects to /signin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

from starters.console import actions, auth, live, oidc, pages
from starters.console.render import HEADERS

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}


def install(app: FastAPI) -> None:
    @app.exception_handler(auth.SignInNeeded)
    async def _signin(request: Request, _: auth.SignInNeeded) -> Response:
        return auth.signin_redirect(request)

    @app.get("/console/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in ASSETS:
            return Response("not found", status_code=404, media_type="text/plain")
        body = (STATIC / name).read_bytes()
        return Response(body, media_type=ASSETS[name], headers={**HEADERS, "cache-control": "max-age=300"})

    for router in (auth.router, oidc.router, live.router, pages.router, actions.router):
        app.include_router(router)
