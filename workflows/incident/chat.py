"""What the workflow says in the room: messages for everyone, notices for one person.

Both are posted once per key (the key travels to the platform as its dedup key), and a failure
is logged, not raised: nothing the workflow says is worth stopping the incident for.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.incident import calls, options
from workflows.incident.wording import cause

with workflow.unsafe.imports_passed_through():
    from warroom.im.rich import Rich
    from warroom.messages import CarriedState, PostMessageInput, PostNoticeInput, RoomSlot, WarRoomConfig


class RoomChat:
    def __init__(self, slot: CarriedState | RoomSlot, config: WarRoomConfig) -> None:
        self._s, self._cfg = slot, config

    def key(self, key: str) -> str:
        """The platform's dedup key of our message `key` in this room."""
        return f"{workflow.info().workflow_id}:msg:{self._s.keys}{self._s.room.generation}:{key}"

    async def post(self, text: str, *, key: str, rich: Rich | None = None) -> str | None:
        """The message's id, or None when it could not be posted; `rich`, when given, is what the
        platform shows (formatted), `text` its plain form."""
        room = self._s.room
        try:
            return await calls.POST_MESSAGE(
                PostMessageInput(
                    platform=room.platform,
                    chat_id=room.chat_id or "",
                    text=text,
                    key=self.key(key),
                    rich=rich,
                ),
                options.im(self._cfg, room.platform),
            )
        except ActivityError as e:
            workflow.logger.warning("could not post to the room: %s", cause(e))
            return None

    async def notice(self, im_user_id: str, text: str, *, key: str, offer_self_link: bool = False) -> None:
        """Tell one person (an ephemeral message, or a mention where the platform has none)."""
        room = self._s.room
        try:
            await calls.POST_NOTICE(
                PostNoticeInput(
                    platform=room.platform,
                    chat_id=room.chat_id or "",
                    im_user_id=im_user_id,
                    text=text,
                    key=f"{workflow.info().workflow_id}:notice:{self._s.keys}{room.generation}:{key}",
                    offer_self_link=offer_self_link,
                ),
                options.im(self._cfg, room.platform),
            )
        except ActivityError as e:
            workflow.logger.warning("could not tell %s in the room: %s", im_user_id, cause(e))
