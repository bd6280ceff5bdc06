"""The `warroom` command line (typer + rich).

`warroom dev | worker | api` run processes; `warroom incident | room | users ...` are HTTP
clients of the War Room API (CONTRACT.md). Every client command prints human-readable output,
or the API's JSON with `--json`.

Exit codes: 0 ok, 1 the API refused or failed the request, 2 bad usage, 3 the API is unreachable.

One module per command group (`incident`, `room`, `users`, `doctor`, `repair`, `processes`),
over the pieces they share (`client`, `output`, `render`, `options`, `people`, `errors`);
`main` assembles the app. The console script is `starters.cli:app`.
"""

from starters.cli.main import app

__all__ = ["app"]
