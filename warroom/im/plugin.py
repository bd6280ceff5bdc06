"""What a platform package exports: one `PlatformPlugin`, found through the `warroom.platforms`
entry point group (`warroom.im.plugins`).

A plugin names its settings class (its own environment variables, read only when the platform
is used), the capabilities the core plans around, and a builder. The builder imports the
platform's SDK itself, so discovering every installed platform costs no SDK import: a worker
that serves only the sandbox starts (and restarts after a crash) without loading slack-sdk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from warroom.im.base import Capabilities, ImAdapter


class PlatformSettings(BaseSettings):
    """A platform's own settings. Subclasses name each field's environment variable (the
    names are public: CONTRACT.md) and say when the platform counts as configured."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    def configured(self) -> bool:
        """Whether the operator set this platform up (its credentials are present)."""
        return True

    def missing(self) -> list[str]:
        """The variables that must still be set before the platform can be used."""
        return []


@dataclass(frozen=True)
class PlatformContext:
    """What a builder gets: the platform's settings and the few core facts adapters need.

    `database` is the SQL database for platforms that keep their own state in it (the
    sandbox, whose chats live there); an adapter never reads War Room's incidents or rooms:
    what it needs about a room comes in `RoomSpec`."""

    settings: Any  # the plugin's `settings_class`, filled
    public_url: str
    database: Any = None  # warroom.store.db.Database, for platforms with tables of their own


@dataclass(frozen=True)
class PlatformPlugin:
    name: str  # the platform's id in settings, workflows, routes (`/im/<name>/...`) and metrics
    title: str  # how people call it ("Feishu/Lark")
    settings_class: type[PlatformSettings]
    capabilities: Capabilities
    build: Callable[[PlatformContext], ImAdapter]
    tables: str | None = None  # module defining the platform's own SQL tables, if it has any
    # The platform's events arrive over a connection War Room holds (`ImAdapter.listen`, DingTalk's
    # Stream mode): `warroom api` opens it at start when the platform is configured.
    long_connection: bool = False
