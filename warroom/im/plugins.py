"""Discovery of the installed platforms: the `warroom.platforms` entry point group.

A platform package declares itself in its distribution's metadata (pyproject.toml):

    [project.entry-points."warroom.platforms"]
    slack = "warroom.im.slack:plugin"

and nothing central changes when one is added. Entry points are read once per process; the
plugin objects they name are imported on first use of that platform.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from warroom.enums import PLATFORM_NAME
from warroom.errors import PermanentImError
from warroom.im.plugin import PlatformPlugin

GROUP = "warroom.platforms"
# Listed first where platforms are listed; the rest follow by name.
BUILT_IN_ORDER = ("sandbox", "slack", "lark", "dingtalk", "wecom")


@cache
def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        if PLATFORM_NAME.match(ep.name) and ep.name not in found:
            found[ep.name] = ep
    return found


def platform_names() -> tuple[str, ...]:
    """Every installed platform, the built-in ones first."""
    names = set(_entry_points())
    first = [n for n in BUILT_IN_ORDER if n in names]
    return (*first, *sorted(names - set(first)))


@cache
def get_plugin(name: str) -> PlatformPlugin:
    ep = _entry_points().get(name)
    if ep is None:
        raise PermanentImError(
            f"platform {name!r} is not installed; installed: {', '.join(platform_names()) or 'none'}",
            platform=name,
            code="unsupported_platform",
        )
    plugin = ep.load()
    if not isinstance(plugin, PlatformPlugin) or plugin.name != name:
        raise PermanentImError(
            f"entry point {ep.value!r} of platform {name!r} is not a PlatformPlugin named {name!r}",
            platform=name,
            code="bad_plugin",
        )
    return plugin


def rediscover() -> None:
    """Forget what was discovered (a package was installed while the process runs: tests)."""
    _entry_points.cache_clear()
    get_plugin.cache_clear()
