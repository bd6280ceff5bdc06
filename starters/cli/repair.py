"""`warroom repair`: reset the incidents whose workflow no longer replays (it talks to Temporal,
not to the API)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from starters.cli.config import settings_or_exit
from starters.cli.errors import EXIT_API_ERROR, EXIT_UNREACHABLE, fail, handled
from starters.cli.options import JsonOut
from starters.cli.output import out, print_json


@handled
def repair(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the stuck incidents.")] = False,
    as_json: JsonOut = False,
) -> None:
    """Reset incidents whose workflow can no longer be replayed (a task failing for nondeterminism)
    to the task that wrote what the replay rejects; signals and updates sent since are delivered
    again. Exits 1 when an incident could not be reset."""
    import asyncio

    settings = settings_or_exit()
    try:
        results = asyncio.run(_repair(settings, dry_run))
    except RuntimeError as e:
        if "connect" not in str(e).lower():
            raise
        fail(
            f"cannot reach Temporal at {settings.temporal_address}: {e}",
            EXIT_UNREACHABLE,
            "Start it with `warroom dev`, or set WARROOM_TEMPORAL_ADDRESS.",
        )
    failed = [r for r in results if r["error"]]
    if as_json:
        print_json({"dry_run": dry_run, "stuck": results})
    elif not results:
        out().print("[green]✔ No incident is stuck.[/]")
    else:
        t = Table(header_style="bold dim", title="warroom repair", title_justify="left")
        for col in ("Workflow", "Failed at", "Reset to", "Error", "Outcome"):
            t.add_column(col, overflow="fold")
        for r in results:
            outcome = (
                Text(f"✘ {r['error']}", style="bold red")
                if r["error"]
                else Text("would reset" if dry_run else f"✔ reset: run {r['new_run_id']}", style="green")
            )
            where = (f"event {r['failed_event_id']}", f"event {r['reset_to']}")
            t.add_row(r["workflow_id"], *where, r["message"], outcome)
        out().print(t)
    if failed:
        raise typer.Exit(EXIT_API_ERROR)


async def _repair(settings: Any, dry_run: bool) -> list[dict[str, Any]]:
    from temporalio.service import RPCError

    from connection.client import connect
    from starters.repair import find_stuck, reset

    client = await connect(settings, service="warroom-cli")
    results = []
    for stuck in await find_stuck(client):
        result = {**dataclasses.asdict(stuck), "new_run_id": None, "error": None}
        if not dry_run:
            try:
                result["new_run_id"] = await reset(client, stuck)
            except RPCError as e:
                result["error"] = str(e)
        results.append(result)
    return results
