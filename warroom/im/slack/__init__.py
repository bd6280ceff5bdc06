"""Slack war rooms: channels, Block Kit status cards, signed Events API and interactivity callbacks.

Importing this package is cheap; slack-sdk is loaded only when an adapter is built.
"""

from __future__ import annotations

from warroom.im.base import ImAdapter
from warroom.im.plugin import PlatformContext, PlatformPlugin
from warroom.im.slack.capabilities import CAPABILITIES
from warroom.im.slack.settings import SlackSettings


def _build(context: PlatformContext) -> ImAdapter:
    from warroom.im.slack.adapter import build_slack_adapter

    return build_slack_adapter(context)


plugin = PlatformPlugin(
    name="slack", title="Slack", settings_class=SlackSettings, capabilities=CAPABILITIES, build=_build
)
