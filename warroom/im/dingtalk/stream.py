"""DingTalk Stream mode: the long connection `warroom api` holds instead of a public callback URL.

dingtalk-stream supplies the protocol: the frames (`CallbackMessage`, `AckMessage`), the callback
handlers and their acks, and `route_message` (system frames, callbacks, acks on the socket). Its
own `start()` loop is not used: it opens connections with blocking `requests` on the event loop,
waits a flat 10 s after any failure and hides why. Here the connection is opened with httpx
(`POST {DINGTALK_API_BASE_URL}/v1.0/gateway/connections/open`, a fresh ticket each time), kept
with websockets, and re-opened with exponential backoff (1 s doubling to 60 s, jittered; reset
once a connection has delivered), and at once on the gateway's `disconnect` frame.

Every frame is acked. An event is acked 200 only after it was handed to War Room (`deliver`, a
durable Temporal signal); when that fails the ack is 500 and DingTalk delivers the frame again.
A redelivered frame (same `messageId`) or robot message (same `msgId`) is acked again without
being delivered twice. The SDK's `CardReplier` is not used (random card ids, swallowed errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from warroom.errors import CallbackRejected
from warroom.im import values
from warroom.im.base import Deliver, InboundEvent
from warroom.im.dingtalk.callbacks import Seen, card_click, robot_message

log = logging.getLogger("warroom.im.dingtalk.stream")
ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"
OPEN_PATH = "/v1.0/gateway/connections/open"
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
DEDUP_SECONDS = 3600.0


@dataclass
class StreamStatus:
    state: str = "idle"  # idle, connecting, connected, backoff, stopped
    since: float = field(default_factory=time.time)
    connects: int = 0
    frames: int = 0
    last_error: str = ""

    def set(self, state: str, error: str = "") -> None:
        self.state, self.since = state, time.time()
        if error:
            self.last_error = error


class StreamConnection:
    """One app's Stream connection. `run(deliver)` holds it until cancelled."""

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        api_base_url: str,
        chat_of: Callable[[str], str | None] = lambda _: None,
        timeout: float = 10.0,
        backoff_first: float = BACKOFF_FIRST,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self.app_key = app_key
        self._secret = app_secret
        self.api_base_url = api_base_url.rstrip("/")
        self.chat_of = chat_of
        self.timeout = timeout
        self.backoff_first, self.backoff_max = backoff_first, backoff_max
        self.status = StreamStatus()
        self._frames = Seen(ttl=DEDUP_SECONDS)
        self._messages = Seen(ttl=DEDUP_SECONDS)
        self._deliver: Deliver | None = None

    # ------------------------------------------------------------------ the SDK's client, our handlers
    def _client(self) -> Any:
        from dingtalk_stream import CallbackHandler, Credential, DingTalkStreamClient
        from dingtalk_stream.frames import AckMessage

        connection = self

        class _Handler(CallbackHandler):
            def __init__(self, topic: str) -> None:
                super().__init__()
                self.topic = topic

            async def process(self, message: Any) -> tuple[int, Any]:
                try:
                    return await connection._handle(self.topic, message.headers.message_id, message.data)
                except CallbackRejected as e:
                    log.warning("dingtalk stream: refused a %s frame: %s", self.topic, e.reason)
                    return AckMessage.STATUS_BAD_REQUEST, {"error": e.reason}
                except Exception as e:  # not delivered: DingTalk sends the frame again
                    log.warning("dingtalk stream: could not deliver a %s frame: %s", self.topic, e)
                    return AckMessage.STATUS_SYSTEM_EXCEPTION, {"error": "not delivered, send again"}

        client = DingTalkStreamClient(Credential(self.app_key, self._secret), logger=log)
        client.register_callback_handler(ROBOT_TOPIC, _Handler(ROBOT_TOPIC))
        client.register_callback_handler(CARD_TOPIC, _Handler(CARD_TOPIC))
        client.pre_start()
        return client

    async def _handle(self, topic: str, frame_id: str, data: Any) -> tuple[int, Any]:
        if not frame_id or not self._frames.first_time(f"{topic}:{frame_id}"):
            return 200, {}  # the same frame again: it was delivered (or refused) the first time
        try:
            if topic == ROBOT_TOPIC:
                event: InboundEvent | None = robot_message(data)
                if event is not None and not self._messages.first_time(event.message_id):
                    return 200, {}
            else:
                event = card_click(data, frame_id=frame_id, chat_of=self.chat_of)
            if event is not None and self._deliver is not None:
                await self._deliver([event])
        except BaseException:
            self._frames.forget(f"{topic}:{frame_id}")
            if topic == ROBOT_TOPIC and isinstance(data, dict):
                self._messages.forget(str(data.get("msgId")))
            raise
        return 200, {}

    # ------------------------------------------------------------------ the connection
    async def open(self) -> dict[str, Any]:
        """A fresh endpoint and ticket from the gateway."""
        from dingtalk_stream.version import VERSION_STRING

        body = {
            "clientId": self.app_key,
            "clientSecret": self._secret,
            "subscriptions": [{"type": "CALLBACK", "topic": t} for t in (ROBOT_TOPIC, CARD_TOPIC)],
            "ua": f"warroom dingtalk-stream/{VERSION_STRING}",
            "localIp": "",
        }
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            r = await http.post(self.api_base_url + OPEN_PATH, json=body)
        if r.status_code != 200:
            raise ConnectionError(f"the Stream gateway answered HTTP {r.status_code}: {r.text[:200]}")
        data = r.json()
        if not isinstance(data, dict) or not data.get("endpoint") or not data.get("ticket"):
            raise ConnectionError("the Stream gateway's answer has no endpoint and ticket")
        return data

    async def run(self, deliver: Deliver) -> None:
        """Connect, serve, reconnect; until cancelled."""
        import websockets

        self._deliver = deliver
        client = self._client()
        backoff = self.backoff_first
        try:
            while True:
                self.status.set("connecting")
                delivered = False
                try:
                    ticket = await self.open()
                    uri = f"{ticket['endpoint']}?ticket={urllib.parse.quote_plus(str(ticket['ticket']))}"
                    async with websockets.connect(uri, open_timeout=self.timeout, max_size=2**22) as ws:
                        client.websocket = ws
                        self.status.connects += 1
                        self.status.set("connected")
                        log.info("dingtalk stream connected (%s)", ticket["endpoint"])
                        delivered = await self._serve(client, ws)
                    if delivered is None:  # the gateway asked us to reconnect: at once
                        backoff = self.backoff_first
                        continue
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    self.status.set("backoff", f"{type(e).__name__}: {e}"[:300])
                    log.warning("dingtalk stream: %s; reconnecting in %.1f s", self.status.last_error, backoff)
                else:
                    self.status.set("backoff", "the connection closed")
                if delivered:
                    backoff = self.backoff_first
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.backoff_max)
        finally:
            self.status.set("stopped")

    async def _serve(self, client: Any, ws: Any) -> bool | None:
        """Serve frames until the socket closes: True if any frame came, None on `disconnect`."""
        got = False
        tasks: set[asyncio.Task[Any]] = set()
        async for raw in ws:
            got = True
            self.status.frames += 1
            try:
                frame = values.loads(raw)
                if not isinstance(frame, dict):
                    raise ValueError("not an object")
            except ValueError:
                log.warning("dingtalk stream: an unreadable frame was dropped")
                continue
            if frame.get("type") == "SYSTEM" and (frame.get("headers") or {}).get("topic") == "disconnect":
                await client.route_message(frame)  # acked
                return None
            task = asyncio.create_task(self._route(client, ws, frame))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return got

    async def _route(self, client: Any, ws: Any, frame: dict[str, Any]) -> None:
        try:
            data = frame.get("data")
            if isinstance(data, str) and data:
                values.loads(data)  # strict JSON first: the SDK's parser takes NaN and lone surrogates
            await client.route_message(frame)
        except Exception as e:  # not strict JSON, or the SDK could not parse it (`data` not JSON…): refuse it, once
            message_id = str((frame.get("headers") or {}).get("messageId") or "")
            log.warning("dingtalk stream: refused a malformed frame %s: %s", message_id, e)
            ack = {"code": 400, "headers": {"messageId": message_id, "contentType": "application/json"},
                   "message": "malformed", "data": "{}"}  # fmt: skip
            with contextlib.suppress(Exception):
                await ws.send(json.dumps(ack))
