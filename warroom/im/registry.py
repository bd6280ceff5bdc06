"""Adapters from settings: the installed platform plugins (warroom.im.plugins), built on demand."""

from __future__ import annotations

from warroom.errors import PermanentImError
from warroom.im.base import ImAdapter
from warroom.im.plugin import PlatformContext
from warroom.im.plugins import get_plugin
from warroom.settings import Settings
from warroom.store.db import Database


def build_adapter(platform: str, db: Database | None, settings: Settings) -> ImAdapter:
    """A new adapter for `platform`; it refuses with what to set when credentials are missing."""
    plugin = get_plugin(platform)
    platform_settings = settings.platform(platform)
    if not platform_settings.configured():
        missing = ", ".join(platform_settings.missing()) or "its settings"
        raise PermanentImError(
            f"{plugin.title} is not configured: set {missing}", platform=platform, code="not_configured"
        )
    context = PlatformContext(settings=platform_settings, public_url=settings.public_url, database=db)
    adapter = plugin.build(context)
    if adapter.platform != platform or adapter.capabilities != plugin.capabilities:
        raise PermanentImError(
            f"the {platform} plugin built an adapter for {adapter.platform!r} whose capabilities differ from the "
            "plugin's: they must be one declaration",
            platform=platform,
            code="bad_plugin",
        )
    return adapter
