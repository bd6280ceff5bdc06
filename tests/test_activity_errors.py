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


def test_every_method_of_the_seam_is_either_repeated_in_place_or_passed_through() -> None:
    """A platform call the in-place layer does not know is never repeated within the attempt (a
    streamed answer's final edit was not, and a 503 left "thinking…" in the room)."""
    import inspect

    from activities.in_place import OUTBOUND, PASSED_THROUGH
    from warroom.im.base import ImAdapter

    methods = {n for n, f in inspect.getmembers(ImAdapter, inspect.isfunction) if not n.startswith("_")}
    assert methods == OUTBOUND | PASSED_THROUGH, "classify the seam's new methods in activities/in_place.py"
    assert not OUTBOUND & PASSED_THROUGH
    calls = {n for n in methods if inspect.iscoroutinefunction(getattr(ImAdapter, n))}
    assert calls - {"listen", "setup_checks", "aclose"} == OUTBOUND
