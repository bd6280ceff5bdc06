"""`warroom doctor`: whether each IM platform is set up (credentials, scopes, callback URLs), with
what to fix. It builds the adapters itself, so it needs no running API."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from starters.cli.config import settings_or_exit
from starters.cli.errors import EXIT_API_ERROR, handled
from starters.cli.options import JsonOut
from starters.cli.output import out, print_json


async def _doctor_checks(settings: Any, platforms: list[str]) -> list[dict[str, Any]]:
    """Build each platform's adapter from the settings and run its setup checks."""
    from warroom.im.registry import build_adapter
    from warroom.store.db import Database

    db = Database(settings.database_url)  # lazy: nothing is opened unless an adapter needs it
    checks: list[dict[str, Any]] = []
    try:
        for platform in platforms:
            try:
                adapter = build_adapter(platform, db, settings)
            except Exception as e:
                checks.append({"platform": platform, "name": "adapter", "ok": False, "detail": str(e), "fix": ""})
                continue
            try:
                checks += [c.model_dump(mode="json") for c in await adapter.setup_checks()]
            except Exception as e:
                checks.append(
                    {
                        "platform": platform,
                        "name": "checks",
                        "ok": False,
                        "detail": f"{type(e).__name__}: {e}",
                        "fix": "",
                    }
                )
            finally:
                await adapter.aclose()
    finally:
        db.dispose()
    return checks


@handled
def doctor(
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", help="Check this platform even when its credentials are not set; repeatable."),
    ] = None,
    as_json: JsonOut = False,
) -> None:
    """Check each configured IM platform: credentials, permissions (scopes) and callback URLs.

    Exits 1 when any check fails, with what to fix next to it.
    """
    import asyncio  # here, like every heavy import: `warroom --help` starts in a blink

    settings = settings_or_exit()
    platforms = platform or settings.configured_platforms()
    checks = asyncio.run(_doctor_checks(settings, platforms))
    failed = [c for c in checks if not c["ok"]]
    if as_json:
        print_json({"ok": not failed, "platforms": platforms, "checks": checks})
    else:
        t = Table(header_style="bold dim", title="warroom doctor", title_justify="left")
        t.add_column("Platform")
        t.add_column("Check")
        t.add_column("")
        t.add_column("Detail", overflow="fold")
        t.add_column("Fix", overflow="fold")
        for c in checks:
            mark = Text("✔", style="green") if c["ok"] else Text("✘", style="bold red")
            t.add_row(c["platform"], c["name"], mark, Text(c.get("detail") or ""), Text(c.get("fix") or ""))
        console = out()
        console.print(t)
        if failed:
            console.print(
                f"[bold red]{len(failed)} of {len(checks)} checks failed.[/] Fix them and run `warroom doctor` again."
            )
        else:
            console.print(f"[green]✔ All {len(checks)} checks passed[/] for {', '.join(platforms)}.")
    if failed:
        raise typer.Exit(EXIT_API_ERROR)
