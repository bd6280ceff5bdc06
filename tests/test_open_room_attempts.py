"""An attempt of `im_open_room` against the fake Slack, run as Temporal runs activities
(`ActivityEnvironment`): failed calls are repeated where they failed, within the attempt's share
of time, and the attempt after a lost worker resumes from the steps recorded in the store."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.im import ImActivities
from tests.fakes.slack_api import SIGNING_SECRET, SPEC_PATH, TOKEN, FakeSlack, running_fake_slack
from warroom.im.base import RoomSpec, StatusCard
from warroom.im.slack.blocks import CARD_EVENT_TYPE
from warroom.messages import OpenRoomInput, Person
from warroom.models import IncidentStatus, Severity
from warroom.settings import Settings
from warroom.store import Store
from warroom.store.tables import StepProgressRow

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason=f"Slack's OpenAPI spec not found at {SPEC_PATH}")
ANN, BOB = "ann@example.com", "bob@example.com"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with running_fake_slack() as fake:
        yield fake


@pytest_asyncio.fixture
async def activities(tmp_path, fake: FakeSlack) -> AsyncIterator[ImActivities]:
    settings = Settings(
        WARROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'warroom.db'}",
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_BASE_URL=fake.url,
        WARROOM_SLACK_TIMEOUT=1.0,
        _env_file=None,
    )
    store = Store(settings.database_url)
    acts = ImActivities(store, settings)
    yield acts
    await acts.aclose()
    store.close()


def attempt(number: int, *, seconds: float = 30, retry: RetryPolicy | None = None) -> ActivityEnvironment:
    """An attempt of the same activity of the same workflow, started now, with no heartbeat
    details: as when the worker of the attempt before died before its heartbeat went out."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        activity_id="3",
        activity_type="im_open_room",
        workflow_id="incident-r1",
        workflow_run_id="run-1",
        attempt=number,
        started_time=datetime.now(UTC),
        start_to_close_timeout=timedelta(seconds=seconds),
        retry_policy=retry,
    )
    return env


def room_input() -> OpenRoomInput:
    iid = f"r{uuid.uuid4().hex[:6]}"
    return OpenRoomInput(
        platform="slack",
        spec=RoomSpec(incident_id=iid, idempotency_key=f"incident-{iid}:room:1", name=f"inc-{iid}-checkout"),
        people=[Person(responder_id="1", email=ANN), Person(responder_id="2", email=BOB)],
        card=StatusCard(
            incident_id=iid, title="Checkout", severity=Severity.HIGH, status=IncidentStatus.TRIGGERED, version=1
        ),
        card_key=f"incident-{iid}:card:1",
    )


async def test_the_attempt_after_a_lost_worker_resumes_from_the_recorded_steps(fake, activities):
    fake.add_user(ANN), fake.add_user(BOB)
    inp = room_input()
    fake.inject("chat.postMessage", "server_error", status=503, times=100)  # the card never goes out
    with pytest.raises(ApplicationError):
        await attempt(1, seconds=2).run(activities.open_room, inp)
    assert fake.count("conversations.create") == 1 and fake.count("conversations.invite") == 1
    fake.clear_faults()

    opened = await attempt(2).run(activities.open_room, inp)
    assert opened.card_handle and {m.state.value for m in opened.members} == {"invited"}
    # Room and invites were recorded when they were done: the second attempt posted the card only.
    assert fake.count("conversations.create", None) == 1
    assert fake.count("conversations.invite", None) == 1
    assert fake.count("users.lookupByEmail", None) == 2
    assert len(fake.bot_messages(opened.room.chat_id, CARD_EVENT_TYPE)) == 1


def progress_rows(activities: ImActivities) -> int:
    with activities.store.db.session() as s:
        return s.scalar(select(func.count()).select_from(StepProgressRow)) or 0


async def test_the_last_attempt_allowed_keeps_no_progress_for_an_attempt_that_will_not_come(fake, activities):
    """The local try of an opening has one attempt: its steps are not written down for nobody."""
    fake.add_user(ANN), fake.add_user(BOB)
    inp = room_input()
    fake.inject("chat.postMessage", "server_error", status=503, times=100)
    with pytest.raises(ApplicationError):
        await attempt(1, seconds=2, retry=RetryPolicy(maximum_attempts=1)).run(activities.open_room, inp)
    assert fake.count("conversations.create") == 1 and fake.count("conversations.invite") == 1
    assert progress_rows(activities) == 0
    with pytest.raises(ApplicationError):  # a first attempt of several keeps them
        await attempt(1, seconds=2, retry=RetryPolicy(maximum_attempts=3)).run(activities.open_room, room_input())
    assert progress_rows(activities) > 0


async def test_calls_are_repeated_only_within_the_attempts_share_of_time(fake, activities):
    fake.add_user(ANN), fake.add_user(BOB)
    fake.inject("conversations.create", "server_error", status=503, times=100)
    started = time.monotonic()
    with pytest.raises(ApplicationError) as failed:
        await attempt(1, seconds=2).run(activities.open_room, room_input())
    elapsed = time.monotonic() - started
    assert failed.value.type == "ImTransient" and not failed.value.non_retryable
    assert 2 <= fake.count("conversations.create", None) <= 6 and elapsed < 2, (
        fake.count("conversations.create", None),
        elapsed,
    )


async def test_a_rate_limit_longer_than_the_attempt_has_left_fails_it_at_once(fake, activities):
    fake.add_user(ANN), fake.add_user(BOB)
    fake.inject("conversations.create", "ratelimited", retry_after=30)
    with pytest.raises(ApplicationError) as failed:
        await attempt(1).run(activities.open_room, room_input())
    assert failed.value.next_retry_delay == timedelta(seconds=30)
    assert fake.count("conversations.create", None) == 1


async def test_a_failed_call_that_is_idempotent_by_nature_is_repeated_alone(fake, activities):
    """The purpose marker, the topic, the pin and the invite are repeated where they failed: the
    channel is not asked for again (conversations.create is Tier 2, 20 a minute)."""
    fake.add_user(ANN), fake.add_user(BOB)
    for method in ("conversations.setPurpose", "conversations.setTopic", "pins.add", "conversations.invite"):
        fake.inject(method, "server_error", status=503)
    opened = await attempt(1).run(activities.open_room, room_input())
    assert opened.card_handle and {m.state.value for m in opened.members} == {"invited"}
    assert fake.count("conversations.create", None) == 1
    assert fake.count("conversations.setPurpose", None) == 2 and fake.count("pins.add", None) == 2
