"""A second platform for tests that need two (regions): the sandbox under another name."""

from __future__ import annotations

from warroom.im.base import ImAdapter
from warroom.im.plugin import PlatformContext, PlatformPlugin
from warroom.im.sandbox.adapter import build_sandbox_adapter
from warroom.im.sandbox.capabilities import CAPABILITIES
from warroom.im.sandbox.settings import SandboxSettings


def _build(context: PlatformContext) -> ImAdapter:
    adapter = build_sandbox_adapter(context)
    adapter.platform = "second"
    return adapter


plugin = PlatformPlugin(
    name="second", title="Second sandbox", settings_class=SandboxSettings, capabilities=CAPABILITIES, build=_build
)
