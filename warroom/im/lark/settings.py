"""Feishu/Lark's settings: the custom app's credentials and its event subscription keys."""

from __future__ import annotations

from pydantic import Field, SecretStr

from warroom.im.plugin import PlatformSettings


class LarkSettings(PlatformSettings):
    app_id: str = Field("", validation_alias="LARK_APP_ID")
    app_secret: SecretStr = Field(SecretStr(""), validation_alias="LARK_APP_SECRET")
    verification_token: SecretStr = Field(SecretStr(""), validation_alias="LARK_VERIFICATION_TOKEN")
    encrypt_key: SecretStr = Field(SecretStr(""), validation_alias="LARK_ENCRYPT_KEY")
    domain: str = Field("https://open.feishu.cn", validation_alias="LARK_DOMAIN")
    # Beyond CONTRACT.md: seconds one Lark OpenAPI call may take before it counts as timed out.
    timeout_seconds: float = Field(10.0, gt=0, le=25, validation_alias="LARK_TIMEOUT_SECONDS")

    def configured(self) -> bool:
        return bool(self.app_id)

    def missing(self) -> list[str]:
        given = {
            "LARK_APP_ID": self.app_id,
            "LARK_APP_SECRET": self.app_secret.get_secret_value(),
            "LARK_VERIFICATION_TOKEN": self.verification_token.get_secret_value(),
            "LARK_ENCRYPT_KEY": self.encrypt_key.get_secret_value(),
        }
        return [name for name, value in given.items() if not value]
