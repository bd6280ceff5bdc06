"""Settings as the CLI reads them: leniently for the API client, strictly for what it runs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from starters.cli.errors import EXIT_USAGE, fail

if TYPE_CHECKING:
    from warroom.settings import Settings

DEFAULT_API_URL = "http://localhost:8000"


def client_settings() -> tuple[str, str]:
    """API URL and token from the environment or `.env` (WARROOM_PUBLIC_URL, WARROOM_API_TOKEN)."""
    try:
        from warroom.settings import Settings

        s = Settings()
        return s.public_url, s.api_token.get_secret_value()
    except Exception:  # an unrelated bad setting must not break the client
        return os.environ.get("WARROOM_PUBLIC_URL", DEFAULT_API_URL), os.environ.get("WARROOM_API_TOKEN", "")


def settings_or_exit() -> Settings:
    """The full settings, for the commands that run or reach War Room's parts themselves (imported
    here, not at start-up: pydantic-settings is most of a command's import time)."""
    from warroom.settings import Settings

    try:
        return Settings()
    except Exception as e:
        fail(f"invalid settings: {e}", EXIT_USAGE)
