"""`python -m starters.cli`: the `warroom` command without its console script."""

from starters.cli.main import app

app()
