"""The `warroom` app: the command groups and commands, in the order `--help` lists them."""

from __future__ import annotations

from typing import Annotated

import typer

from starters.cli import doctor, incident, migrate, processes, repair, room, users

app = typer.Typer(
    name="warroom",
    help="War Room: incident war rooms on your IM platform, orchestrated by Temporal.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    epilog="Exit codes: 0 ok, 1 the API refused the request, 2 bad usage, 3 the API is unreachable.",
)
app.add_typer(incident.app, name="incident")
app.add_typer(room.app, name="room")
app.add_typer(users.app, name="users")
app.command("doctor")(doctor.doctor)
app.command("repair")(repair.repair)
app.command("migrate")(migrate.migrate)
app.command("dev")(processes.dev)
app.command("worker")(processes.worker)
app.command("api")(processes.api)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as pkg_version

        try:
            typer.echo(f"warroom {pkg_version('warroom')}")
        except PackageNotFoundError:
            typer.echo("warroom (not installed)")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_version)
    ] = False,
) -> None:
    """War Room: incident war rooms on your IM platform, orchestrated by Temporal."""
