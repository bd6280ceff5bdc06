"""Every activity the incident workflow calls, typed: its registered name, argument and result.

The table below is the one place that pairs a name (shared with the activity's definition through
`warroom.names`) with the type its result is decoded into, so a call site reads
`await calls.OPEN_ROOM(inp, profile)` and gets an `OpenedRoom` back, checked by the type checker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from temporalio import workflow

from workflows.incident.options import Profile

with workflow.unsafe.imports_passed_through():
    from warroom import names
    from warroom.messages import (
        AiAnswer,
        AiAnswerInput,
        AiCaptureInput,
        AiImpact,
        AiImpactInput,
        AiKnowledgeInput,
        AiKnowledgePush,
        AiReviewInput,
        AiReviewResult,
        ApplyActionInput,
        DismissInput,
        InviteMembersInput,
        MemberOutcome,
        OpenedRoom,
        OpenRoomInput,
        PostCardInput,
        PostMessageInput,
        PostNoticeInput,
        RecordInput,
        RemoveMembersInput,
        SweepInput,
        UpdateCardInput,
    )
    from warroom.models import Incident

Arg = TypeVar("Arg")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Call(Generic[Arg, Result]):
    """An activity by name, called with one argument and decoded into `result_type`."""

    name: str
    result_type: Any = None  # None: the activity returns nothing

    async def __call__(self, arg: Arg, profile: Profile) -> Result:
        return await workflow.execute_activity(
            self.name,
            arg,
            result_type=self.result_type,
            task_queue=profile.task_queue,
            start_to_close_timeout=profile.start_to_close,
            schedule_to_close_timeout=profile.schedule_to_close,
            heartbeat_timeout=profile.heartbeat,
            retry_policy=profile.retry,
        )

    async def local(self, arg: Arg, profile: Profile) -> Result:
        """As a local activity: run by this worker within the workflow task (no task queue, no
        heartbeat), for short calls whose answer the same task acts on."""
        return await workflow.execute_local_activity(
            self.name,
            arg,
            result_type=self.result_type,
            start_to_close_timeout=profile.start_to_close,
            schedule_to_close_timeout=profile.schedule_to_close,
            retry_policy=profile.retry,
        )


# ---- the room's platform (activities/im.py)
OPEN_ROOM: Call[OpenRoomInput, OpenedRoom] = Call(names.IM_OPEN_ROOM, OpenedRoom)
INVITE_MEMBERS: Call[InviteMembersInput, list[MemberOutcome]] = Call(names.IM_INVITE_MEMBERS, list[MemberOutcome])
REMOVE_MEMBERS: Call[RemoveMembersInput, None] = Call(names.IM_REMOVE_MEMBERS)
POST_CARD: Call[PostCardInput, str] = Call(names.IM_POST_CARD, str)  # the card's message id
UPDATE_CARD: Call[UpdateCardInput, None] = Call(names.IM_UPDATE_CARD)
POST_MESSAGE: Call[PostMessageInput, str] = Call(names.IM_POST_MESSAGE, str)  # the message's id
POST_NOTICE: Call[PostNoticeInput, None] = Call(names.IM_POST_NOTICE)
DISMISS_ROOM: Call[DismissInput, None] = Call(names.IM_DISMISS_ROOM)

# ---- the store and the incident source (activities/incidents.py)
APPLY_ACTION: Call[ApplyActionInput, Incident] = Call(names.APPLY_ACTION, Incident)  # the new snapshot
RECORD: Call[RecordInput, None] = Call(names.RECORD)

# ---- the assistant (activities/ai.py)
AI_ANSWER: Call[AiAnswerInput, AiAnswer] = Call(names.AI_ANSWER, AiAnswer)
AI_IMPACT: Call[AiImpactInput, AiImpact] = Call(names.AI_IMPACT, AiImpact)
AI_KNOWLEDGE: Call[AiKnowledgeInput, list[AiKnowledgePush]] = Call(names.AI_KNOWLEDGE, list[AiKnowledgePush])
AI_REVIEW: Call[AiReviewInput, AiReviewResult] = Call(names.AI_REVIEW, AiReviewResult)
AI_CAPTURE: Call[AiCaptureInput, int] = Call(names.AI_CAPTURE, int)  # messages stored
AI_SWEEP_TRANSCRIPT: Call[SweepInput, int] = Call(names.AI_SWEEP_TRANSCRIPT, int)  # messages backfilled
