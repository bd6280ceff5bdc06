"""Which adapter serves which platform. New platforms register a builder here."""

from __future__ import annotations

from collections.abc import Callable

from warroom.errors import PermanentImError
from warroom.im.base import ImAdapter
from warroom.im.sandbox.adapter import build_sandbox_adapter
from warroom.models import PLATFORMS
from warroom.settings import Settings
from warroom.store.db import Database

Builder = Callable[[Database, Settings], ImAdapter]
BUILDERS: dict[str, Builder] = {"sandbox": build_sandbox_adapter}


def available_platforms() -> list[str]:
    return [p for p in PLATFORMS if p in BUILDERS]


def build_adapter(platform: str, db: Database, settings: Settings) -> ImAdapter:
    builder = BUILDERS.get(platform)
    if builder is None:
        raise PermanentImError(
            f"platform {platform!r} is not available in this build; available: {', '.join(available_platforms())}",
            platform=platform,
            code="unsupported_platform",
        )
    return builder(db, settings)
