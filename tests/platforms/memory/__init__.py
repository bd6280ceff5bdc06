"""The smallest complete platform: chats kept in this process's memory.

It is what a new platform package looks like (a plugin, its settings and its adapter), and it
is deliberately poor (no card edits, no way to end a room, no join link, no history) so the
conformance suite sees the core degrade on capabilities instead of on names.
Installed in tests through an entry point like any other (`tests/platforms.installed`).
"""

from __future__ import annotations

from pydantic import Field

from warroom.im.base import Capabilities, Dismissal, ImAdapter
from warroom.im.plugin import PlatformContext, PlatformPlugin, PlatformSettings

CAPABILITIES = Capabilities(
    edit_card=False,
    pin_card=False,
    dismissal=Dismissal.NONE,
    history=False,
    join_link=False,
    remove_members=False,
    max_invite_batch=2,
)


class MemorySettings(PlatformSettings):
    token: str = Field("", validation_alias="MEMORY_TOKEN")

    def configured(self) -> bool:
        return bool(self.token)

    def missing(self) -> list[str]:
        return [] if self.token else ["MEMORY_TOKEN"]


def _build(context: PlatformContext) -> ImAdapter:
    from tests.platforms.memory.adapter import MemoryAdapter

    return MemoryAdapter(token=context.settings.token)


plugin = PlatformPlugin(
    name="memory", title="In-memory chat", settings_class=MemorySettings, capabilities=CAPABILITIES, build=_build
)
