"""The room's status card: kept showing the incident as it is, and remembered as shown.

What the card shows is compared by content, so a burst of changes during a slow edit costs one
more edit. A card the platform refused is not retried with the same content forever.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.incident import calls, options
from workflows.incident.timeline import TimelineRecorder
from workflows.incident.wording import cause

with workflow.unsafe.imports_passed_through():
    from warroom.card import card_content, render_card
    from warroom.enums import TimelineKind
    from warroom.im.base import StatusCard
    from warroom.messages import CarriedState, Person, PostCardInput, RoomSlot, UpdateCardInput, WarRoomConfig
    from warroom.models import MemberState, Outcome, RoomState, Source


class CardKeeper:
    def __init__(
        self, state: CarriedState, slot: CarriedState | RoomSlot, config: WarRoomConfig, timeline: TimelineRecorder
    ) -> None:
        self._s, self._r, self._cfg, self._timeline = state, slot, config, timeline

    def render(self, version: int, *, expecting: Sequence[Person] = ()) -> StatusCard:
        """The card for the current state; `expecting`: people shown as invited already (their
        invites go out with the card)."""
        room = self._r.room
        if expecting:
            room = room.model_copy(deep=True)
            for p in expecting:
                if (m := room.member(p.responder_id)) is not None:
                    m.state = MemberState.INVITED
        return render_card(
            self._s.incident,
            room,
            last_action=self._s.last_action,
            version=version,
            public_url=self._cfg.public_url,
            snooze_choices=self._cfg.snooze_choices_minutes,
            impact=self._s.ai.impact_line,
        )

    def stale(self) -> bool:
        if self._r.room.state is not RoomState.ACTIVE:
            return False
        if self._r.card_failed and self._r.room.card_handle is None:
            return False
        return card_content(self.render(0)) != self._r.card_shown

    async def sync(self) -> None:
        """Post the card, or edit it, if it does not show the current state."""
        if not self.stale():
            return
        room = self._r.room
        card = self.render(room.card_version + 1)
        profile = options.im(self._cfg, room.platform)
        try:
            if room.card_handle is None:
                room.card_handle = await calls.POST_CARD(
                    PostCardInput(
                        platform=room.platform,
                        chat_id=room.chat_id or "",
                        card=card,
                        key=f"{workflow.info().workflow_id}:card:{self._r.keys}{room.generation}",
                    ),
                    profile,
                )
                kind = TimelineKind.CARD_POSTED
            else:
                await calls.UPDATE_CARD(
                    UpdateCardInput(
                        platform=room.platform, chat_id=room.chat_id or "", handle=room.card_handle, card=card
                    ),
                    profile,
                )
                kind = TimelineKind.CARD_UPDATED
        except ActivityError as e:
            self.refused(
                card, TimelineKind.CARD_POSTED if room.card_handle is None else TimelineKind.CARD_UPDATED, cause(e)
            )
            return
        self.shown(card, kind)

    def shown(self, card: StatusCard, kind: TimelineKind) -> None:
        """The room shows `card` now: a click on an older card with another status is refused."""
        if (self._r.card_shown or {}).get("status") != card.status.value:
            self._r.status_card_version = card.version
        self._r.room.card_version = card.version
        self._r.card_shown, self._r.card_failed = card_content(card), False
        self._timeline.log(kind, "system", Source.SYSTEM, f"v{card.version}: {card.status.value}")
        self._timeline.room_changed(self._r)

    def refused(self, card: StatusCard, kind: TimelineKind, why: str) -> None:
        self._r.card_failed = True
        self._r.card_shown = card_content(card)  # do not retry the same content forever
        self._timeline.log(kind, "system", Source.SYSTEM, why, Outcome.FAILED)
