"""`warroom migrate`: bring the store's schema to the newest revision, as a deployment step.

Every process also migrates when it starts (under the same lock), so this is for deployments
that want the schema changed once, before the new API and workers roll out (the compose file
runs it as a one-shot service the others wait for)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from starters.cli.config import settings_or_exit
from starters.cli.errors import EXIT_API_ERROR, fail, handled
from starters.cli.options import JsonOut
from starters.cli.output import out, print_json


@handled
def migrate(
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for a migration another process is running.")
    ] = 300,
    as_json: JsonOut = False,
) -> None:
    """Upgrade the database (WARROOM_DATABASE_URL) to the newest schema; safe to run anywhere, any time."""
    from sqlalchemy.engine import make_url

    from warroom.store.migrate import MigrationTimeout
    from warroom.store.migrate import migrate as upgrade

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = settings_or_exit()
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    try:
        done = upgrade(settings.database_url, wait=wait)
    except MigrationTimeout as e:
        fail(str(e), EXIT_API_ERROR)
    except Exception as e:  # unreachable database, wrong credentials, a failed migration
        fail(f"cannot migrate {where}: {e}".splitlines()[0], EXIT_API_ERROR, "Check WARROOM_DATABASE_URL.")
    if as_json:
        print_json({"database": where, "from": done.before, "to": done.after, "changed": done.changed})
    elif done.changed:
        out().print(f"[green]✔[/] {where}: schema upgraded from {done.before or 'empty'} to {done.after}.")
    else:
        out().print(f"[green]✔[/] {where}: schema already at {done.after}; nothing to do.")
