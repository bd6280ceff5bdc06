"""The API's own error: rendered as `{"error": {"code", "message"}}` with its status."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error of CONTRACT.md's shape.

    `extra` adds top-level fields next to `"error"` (a failed war room still reports its state);
    `headers` go on the response (`WWW-Authenticate` on a 401).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}
