"""`warroom migrate`: bring the store's schema to the newest revision, as a deployment step.

Every process also migrates when it starts (under the same lock), so this is for deployments
that want the schema changed once, before the new API and workers roll out (the compose file
runs it as a one-shot service the others wait for)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from starters.cli.config import settings_or_exit
from starters.cli.errors import EXIT_API_ERROR, EXIT_UNREACHABLE, fail, handled
from starters.cli.options import JsonOut
from starters.cli.output import out, print_json

if TYPE_CHECKING:
    from warroom.settings import Settings
    from warroom.store.migrate import Migrated


def ready_schema(settings: Settings, *, wait: float | None = None) -> Migrated:
    """The store at the newest schema, or exit with one line: 3 when the database cannot be
    reached, 1 when another process's migration outlasted `wait` or a migration failed. The API
    and the workers call it before they start, so a crash-looping process says why."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from warroom.store.migrate import MigrationTimeout
    from warroom.store.migrate import migrate as upgrade

    where = make_url(settings.database_url).render_as_string(hide_password=True)
    try:
        return upgrade(settings.database_url, wait=settings.migrate_wait_seconds if wait is None else wait)
    except MigrationTimeout as e:
        fail(str(e), EXIT_API_ERROR, "Raise WARROOM_MIGRATE_WAIT_SECONDS if the migration is just slow.")
    except OperationalError as e:  # refused, unknown host, wrong credentials, a path that cannot be opened
        fail(
            f"cannot reach the database {where}: {_first_line(e.orig or e)}",
            EXIT_UNREACHABLE,
            "Check WARROOM_DATABASE_URL and that the database server is up.",
        )
    except Exception as e:  # a migration that failed half-way: Alembic rolled its transaction back
        fail(f"cannot migrate {where}: {_first_line(e)}", EXIT_API_ERROR, "Check WARROOM_DATABASE_URL.")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


@handled
def migrate(
    wait: Annotated[
        float | None,
        typer.Option("--wait", help="Seconds to wait for a migration another process is running.", show_default="300"),
    ] = None,
    as_json: JsonOut = False,
) -> None:
    """Upgrade the database (WARROOM_DATABASE_URL) to the newest schema; safe to run anywhere, any time."""
    from sqlalchemy.engine import make_url

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = settings_or_exit()
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    done = ready_schema(settings, wait=wait)
    if as_json:
        print_json({"database": where, "from": done.before, "to": done.after, "changed": done.changed})
    elif done.changed:
        out().print(f"[green]✔[/] {where}: schema upgraded from {done.before or 'empty'} to {done.after}.")
    else:
        out().print(f"[green]✔[/] {where}: schema already at {done.after}; nothing to do.")
