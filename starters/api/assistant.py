"""The assistant's routes: the post-incident review, and the runbooks added through the API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from starters.api.deps import app_state, service
from starters.api.errors import ApiError
from starters.service import WarRoomService
from warroom.ai.runbooks import NAME, knowledge_base
from warroom.models import Source
from warroom.store.reviews import StoredReview

router = APIRouter(tags=["assistant"])
Svc = Annotated[WarRoomService, Depends(service)]


def review_json(r: StoredReview) -> dict[str, Any]:
    return {
        "incident_id": r.incident_id,
        "version": r.version,
        "markdown": r.markdown,
        "generated_at": r.generated_at.isoformat(),
        "generator": r.generator,
        "requested_by": r.requested_by,
        "citations": [c.model_dump(mode="json") for c in r.citations],
    }


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    actor: str | None = Field(None, min_length=1, max_length=320)


def _markdown_wanted(request: Request, fmt: str | None) -> bool:
    return fmt in ("md", "markdown") or "text/markdown" in request.headers.get("accept", "")


@router.get("/incidents/{incident_id}/review", response_model=None)
async def get_review(incident_id: str, request: Request, format: str | None = None) -> dict[str, Any] | Response:
    """The newest review: `{markdown, generated_at, citations, …}`; 404 before one exists.
    `?format=markdown` (or `Accept: text/markdown`) answers the Markdown itself."""
    store = app_state(request).store
    await asyncio.to_thread(store.incidents.get, incident_id)  # 404 for an unknown incident
    review = await asyncio.to_thread(store.reviews.latest, incident_id)
    if review is None:
        raise ApiError(404, "not_found", f"incident {incident_id!r} has no review yet; POST this route to generate one")
    if _markdown_wanted(request, format):
        return PlainTextResponse(review.markdown, media_type="text/markdown; charset=utf-8")
    return review_json(review)


@router.post("/incidents/{incident_id}/review", response_model=None)
async def generate_review(
    incident_id: str, request: Request, response: Response, svc: Svc, body: ReviewIn | None = None
) -> dict[str, Any]:
    """(Re)generate the review: 200 with it once stored, 202 while it is still being written."""
    state = app_state(request)
    await asyncio.to_thread(state.store.incidents.get, incident_id)
    actor = (body.actor if body else None) or request.headers.get("x-warroom-actor", "").strip() or "system"
    given = request.headers.get("x-warroom-source", "api")
    source = Source(given) if given in ("api", "cli", "web") else Source.API
    out = await svc.generate_review(incident_id, actor=actor[:320], source=source)
    if not out.done or out.value is None:
        response.status_code = 202
        return {"status": "generating", "incident_id": incident_id}
    review = await asyncio.to_thread(state.store.reviews.latest, incident_id)
    assert review is not None
    return review_json(review)


class RunbookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    markdown: str = Field(min_length=1, max_length=200_000)


def _name(name: str) -> str:
    name = name.lower()
    if not NAME.match(name):
        raise ApiError(422, "invalid", "a runbook name is 1-100 lowercase letters, digits, '-' or '_'")
    return name


@router.get("/runbooks")
async def list_runbooks(request: Request) -> dict[str, Any]:
    state = app_state(request)
    books = await asyncio.to_thread(knowledge_base, state.settings.runbooks_dir, state.store.runbooks.all())
    return {
        "items": [
            {
                "name": b.name,
                "title": b.title,
                "keywords": b.keywords,
                "services": b.services,
                "url": b.url,
                "source": b.source,
            }
            for b in books
        ]
    }


@router.get("/runbooks/{name}", response_class=PlainTextResponse)
async def get_runbook(name: str, request: Request) -> PlainTextResponse:
    """The runbook's Markdown (what the assistant links to in the room)."""
    state = app_state(request)
    books = await asyncio.to_thread(knowledge_base, state.settings.runbooks_dir, state.store.runbooks.all())
    found = next((b for b in books if b.name == name.lower()), None)
    if found is None:
        raise ApiError(404, "not_found", f"no runbook {name!r}")
    return PlainTextResponse(found.markdown, media_type="text/markdown; charset=utf-8")


@router.put("/runbooks/{name}")
async def put_runbook(name: str, body: RunbookIn, request: Request, response: Response) -> dict[str, Any]:
    state = app_state(request)
    created = await asyncio.to_thread(state.store.runbooks.put, _name(name), body.markdown, datetime.now(UTC))
    response.status_code = 201 if created else 200
    return {"name": _name(name), "created": created}


@router.delete("/runbooks/{name}", status_code=204)
async def delete_runbook(name: str, request: Request) -> Response:
    if not await asyncio.to_thread(app_state(request).store.runbooks.delete, _name(name)):
        raise ApiError(404, "not_found", f"no runbook {name!r} was added through the API")
    return Response(status_code=204)
