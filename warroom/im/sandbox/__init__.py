"""The built-in sandbox IM: a local chat kept in War Room's database, with its own page in the
API server (`/sandbox`). It is the embedded default: every feature works without an IM account.

Modules: `platform` (the IM itself: rooms, members, messages, users), `tables` (its SQL),
`adapter` (the `ImAdapter`, with injectable latency, faults and rate limits), `settings`.
"""

from __future__ import annotations

from warroom.im.base import ImAdapter
from warroom.im.plugin import PlatformContext, PlatformPlugin
from warroom.im.sandbox.capabilities import CAPABILITIES
from warroom.im.sandbox.settings import SandboxSettings


def _build(context: PlatformContext) -> ImAdapter:
    from warroom.im.sandbox.adapter import build_sandbox_adapter

    return build_sandbox_adapter(context)


plugin = PlatformPlugin(
    name="sandbox",
    title="Sandbox",
    settings_class=SandboxSettings,
    capabilities=CAPABILITIES,
    build=_build,
    tables="warroom.im.sandbox.tables",
)
