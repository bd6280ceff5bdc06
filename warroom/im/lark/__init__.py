"""Feishu / Lark: war rooms as Lark group chats (lark-oapi), with encrypted, signed callbacks.

Modules: `api` (OpenAPI calls through lark-oapi), `errors` (Lark codes → typed errors), `card`
(the status card's JSON), `callbacks` (verify, decrypt, parse), `lookup` (batched user lookups),
`checks` (`warroom doctor`), `adapter` (the `ImAdapter`).

Importing this package is cheap; lark-oapi (about two seconds to import) is loaded only when an
adapter is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warroom.im.lark.adapter import LarkAdapter


def build_lark_adapter(db, settings) -> LarkAdapter:  # type: ignore[no-untyped-def]
    from warroom.im.lark.adapter import build_lark_adapter as build

    return build(db, settings)
