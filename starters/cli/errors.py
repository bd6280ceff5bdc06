"""Exit codes, and the one way a command fails: raise `CliError`, printed by `handled`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer

from starters.cli.output import err

EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_API_ERROR, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint


def fail(message: str, code: int = EXIT_API_ERROR, hint: str = "") -> NoReturn:
    raise CliError(message, code, hint)


def handled(fn: F) -> F:
    """Print a CliError as one clear line (plus a hint) on stderr and exit with its code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CliError as e:
            console = err()
            console.print(f"[bold red]Error:[/] {e.message}", soft_wrap=True)
            if e.hint:
                console.print(f"[dim]{e.hint}[/]", soft_wrap=True)
            raise typer.Exit(e.code) from None

    return wrapper  # type: ignore[return-value]
