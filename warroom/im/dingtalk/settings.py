"""DingTalk's settings: the internal app's credentials, its robot, the two templates and how
callbacks arrive (CONTRACT.md, section DingTalk)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from warroom.im.plugin import PlatformSettings


class DingTalkSettings(PlatformSettings):
    app_key: str = Field("", validation_alias="DINGTALK_APP_KEY")
    app_secret: SecretStr = Field(SecretStr(""), validation_alias="DINGTALK_APP_SECRET")
    # The robot that posts cards and messages; it need not equal the app key (a robot added later
    # to an app has a code of its own).
    robot_code: str = Field("", validation_alias="DINGTALK_ROBOT_CODE")
    api_base_url: str = Field("https://api.dingtalk.com", validation_alias="DINGTALK_API_BASE_URL")
    oapi_base_url: str = Field("https://oapi.dingtalk.com", validation_alias="DINGTALK_OAPI_BASE_URL")
    scene_group_template_id: str = Field("", validation_alias="DINGTALK_SCENE_GROUP_TEMPLATE_ID")
    card_template_id: str = Field("", validation_alias="DINGTALK_CARD_TEMPLATE_ID")
    callback_mode: Literal["stream", "http"] = Field("stream", validation_alias="DINGTALK_CALLBACK_MODE")
    # Beyond CONTRACT.md: the userid that owns every war room. A scene group needs an owner inside the
    # app's visible range at creation, before any responder is known; a person (or service account)
    # who never leaves the incident keeps every room manageable (README: "Who owns a war room").
    owner_user_id: str = Field("", validation_alias="DINGTALK_OWNER_USER_ID")
    # Beyond CONTRACT.md: seconds one DingTalk call may take before it counts as timed out.
    timeout_seconds: float = Field(10.0, gt=0, le=25, validation_alias="DINGTALK_TIMEOUT_SECONDS")
    # Beyond CONTRACT.md: minutes the email → userid directory is trusted before it is read again.
    directory_ttl_minutes: float = Field(60.0, gt=0, validation_alias="DINGTALK_DIRECTORY_TTL_MINUTES")

    def configured(self) -> bool:
        return bool(self.app_key)

    def missing(self) -> list[str]:
        given = {
            "DINGTALK_APP_KEY": self.app_key,
            "DINGTALK_APP_SECRET": self.app_secret.get_secret_value(),
            "DINGTALK_ROBOT_CODE": self.robot_code,
            "DINGTALK_SCENE_GROUP_TEMPLATE_ID": self.scene_group_template_id,
            "DINGTALK_CARD_TEMPLATE_ID": self.card_template_id,
            "DINGTALK_OWNER_USER_ID": self.owner_user_id,
        }
        return [name for name, value in given.items() if not value]
