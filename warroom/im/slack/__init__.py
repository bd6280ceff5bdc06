"""Slack war rooms: channels, Block Kit status cards, signed Events API and interactivity callbacks."""

from warroom.im.slack.adapter import SlackAdapter, build_slack_adapter

__all__ = ["SlackAdapter", "build_slack_adapter"]
