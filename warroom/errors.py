"""Typed errors. Adapters raise these; activities turn them into Temporal retry decisions.

The split mirrors what an operator must do about a failure:
- `RateLimited`: wait `retry_after` seconds, then try again (the platform told us when);
- `TransientImError`: try again with backoff (5xx, timeouts, dropped connections);
- `PermanentImError`: retrying cannot help (bad credentials, missing permission, unknown user);
  it is recorded in the timeline and shown in the room instead.
"""

from __future__ import annotations


class WarRoomError(Exception):
    """Base of every error this library raises on purpose."""


class ImError(WarRoomError):
    def __init__(self, message: str, *, platform: str = "", code: str = "") -> None:
        super().__init__(message)
        self.platform = platform
        self.code = code


class RateLimited(ImError):
    def __init__(self, message: str, *, retry_after: float, platform: str = "", code: str = "") -> None:
        super().__init__(message, platform=platform, code=code)
        self.retry_after = retry_after


class TransientImError(ImError):
    pass


class PermanentImError(ImError):
    pass


class CallbackRejected(WarRoomError):
    """An inbound callback failed verification (bad signature, stale, replayed, malformed).

    `reason` says it to a person; `code` is a short, bounded label for metrics
    (`warroom_callbacks_refused_total{reason=…}`), by default what the status means."""

    CODES = {400: "malformed", 401: "unauthorized", 403: "forbidden", 404: "unknown_platform", 503: "not_configured"}

    def __init__(self, reason: str, *, status: int = 401, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code = code or self.CODES.get(status, "refused")


class NotFound(WarRoomError):
    pass


class Conflict(WarRoomError):
    pass
