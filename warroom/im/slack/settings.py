"""Slack's settings: the bot token and signing secret of the Slack app, and how rooms are made."""

from __future__ import annotations

from pydantic import Field, SecretStr

from warroom.im.plugin import PlatformSettings


class SlackSettings(PlatformSettings):
    bot_token: SecretStr = Field(SecretStr(""), validation_alias="SLACK_BOT_TOKEN")
    signing_secret: SecretStr = Field(SecretStr(""), validation_alias="SLACK_SIGNING_SECRET")
    api_base_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_BASE_URL")
    private_channels: bool = Field(True, validation_alias="SLACK_PRIVATE_CHANNELS")
    channel_template: str = Field("inc-{date}-{id}-{slug}", validation_alias="WARROOM_SLACK_CHANNEL_TEMPLATE")
    rate_scale: float = Field(1.0, gt=0, validation_alias="WARROOM_SLACK_RATE_SCALE")  # multiplies Slack's tiers
    timeout_seconds: float = Field(10.0, gt=0, validation_alias="WARROOM_SLACK_TIMEOUT")

    def configured(self) -> bool:
        return bool(self.bot_token.get_secret_value())

    def missing(self) -> list[str]:
        return [
            name
            for name, value in (("SLACK_BOT_TOKEN", self.bot_token), ("SLACK_SIGNING_SECRET", self.signing_secret))
            if not value.get_secret_value()
        ]
