"""Options and arguments that several commands share, so each reads and documents them alike."""

from __future__ import annotations

from typing import Annotated

import typer

ApiUrl = Annotated[
    str | None,
    typer.Option("--api-url", help="War Room API base URL (default: $WARROOM_PUBLIC_URL or http://localhost:8000)"),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer (for scripts).")]
Actor = Annotated[
    str | None, typer.Option("--actor", help="Who is acting (default: $WARROOM_ACTOR, git user.email or $USER)")
]
IncidentId = Annotated[str, typer.Argument(help="Incident id.", show_default=False)]
Platform = Annotated[str | None, typer.Option("--platform", help="IM platform (default: the API's default)")]
Wait = Annotated[float, typer.Option("--wait", help="Seconds to wait for the war room.", min=0)]
LogLevel = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]
