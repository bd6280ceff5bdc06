"""Feishu / Lark: war rooms as Lark group chats (lark-oapi), with encrypted, signed callbacks.

Modules: `api` (OpenAPI calls through lark-oapi), `errors` (Lark codes → typed errors), `card`
(the status card's JSON), `callbacks` (verify, decrypt, parse), `lookup` (batched user lookups),
`checks` (`warroom doctor`), `adapter` (the `ImAdapter`), `settings`, `capabilities`.

Importing this package is cheap; lark-oapi (about two seconds to import) is loaded only when an
adapter is built.
"""

from __future__ import annotations

from warroom.im.base import ImAdapter
from warroom.im.lark.capabilities import CAPABILITIES
from warroom.im.lark.settings import LarkSettings
from warroom.im.plugin import PlatformContext, PlatformPlugin


def _build(context: PlatformContext) -> ImAdapter:
    from warroom.im.lark.adapter import build_lark_adapter

    return build_lark_adapter(context)


plugin = PlatformPlugin(
    name="lark", title="Feishu/Lark", settings_class=LarkSettings, capabilities=CAPABILITIES, build=_build
)
