"""Platforms installed the way a third-party package installs one: a distribution whose
metadata declares a `warroom.platforms` entry point, put on `sys.path` for the test's duration."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from warroom.im.plugins import rediscover


@contextlib.contextmanager
def installed(tmp: Path, entry_points: dict[str, str]) -> Iterator[None]:
    """Install a distribution declaring `{platform name: "module:attribute"}` as platforms."""
    dist = tmp / "warroom_test_platforms-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: warroom-test-platforms\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[warroom.platforms]\n{lines}")
    sys.path.insert(0, str(tmp))
    rediscover()
    try:
        yield
    finally:
        sys.path.remove(str(tmp))
        rediscover()
