"""Turn library errors into Temporal retry decisions, in one place for every activity."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from warroom.errors import Conflict, NotFound, PermanentImError, RateLimited, TransientImError
from warroom.names import CONFLICT, IM_PERMANENT, IM_TRANSIENT, NOT_FOUND, RATE_LIMITED

MESSAGE_MAX = 600


def brief(e: Exception) -> str:
    """The error's text, bounded: a platform's answer can be a whole HTML page, and a failure
    goes into the incident's history at every attempt (and is refused past Temporal's limits)."""
    text = " ".join(str(e).split())
    return text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"


def retry_after(e: Exception, seconds: float, error_type: str) -> ApplicationError:
    """A rate limit: retried after the delay the other side asked for, and not logged as a failure."""
    return ApplicationError(
        f"{brief(e)} (retry after {seconds:g}s)",
        type=error_type,
        next_retry_delay=timedelta(seconds=max(seconds, 0.05)),
        category=ApplicationErrorCategory.BENIGN,
    )


@contextmanager
def retry_decisions() -> Iterator[None]:
    """Rate limits retry after the platform's delay; transient errors back off; the rest stop."""
    try:
        yield
    except RateLimited as e:
        raise retry_after(e, e.retry_after, RATE_LIMITED) from e
    except TransientImError as e:
        raise ApplicationError(brief(e), type=IM_TRANSIENT) from e
    except PermanentImError as e:
        raise ApplicationError(brief(e), e.code, type=IM_PERMANENT, non_retryable=True) from e
    except Conflict as e:
        raise ApplicationError(brief(e), type=CONFLICT, non_retryable=True) from e
    except NotFound as e:
        raise ApplicationError(brief(e), type=NOT_FOUND, non_retryable=True) from e
