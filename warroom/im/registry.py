"""Which adapter serves which platform. New platforms register a builder here."""

from __future__ import annotations

from collections.abc import Callable

from warroom.errors import PermanentImError
from warroom.im.base import ImAdapter
from warroom.models import PLATFORMS
from warroom.settings import Settings
from warroom.store.db import Database

Builder = Callable[[Database, Settings], ImAdapter]


# Each platform's SDK is imported when its adapter is first built, not at start-up: a worker that
# serves only the sandbox starts (and restarts after a crash) without loading slack-sdk or lark-oapi.
def _sandbox(db: Database, settings: Settings) -> ImAdapter:
    from warroom.im.sandbox.adapter import build_sandbox_adapter

    return build_sandbox_adapter(db, settings)


def _slack(db: Database, settings: Settings) -> ImAdapter:
    from warroom.im.slack.adapter import build_slack_adapter

    return build_slack_adapter(db, settings)


def _lark(db: Database, settings: Settings) -> ImAdapter:
    from warroom.im.lark import build_lark_adapter

    return build_lark_adapter(db, settings)


BUILDERS: dict[str, Builder] = {"sandbox": _sandbox, "lark": _lark, "slack": _slack}


def available_platforms() -> list[str]:
    return [p for p in PLATFORMS if p in BUILDERS]


def configured_platforms(settings: Settings) -> list[str]:
    """Platforms this build has and whose credentials are set (the sandbox always)."""
    wanted = {
        "sandbox": True,
        "slack": bool(settings.slack_bot_token.get_secret_value()),
        "lark": bool(settings.lark_app_id),
        "dingtalk": bool(settings.dingtalk_app_key),
        "wecom": bool(settings.wecom_corp_id),
    }
    return [p for p in available_platforms() if wanted.get(p, False)]


def build_adapter(platform: str, db: Database, settings: Settings) -> ImAdapter:
    builder = BUILDERS.get(platform)
    if builder is None:
        raise PermanentImError(
            f"platform {platform!r} is not available in this build; available: {', '.join(available_platforms())}",
            platform=platform,
            code="unsupported_platform",
        )
    return builder(db, settings)
