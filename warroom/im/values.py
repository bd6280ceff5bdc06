"""Strict JSON for callback bodies: what arrives from the internet must be plain, storable JSON.

Python's `json.loads` accepts `NaN` and `Infinity` (not JSON: a signed `"ts": NaN` used to pass as
a message id) and `"\\ud800"` escapes that decode to lone surrogates, strings that cannot be encoded
as UTF-8 and so fail later, in a database write or a Temporal payload, as a 500. Every callback
parser loads through `loads`, which refuses both with a `ValueError` (each parser's 400).
"""

from __future__ import annotations

import json
from typing import Any


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | str) -> Any:
    """`json.loads`, refusing NaN/Infinity and strings that are not valid Unicode."""
    value = json.loads(data, parse_constant=_no_constants)
    check_strings(value)
    return value


def check_strings(value: Any) -> None:
    """Raise `ValueError` if a string in `value` (dicts, lists, tuples, strings) is not valid Unicode."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            _valid(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _valid(key)
                pending.append(child)
        elif isinstance(item, list | tuple):
            pending.extend(item)


def _valid(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone surrogate (\\ud800-\\udfff escape): not valid Unicode") from None
