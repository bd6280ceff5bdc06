"""A fake OpenAI-compatible server for the real `openai` client: chat completions (plain and
streamed as server-sent events, with usage), embeddings and the model list.

- Records every request (`fake.requests`: path, headers, JSON body) so tests can check what left
  for the model: quoting of the chat, redaction, token budgets.
- Scripted answers: `fake.queue(Reply(...), ...)` answers the next calls in order (faults too:
  any status, a Retry-After, a delay); otherwise `fake.answer(body)` — replaceable per test —
  writes a deterministic answer that cites the first ids it finds in the prompt, and a review with
  every section when the system prompt asks for one.
- Embeddings are deterministic hashed bags of words (so similar texts are close).

Served by uvicorn on 127.0.0.1 (a free port) through `running_fake_openai()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.serving import serving

API_KEY = "sk-fake-openai-test-key-0123456789"
MODEL = "fake-gpt"
CITE = re.compile(r"\[((?:T|M|R):[^\]\s]+)\]")


@dataclass
class Reply:
    text: str = ""
    status: int = 200
    retry_after: float | None = None
    delay: float = 0.0
    error: str = ""
    broken_after: int | None = None  # streamed: after this many chunks, a garbled one, then the end


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def system(self) -> str:
        return next((m["content"] for m in self.body.get("messages", []) if m["role"] == "system"), "")

    @property
    def user(self) -> str:
        return "\n".join(m["content"] for m in self.body.get("messages", []) if m["role"] == "user")


@dataclass
class FakeOpenAI:
    api_key: str = API_KEY
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    replies: deque[Reply] = field(default_factory=deque)
    answer: Callable[[Recorded], str] | None = None
    chunk_delay: float = 0.0  # seconds between streamed chunks of 16 characters (a model's pace)

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def chats(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # ------------------------------------------------------------------ default answers
    @staticmethod
    def default_answer(req: Recorded) -> str:
        ids = list(dict.fromkeys(CITE.findall(req.user)))
        t = next((i for i in ids if i.startswith("T:")), None)
        m = next((i for i in ids if i.startswith("M:")), None)
        cite = " ".join(f"[{x}]" for x in (t, m) if x)
        if "post-incident review" in req.system:
            sections = (
                "Summary",
                "Impact",
                "Timeline",
                "Root cause",
                "Key decisions",
                "Action items",
                "Lessons learned",
            )
            return "\n\n".join(f"## {s}\n\n- Model-written {s.lower()} {cite}" for s in sections)
        if "impact assessment" in req.system:
            return f"- Model impact: see the facts {cite}"
        if "why the runbook" in req.system:
            r = next((i for i in ids if i.startswith("R:")), "R:unknown")
            return f"Model summary of the runbook [{r}]."
        return f"Model answer: the incident is being handled {cite}".strip()

    # ------------------------------------------------------------------ the app
    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    def _auth(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse(
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
                status_code=401,
            )
        return None

    async def _record(self, request: Request) -> Recorded:
        body = json.loads(await request.body() or b"{}")
        rec = Recorded(path=request.url.path, headers={k.lower(): v for k, v in request.headers.items()}, body=body)
        self.requests.append(rec)
        return rec

    async def _chat(self, request: Request) -> Response:
        rec = await self._record(request)
        if (denied := self._auth(request)) is not None:
            return denied
        reply = self.replies.popleft() if self.replies else Reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            headers = {"retry-after": f"{reply.retry_after:g}"} if reply.retry_after is not None else {}
            kind = "rate_limit_exceeded" if reply.status == 429 else "server_error"
            return JSONResponse(
                {"error": {"message": reply.error or f"scripted {reply.status}", "type": kind, "code": kind}},
                status_code=reply.status,
                headers=headers,
            )
        text = reply.text or (self.answer or self.default_answer)(rec)
        prompt_tokens = sum(len(m.get("content", "")) for m in rec.body.get("messages", [])) // 4
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text) // 4,
            "total_tokens": prompt_tokens + len(text) // 4,
        }
        created = int(time.time())
        cid = "chatcmpl-" + hashlib.sha1(f"{len(self.requests)}".encode()).hexdigest()[:12]
        if rec.body.get("stream"):
            stream = self._stream(cid, created, text, usage, rec.body, reply.broken_after)
            return StreamingResponse(stream, media_type="text/event-stream")
        if self.chunk_delay:  # the whole answer, after the time a model takes to write it
            await asyncio.sleep(self.chunk_delay * (len(text) // 16 + 1))
        return JSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": rec.body.get("model", MODEL),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage,
            }
        )

    async def _stream(
        self, cid: str, created: int, text: str, usage: dict, body: dict, broken_after: int | None = None
    ) -> AsyncIterator[bytes]:
        model = body.get("model", MODEL)
        parts = [text[i : i + 16] for i in range(0, len(text), 16)] or [""]

        def chunk(delta: dict, finish: str | None = None, **extra: Any) -> bytes:
            payload = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            } | extra
            return f"data: {json.dumps(payload)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""})
        for n, p in enumerate(parts):
            if n == broken_after:
                yield b'data: {"id": "' + cid.encode() + b'", "choices": [{"delta": {"content\n\n'
                return
            yield chunk({"content": p})
            await asyncio.sleep(self.chunk_delay)
        yield chunk({}, "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            payload = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            yield f"data: {json.dumps(payload)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    async def _embeddings(self, request: Request) -> Response:
        rec = await self._record(request)
        if (denied := self._auth(request)) is not None:
            return denied
        inputs = rec.body.get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else inputs
        data = [{"object": "embedding", "index": i, "embedding": embed(t)} for i, t in enumerate(inputs)]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": rec.body.get("model"),
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            }
        )

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "fake"}]})


def embed(text: str, dim: int = 64) -> list[float]:
    v = [0.0] * dim
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        h = int(hashlib.md5(w.encode()).hexdigest(), 16)
        v[h % dim] += 1.0 if (h >> 8) & 1 else -1.0
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


@contextlib.asynccontextmanager
async def running_fake_openai(fake: FakeOpenAI | None = None) -> AsyncIterator[FakeOpenAI]:
    """Serve a FakeOpenAI on 127.0.0.1 for the block; `fake.url` is the base URL (…/v1)."""
    fake = fake or FakeOpenAI()
    async with serving(fake.app, lifespan="off", log_level="critical") as url:
        fake.url = f"{url}/v1"
        yield fake
