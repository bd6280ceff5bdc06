"""IM callback routes: verify first, then route the events to their incidents' workflows.

The answer goes back as soon as the workflow has been signalled (a signal is durable even with
no worker running), well within the platforms' 3-second windows.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from temporalio.service import RPCError, RPCStatusCode

from starters.api.deps import AppState, app_state
from starters.api.errors import ApiError
from warroom.errors import CallbackRejected, ImError
from warroom.im import values
from warroom.im.base import CallbackRequest, CallbackResult, ImAdapter, InboundEvent
from warroom.im.plugins import get_plugin
from warroom.telemetry.metrics import platform_label

router = APIRouter(tags=["im callbacks"])
audit = logging.getLogger("warroom.audit")
log = logging.getLogger("warroom.api")


def _refused(state: AppState, platform: str, req: CallbackRequest, peer: str, e: CallbackRejected) -> ApiError:
    state.metrics.callbacks_refused.labels(platform_label(platform), e.code).inc()
    audit.warning("rejected %s callback %s from %s (%s): %s", platform, req.path, peer or "?", e.code, e.reason)
    return ApiError(e.status, "rejected" if e.status < 404 else e.code, e.reason)


async def process_callback(state: AppState, platform: str, req: CallbackRequest, *, peer: str = "") -> CallbackResult:
    """Verify and parse (the adapter, on the raw bytes), then deliver. Anything refused is one log
    line and one count by reason, never a traceback: callbacks come from the internet."""
    try:
        adapter = state.adapter(platform)
    except ImError as e:
        raise _refused(state, platform, req, peer, CallbackRejected(str(e), status=404)) from None
    try:
        result = adapter.handle_callback(req)
        values.check_strings([event.model_dump() for event in result.events])  # whatever the plugin's parser
    except CallbackRejected as e:
        raise _refused(state, platform, req, peer, e) from None
    except Exception as e:  # a parser's blind spot (a list where a string belongs, an overflow…)
        why = f"malformed callback ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else '-'})"
        raise _refused(state, platform, req, peer, CallbackRejected(why[:300], status=400, code="unparsable")) from None
    if not result.events:  # URL verification, or nothing to act on: answer without Temporal
        return result
    claims = state.store.callback_claims
    if result.replay_key and not await asyncio.to_thread(claims.claim, platform, result.replay_key):
        state.metrics.callbacks_refused.labels(platform_label(platform), "replayed").inc()
        audit.warning("dropped %s callback %s from %s (replayed): already taken", platform, req.path, peer or "?")
        return result.model_copy(update={"events": []})  # the same answer, and nothing done again
    try:
        await deliver_events(state, platform, result.events)
    except RPCError:
        if result.replay_key:  # the platform's retry of this very request must go through
            await asyncio.to_thread(claims.release, platform, result.replay_key)
        raise  # Temporal is unreachable: 503, and the platform delivers it again later
    return result


async def deliver_events(state: AppState, platform: str, events: list[InboundEvent]) -> None:
    """Signal each event's incident workflow; raises (RPCError) while Temporal is unreachable, so
    the platform delivers the events again later (a 503, or a long connection's failed ack)."""
    svc = await state.service()
    for event in events:  # one at a time: one undeliverable event must not drop the rest
        try:
            problems = await svc.dispatch(platform, [event])
        except RPCError as e:
            if e.status is not RPCStatusCode.NOT_FOUND:
                raise
            # the incident's workflow has finished (its room was dismissed): a late or replayed
            # click has nothing left to act on, and a 5xx would only make the platform retry
            problems = [f"chat {event.chat_id}: the incident's workflow has finished ({e.message})"]
        for p in problems:
            audit.info("ignored %s event %s: %s", platform, event.event_id, p)


async def hold_connections(state: AppState) -> list[asyncio.Task[None]]:
    """Open the long connections of the configured platforms that receive events over one
    (`PlatformPlugin.long_connection`: DingTalk's Stream mode); cancel the tasks to close them."""
    tasks = []
    for platform in state.settings.configured_platforms():
        if not get_plugin(platform).long_connection:
            continue
        try:
            adapter = state.adapter(platform)
        except ImError as e:
            log.warning("%s: no long connection: %s", platform, e)
            continue
        tasks.append(asyncio.create_task(_listen(platform, adapter, state), name=f"{platform}-connection"))
    return tasks


async def _listen(platform: str, adapter: ImAdapter, state: AppState) -> None:
    async def deliver(events: list[InboundEvent]) -> None:
        await deliver_events(state, platform, events)

    try:
        await adapter.listen(deliver)
    except asyncio.CancelledError:
        raise
    except Exception:  # a bug in the platform's loop: say so once, the API keeps serving
        log.exception("%s: the long connection stopped", platform)


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
