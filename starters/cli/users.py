"""`warroom users list | link`: the links between responders and their IM accounts."""

from __future__ import annotations

from contextlib import nullcontext

import typer
from rich.table import Table

from starters.cli.client import Api
from starters.cli.errors import handled
from starters.cli.options import ApiUrl, JsonOut, Platform
from starters.cli.output import MEMBER_STYLE, ago, err, out, print_json, styled

app = typer.Typer(help="Links between responders and their IM accounts.", no_args_is_help=True)


@app.command("list")
@handled
def users_list(platform: Platform = None, api_url: ApiUrl = None, as_json: JsonOut = False) -> None:
    """List the stored links between people and IM accounts."""
    with Api(api_url) as api:
        data = api.json("GET", "/api/v1/users", params={"platform": platform})
    if as_json:
        print_json(data)
        return
    items = data.get("items") or []
    console = out()
    if not items:
        console.print("No linked users yet. Link the responders of open incidents with `warroom users link`.")
        return
    t = Table(header_style="bold dim")
    for col in ("Platform", "Name", "Email", "Phone", "IM user", "How", "Linked"):
        t.add_column(col)
    for u in items:
        t.add_row(
            u.get("platform", ""),
            u.get("name") or "",
            u.get("email") or "-",
            u.get("phone") or "-",
            u.get("im_user_id", ""),
            u.get("method", ""),
            ago(u.get("linked_at")),
        )
    console.print(t)


@app.command("link")
@handled
def users_link(platform: Platform = None, api_url: ApiUrl = None, as_json: JsonOut = False) -> None:
    """Link every responder of every open incident to their IM account (one click, all at once)."""
    with Api(api_url, timeout=300) as api:
        status = err().status("Linking users…") if not as_json else nullcontext()
        with status:
            data = api.json("POST", "/api/v1/users/link", json_body={"platform": platform} if platform else {})
    if as_json:
        print_json(data)
        return
    console = out()
    linked, unlinked = data.get("linked") or [], data.get("unlinked") or []
    console.print(f"[green]✔[/] {len(linked)} linked, [yellow]{len(unlinked)} not linked[/] on {data.get('platform')}.")
    if linked or unlinked:
        t = Table(header_style="bold dim")
        t.add_column("Responder")
        t.add_column("IM user")
        t.add_column("State")
        t.add_column("Detail", overflow="fold")
        for m in linked + unlinked:
            t.add_row(
                m.get("responder_id", ""),
                m.get("im_user_id") or "-",
                styled(m.get("state"), MEMBER_STYLE),
                m.get("detail") or "",
            )
        console.print(t)


@app.command("add")
@handled
def users_add(
    email: str,
    name: str = typer.Option("", help="shown in the console"),
    admin: bool = typer.Option(False, "--admin", help="may act on every incident"),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, envvar="WARROOM_NEW_PASSWORD"
    ),
) -> None:
    """Add (or update) a local console account in WARROOM_DATABASE_URL (password: scrypt hash)."""
    from datetime import UTC, datetime

    from starters.cli.config import settings_or_exit
    from warroom.store import Store

    if "@" not in email:
        err().print("[red]✘[/] the account's email is what the timeline records; give an email address")
        raise typer.Exit(2)
    if len(password) < 10:
        err().print("[red]✘[/] use a password of at least 10 characters")
        raise typer.Exit(2)
    store = Store(settings_or_exit().database_url)
    try:
        created = store.accounts.put(email, name=name, password=password, admin=admin, now=datetime.now(UTC))
    finally:
        store.close()
    what = "added" if created else "updated"
    out().print(f"[green]✔[/] {email} {what}{' (admin)' if admin else ''}; sign in at the console with it.")
