"""WeCom (企业微信): war rooms as `appchat` groups, per-responder action cards, encrypted callbacks.

WeCom's API-created groups take no buttons, cannot be disbanded, have no join link and no
history, so War Room degrades deliberately: the group gets the status as a markdown message on
each change, every linked responder gets the status card as an application `template_card` with
Acknowledge / Snooze / Close, and dismissing posts a closing message and renames the group.

Modules: `settings`, `capabilities`, `errors` (errcodes → typed errors, with what to fix),
`api` (wechatpy's `WeChatClient`, one token per app and process, every call at
WECOM_API_BASE_URL), `naming` (chatid, group names, task ids), `text` (markdown that never pings),
`card` (the template card and the group's status message), `tables` and `state` (what the adapter
must remember across processes: rooms, cards and their single-use response codes), `crypto` and
`callbacks` (`GET|POST /im/wecom/callback`), `checks` (`warroom doctor`), `adapter`.

Importing this package is cheap: wechatpy is imported when an adapter is built.
"""

from __future__ import annotations

from warroom.im.base import ImAdapter
from warroom.im.plugin import PlatformContext, PlatformPlugin
from warroom.im.wecom.capabilities import CAPABILITIES
from warroom.im.wecom.settings import WeComSettings


def _build(context: PlatformContext) -> ImAdapter:
    from warroom.im.wecom.adapter import build_wecom_adapter

    return build_wecom_adapter(context)


plugin = PlatformPlugin(
    name="wecom",
    title="WeCom",
    settings_class=WeComSettings,
    capabilities=CAPABILITIES,
    build=_build,
    tables="warroom.im.wecom.tables",
)
