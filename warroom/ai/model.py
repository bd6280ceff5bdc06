"""The model: any OpenAI-compatible server (OpenAI, vLLM, Ollama, DeepSeek, …) through the
`openai` package, with timeouts, bounded retries and typed errors the activities turn into
Temporal retry decisions."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from warroom.errors import WarRoomError
from warroom.settings import Settings

if TYPE_CHECKING:  # imported where used: `openai` takes most of a second to import, and a worker
    import openai  # without a model configured (the default) never needs it
    from openai import AsyncOpenAI


class AiError(WarRoomError):
    pass


class AiTransient(AiError):
    """Worth another try: timeouts, dropped connections, 5xx."""


class AiRateLimited(AiTransient):
    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AiPermanent(AiError):
    """Retrying cannot help: bad key, unknown model, a request the server refuses."""


@dataclass
class Completion:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    streamed: bool = False
    first_text_ms: float = 0.0  # when the first words arrived (streamed), or the whole answer did


OnText = Callable[[str], Awaitable[None]]


def configured(settings: Settings) -> bool:
    return bool(settings.ai_model)


class ModelClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model = settings.ai_model
        self.embedding_model = settings.ai_embedding_model

    def _client(self) -> AsyncOpenAI:
        """A client per call: nothing to close at shutdown, and a call costs seconds anyway."""
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            api_key=self.settings.openai_api_key.get_secret_value() or "not-needed",
            base_url=self.settings.openai_base_url or None,
            timeout=self.settings.ai_timeout_seconds,
            max_retries=self.settings.ai_max_retries,
        )

    async def complete(
        self, messages: list[dict[str, str]], *, max_tokens: int | None = None, on_text: OnText | None = None
    ) -> Completion:
        """The model's answer; streamed (`WARROOM_AI_STREAM`), `on_text` gets the text so far
        after each chunk (it may be slow: chunks wait for it)."""
        import openai

        started = time.perf_counter()
        max_tokens = max_tokens or self.settings.ai_max_answer_tokens
        try:
            async with self._client() as client:
                return await self._complete(client, messages, max_tokens, started, on_text)
        except openai.APIError as e:
            raise _classify(e) from e
        except (httpx.HTTPError, ValueError) as e:
            # A stream cut short or garbled on its way (a proxy, a dropped connection): the openai
            # client lets these through as they are; they are worth another try like a 5xx.
            raise AiTransient(f"model answer broken off: {type(e).__name__}: {e}") from e

    async def _complete(
        self,
        client: AsyncOpenAI,
        messages: list[dict[str, str]],
        max_tokens: int,
        started: float,
        on_text: OnText | None = None,
    ) -> Completion:
        if self.settings.ai_stream:
            parts: list[str] = []
            usage = None
            stream = await client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=0,
                max_tokens=max_tokens,
                stream=True,
                stream_options={"include_usage": True},
            )
            first = 0.0
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                    if not parts:
                        first = (time.perf_counter() - started) * 1000
                    parts.append(chunk.choices[0].delta.content)
                    if on_text is not None:
                        await on_text("".join(parts))
                if getattr(chunk, "usage", None):
                    usage = chunk.usage
            text = "".join(parts)
        else:
            resp = await client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=0,
                max_tokens=max_tokens,
            )
            text = (resp.choices[0].message.content or "") if resp.choices else ""
            usage = resp.usage
            first = (time.perf_counter() - started) * 1000
        if not text.strip():
            raise AiTransient(f"model {self.model} returned an empty answer")
        return Completion(
            text=text.strip(),
            model=self.model,
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            latency_ms=(time.perf_counter() - started) * 1000,
            streamed=self.settings.ai_stream,
            first_text_ms=first,
        )

    async def embed(self, texts: list[str]) -> list[list[float]]:
        import openai

        try:
            async with self._client() as client:
                resp = await client.embeddings.create(model=self.embedding_model, input=texts)
        except openai.APIError as e:
            raise _classify(e) from e
        return [d.embedding for d in sorted(resp.data, key=lambda d: d.index)]

    async def aclose(self) -> None:
        """Nothing held between calls."""


def _classify(e: openai.APIError) -> AiError:
    import openai

    if isinstance(e, openai.RateLimitError):
        after = e.response.headers.get("retry-after") if e.response is not None else None
        try:
            delay = float(after) if after else 5.0
        except ValueError:
            delay = 5.0
        return AiRateLimited(f"model rate limited: {e.message}", retry_after=delay)
    if isinstance(e, openai.APITimeoutError | openai.APIConnectionError):
        return AiTransient(f"model unreachable: {e.message}")
    if isinstance(e, openai.APIStatusError):
        if e.status_code >= 500 or e.status_code in (408, 409):
            return AiTransient(f"model server error {e.status_code}: {e.message}")
        return AiPermanent(f"model refused the request ({e.status_code}): {e.message}")
    return AiTransient(f"model call failed: {e}")
