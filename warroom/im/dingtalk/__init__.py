"""DingTalk (钉钉): war rooms as scene groups, an interactive status card, Stream-mode callbacks.

Modules: `settings`, `capabilities`, `tokens` (one access-token cache per app, per process),
`errors` (DingTalk answers → typed errors), `limits` (per-API request budgets), `api` (the
alibabacloud-dingtalk SDK for api.dingtalk.com, httpx for oapi.dingtalk.com), `naming` (group
titles, dedup ids), `text` (markdown that never pings or phishes), `card` (the card's
`cardParamMap`), `directory` (people by phone and by email), `callbacks` (HTTP robot callbacks and
the card-click payload), `stream` (the Stream-mode connection), `tables` (robot messages sent
once, in SQL: `warroom.im.sent_once`), `checks` (`warroom doctor`), `adapter` (the `ImAdapter`).

Importing this package is cheap: the SDKs are imported when an adapter is built.
"""

from __future__ import annotations

from warroom.im.base import ImAdapter
from warroom.im.dingtalk.capabilities import CAPABILITIES
from warroom.im.dingtalk.settings import DingTalkSettings
from warroom.im.plugin import PlatformContext, PlatformPlugin


def _build(context: PlatformContext) -> ImAdapter:
    from warroom.im.dingtalk.adapter import build_dingtalk_adapter

    return build_dingtalk_adapter(context)


plugin = PlatformPlugin(
    name="dingtalk",
    title="DingTalk",
    settings_class=DingTalkSettings,
    capabilities=CAPABILITIES,
    build=_build,
    tables="warroom.im.dingtalk.tables",
    long_connection=True,
)
