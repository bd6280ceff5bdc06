"""IM callback routes: verify first, then route the events to their incidents' workflows.

The answer goes back as soon as the workflow has been signalled (a signal is durable even with
no worker running), well within the platforms' 3-second windows.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from temporalio.service import RPCError, RPCStatusCode

from starters.api.deps import AppState, app_state
from starters.api.errors import ApiError
from warroom.errors import CallbackRejected, ImError
from warroom.im.base import CallbackRequest, CallbackResult

router = APIRouter(tags=["im callbacks"])
audit = logging.getLogger("warroom.audit")


async def process_callback(state: AppState, platform: str, req: CallbackRequest, *, peer: str = "") -> CallbackResult:
    try:
        adapter = state.adapter(platform)
    except ImError as e:
        raise ApiError(404, "unknown_platform", str(e)) from e
    try:
        result = adapter.handle_callback(req)
    except CallbackRejected as e:
        audit.warning("rejected %s callback %s from %s: %s", platform, req.path, peer or "?", e.reason)
        raise ApiError(e.status, "rejected", e.reason) from e
    if not result.events:  # URL verification, or nothing to act on: answer without Temporal
        return result
    svc = await state.service()
    for event in result.events:  # one at a time: one undeliverable event must not drop the rest
        try:
            problems = await svc.dispatch(platform, [event])
        except RPCError as e:
            if e.status is not RPCStatusCode.NOT_FOUND:
                raise  # Temporal is unreachable: 503, and the platform delivers it again later
            # the incident's workflow has finished (its room was dismissed): a late or replayed
            # click has nothing left to act on, and a 5xx would only make the platform retry
            problems = [f"chat {event.chat_id}: the incident's workflow has finished ({e.message})"]
        for p in problems:
            audit.info("ignored %s event %s: %s", platform, event.event_id, p)
    return result


@router.get("/im/{platform}/{kind}", operation_id="im_callback_get")  # URL verification (WeCom)
@router.post("/im/{platform}/{kind}", operation_id="im_callback_post")
async def im_callback(platform: str, kind: str, request: Request) -> Response:
    req = CallbackRequest(
        method=request.method,
        path=request.url.path,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        body=await request.body(),
    )
    peer = request.client.host if request.client else ""
    reply = (await process_callback(app_state(request), platform, req, peer=peer)).reply
    return Response(reply.body, status_code=reply.status, media_type=reply.content_type)
