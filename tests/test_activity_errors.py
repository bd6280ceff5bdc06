"""What an activity's failure says: the decision Temporal needs, in a message of bounded size."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from activities.errors import MESSAGE_MAX, retry_decisions
from warroom.errors import PermanentImError, RateLimited, TransientImError

PAGE = "<html><body>" + "<p>502 Bad Gateway</p>\n" * 2000 + "</body></html>"


@pytest.mark.parametrize(
    "error",
    [TransientImError(PAGE), PermanentImError(PAGE), RateLimited(PAGE, retry_after=3)],
    ids=["transient", "permanent", "rate-limited"],
)
def test_a_platform_answering_a_whole_page_fails_the_attempt_in_a_few_hundred_characters(error: Exception) -> None:
    with pytest.raises(ApplicationError) as failed, retry_decisions():
        raise error
    assert len(failed.value.message) <= MESSAGE_MAX + len(" (retry after 3s)")
    assert failed.value.message.startswith("<html><body><p>502 Bad Gateway</p> <p>")
    assert "\n" not in failed.value.message
