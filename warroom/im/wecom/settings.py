"""WeCom's settings: the self-built app's credentials, its callback keys and the API base URL
(CONTRACT.md, section Settings), plus the few WeCom needs beyond them."""

from __future__ import annotations

from pydantic import Field, SecretStr

from warroom.im.plugin import PlatformSettings


class WeComSettings(PlatformSettings):
    corp_id: str = Field("", validation_alias="WECOM_CORP_ID")
    secret: SecretStr = Field(SecretStr(""), validation_alias="WECOM_SECRET")  # the app's own secret
    agent_id: str = Field("", validation_alias="WECOM_AGENT_ID")
    token: SecretStr = Field(SecretStr(""), validation_alias="WECOM_TOKEN")  # callback signature token
    encoding_aes_key: SecretStr = Field(SecretStr(""), validation_alias="WECOM_ENCODING_AES_KEY")
    api_base_url: str = Field("https://qyapi.weixin.qq.com/cgi-bin/", validation_alias="WECOM_API_BASE_URL")
    # Beyond CONTRACT.md: userids (comma-separated) who join every war room: a duty or service account.
    # WeCom groups need two members at creation: with one duty account a room with one linked responder
    # is created at once; with two or more the group exists as soon as the room is opened (its owner
    # moves to the first linked responder); with none a room waits for a second linked responder and
    # says so in the timeline. README: "One-person rooms".
    duty_user_ids: str = Field("", validation_alias="WECOM_DUTY_USER_IDS")
    # Beyond CONTRACT.md: on dismissal, everyone but the group's owner is removed from the closed group
    # (WeCom cannot disband one); off: the members keep the closed group and its messages.
    remove_members_on_close: bool = Field(False, validation_alias="WECOM_REMOVE_MEMBERS_ON_CLOSE")
    # Beyond CONTRACT.md: seconds one WeCom call may take before it counts as timed out.
    timeout_seconds: float = Field(10.0, gt=0, le=25, validation_alias="WECOM_TIMEOUT_SECONDS")
    # Beyond CONTRACT.md: how far a callback's timestamp may be from now (WeCom retries for minutes).
    callback_window_seconds: int = Field(600, gt=0, le=86400, validation_alias="WECOM_CALLBACK_WINDOW_SECONDS")

    def duty(self) -> list[str]:
        return list(dict.fromkeys(u.strip() for u in self.duty_user_ids.split(",") if u.strip()))

    def configured(self) -> bool:
        return bool(self.corp_id)

    def missing(self) -> list[str]:
        given = {
            "WECOM_CORP_ID": self.corp_id,
            "WECOM_SECRET": self.secret.get_secret_value(),
            "WECOM_AGENT_ID": self.agent_id,
            "WECOM_TOKEN": self.token.get_secret_value(),
            "WECOM_ENCODING_AES_KEY": self.encoding_aes_key.get_secret_value(),
        }
        return [name for name, value in given.items() if not value]
