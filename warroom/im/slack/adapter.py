"""The Slack adapter: war rooms as Slack channels, through slack-sdk's `AsyncWebClient`.

Exactly-once without idempotency keys (Slack has none):
- a room: the channel id stored for the same room generation wins; otherwise the name is
  deterministic, and on `name_taken` the existing channel is recognised as ours by the marker
  in its purpose (`[warroom incident=… key=…]`, set right after creation) or, if we crashed
  before setting it, by its creator being our bot; a channel of an earlier room of the same
  incident that was archived is unarchived and reused (reopen); anything else gets the next
  name in a deterministic sequence;
- a post: the message carries its key in Slack message metadata, and a retry finds it in
  `conversations.history` before posting again;
- invitations and archiving are idempotent by nature (`already_in_channel`,
  `already_archived` are success).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from warroom.errors import ImError, PermanentImError
from warroom.im.base import (
    CallbackRequest,
    CallbackResult,
    CardHandle,
    ChatMessage,
    ImAdapter,
    InviteResult,
    Mention,
    MessageRef,
    RoomRef,
    RoomSpec,
    SetupCheck,
    StatusCard,
)
from warroom.im.plugin import PlatformContext
from warroom.im.rich import Rich
from warroom.im.slack import blocks, inbound, mrkdwn, naming, render, signing
from warroom.im.slack.capabilities import CAPABILITIES
from warroom.im.slack.client import SlackApi
from warroom.im.slack.limits import Budget
from warroom.im.slack.settings import SlackSettings
from warroom.im.slack.setup import SlackSetup, run_setup_checks
from warroom.im.slack.users import UserDirectory

log = logging.getLogger("warroom.slack")

MARKER = re.compile(r"\[warroom incident=([^\s\]]+) key=([^\s\]]+)\]")
PER_USER_INVITE_ERRORS = frozenset(
    {
        "user_not_found",
        "no_user",
        "cant_invite",
        "user_is_bot",
        "user_is_restricted",
        "user_is_ultra_restricted",
        "ura_max_channels",
        "org_user_not_in_team",
        "user_team_not_in_channel",
        "user_not_in_team",
        "missing_profile_id",
    }
)
INVITE_DETAIL = {
    "user_not_found": "the Slack user no longer exists",
    "cant_invite": "Slack does not allow inviting this user",
    "user_is_bot": "bots cannot be invited this way",
    "user_is_restricted": "a guest account: a Slack admin must add them to the channel",
    "user_is_ultra_restricted": "a single-channel guest: a Slack admin must add them to the channel",
    "ura_max_channels": "a single-channel guest already in their one channel",
    "org_user_not_in_team": "not a member of this workspace",
}
# Slack may refuse to let a bot unarchive (`user_is_bot`, a workspace policy): then a new name.
UNARCHIVE_REFUSALS = (
    "not_archived",
    "user_is_bot",
    "not_in_channel",
    "restricted_action",
    "channel_not_found",
    "method_not_supported_for_channel_type",
)
SYSTEM_SUBTYPES = {
    "channel_join",
    "channel_leave",
    "channel_topic",
    "channel_purpose",
    "channel_name",
    "channel_archive",
    "channel_unarchive",
    "group_join",
    "group_leave",
    "group_topic",
    "group_purpose",
    "pinned_item",
    "unpinned_item",
}
HISTORY_PAGE = 200
HISTORY_MAX_PAGES = 50
DEDUP_SCAN = 100  # recent messages searched for an earlier post with the same key


class SlackAdapter(ImAdapter):
    platform = "slack"
    capabilities = CAPABILITIES

    def __init__(
        self,
        *,
        token: str,
        signing_secret: str,
        base_url: str = "https://slack.com/api/",
        public_url: str = "http://localhost:8000",
        private: bool = True,
        name_template: str = naming.DEFAULT_TEMPLATE,
        rate_scale: float = 1.0,
        timeout: float = 10.0,
        max_wait: float = 5.0,
    ) -> None:
        naming.check_template(name_template)
        self.token = token
        self.signing_secret = signing_secret
        self.public_url = public_url.rstrip("/")
        self.private = private
        self.name_template = name_template
        self.api = SlackApi(
            token, base_url=base_url, timeout=timeout, budget=Budget(scale=rate_scale, max_wait=max_wait)
        )
        self.users = UserDirectory(self.api)
        self.seen = inbound.SeenCache()
        self._identity: dict[str, Any] | None = None
        self._identity_lock = asyncio.Lock()
        self._posted: dict[str, str] = {}  # idempotency key → ts, posted by this process
        self._card_versions: dict[tuple[str, str], int] = {}
        self._card_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._topics: dict[str, str] = {}
        self._notices = inbound.SeenCache(ttl=24 * 3600)

    # ------------------------------------------------------------------ identity
    async def identity(self) -> dict[str, Any]:
        """`auth.test` once per process: the bot's user id, team and workspace URL."""
        if self._identity is None:
            async with self._identity_lock:
                if self._identity is None:
                    self._identity = await self.api.call("auth.test")
        return self._identity

    async def _bot_user(self) -> str:
        return str((await self.identity()).get("user_id") or "")

    # ------------------------------------------------------------------ rooms
    async def create_room(self, spec: RoomSpec) -> RoomRef:
        name = self.channel_name(spec)
        for candidate in naming.candidates(name):
            data = await self.api.call(
                "conversations.create", expected=("name_taken",), name=candidate, is_private=self.private
            )
            if data.get("ok"):
                channel = data["channel"]
                await self._set_purpose(channel["id"], spec)
                return await self._ref(channel["id"], channel.get("name", candidate))
            existing = await self._find_channel(candidate)
            if existing is None:
                continue  # taken by a channel we cannot see (someone else's private channel)
            verdict = await self._whose(existing, spec)
            if verdict is None:
                continue
            channel_id = existing["id"]
            if existing.get("is_archived"):
                data = await self.api.call("conversations.unarchive", expected=UNARCHIVE_REFUSALS, channel=channel_id)
                if not data.get("ok") and data.get("error") != "not_archived":
                    log.warning("cannot reopen #%s (%s): %s; trying the next name", candidate, channel_id, data)
                    continue
                log.info("reopened archived channel #%s (%s) for %s", candidate, channel_id, spec.idempotency_key)
            if verdict != "marked":
                await self._set_purpose(channel_id, spec)
            return await self._ref(channel_id, existing.get("name", candidate))
        raise PermanentImError(
            f"slack conversations.create: the names {name!r} to {naming.candidates(name)[-1]!r} are all taken by "
            "channels that are not this incident's — rename or archive them, or change WARROOM_SLACK_CHANNEL_TEMPLATE",
            platform="slack",
            code="name_taken",
        )

    def channel_name(self, spec: RoomSpec) -> str:
        """The channel name for `spec`: the template filled from the incident, deterministically."""
        title = spec.name
        prefix = f"inc-{spec.incident_id}"
        if title.startswith(prefix):
            title = title[len(prefix) :]
        title = title.replace(spec.incident_id, " ")  # a rule's name has it too: the template has {id}
        return naming.channel_name(
            self.name_template, incident_id=spec.incident_id, title=title, created=spec.incident_created_at
        )

    async def _find_channel(self, name: str) -> dict[str, Any] | None:
        cursor = None
        for _ in range(HISTORY_MAX_PAGES):
            data = await self.api.call(
                "conversations.list",
                types="public_channel,private_channel",
                exclude_archived=False,
                limit=1000,
                cursor=cursor,
            )
            for channel in data.get("channels") or []:
                if channel.get("name") == name:
                    return channel
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    async def _whose(self, channel: dict[str, Any], spec: RoomSpec) -> str | None:
        """ "marked": ours for this very key; "adopt": ours (created by our bot, not marked yet,
        or an archived room of the same incident to reopen); None: somebody else's."""
        purpose = str((channel.get("purpose") or {}).get("value") or "")
        m = MARKER.search(purpose)
        if m:
            incident_id, key = m.group(1), m.group(2)
            if key == spec.idempotency_key:
                return "marked"
            if incident_id == spec.incident_id and channel.get("is_archived"):
                return "adopt"
            return None
        if channel.get("creator") and channel.get("creator") == await self._bot_user():
            return "adopt"
        return None

    async def _set_purpose(self, channel_id: str, spec: RoomSpec) -> None:
        marker = f"[warroom incident={spec.incident_id} key={spec.idempotency_key}]"
        text = f"War room of incident {spec.incident_id}" + (f": {spec.url}" if spec.url else "")
        text = text[: max(250 - len(marker) - 1, 0)]
        await self.api.call("conversations.setPurpose", channel=channel_id, purpose=f"{text} {marker}".strip())

    async def _ref(self, channel_id: str, name: str) -> RoomRef:
        return RoomRef(chat_id=channel_id, name=name, join_url=await self.join_url(channel_id))

    async def join_url(self, chat_id: str) -> str | None:
        """The channel in the workspace's web/desktop app (members open it; others ask to join)."""
        ident = await self.identity()
        url = str(ident.get("url") or "")
        if url:
            return f"{url.rstrip('/')}/archives/{chat_id}"
        return f"https://slack.com/app_redirect?channel={chat_id}&team={ident.get('team_id', '')}"

    async def dismiss_room(self, chat_id: str) -> None:
        await self.api.call(
            "conversations.archive", expected=("already_archived", "channel_not_found"), channel=chat_id
        )
        self._topics.pop(chat_id, None)

    # ------------------------------------------------------------------ members
    async def lookup_user(self, *, email: str | None, phone: str | None) -> str | None:
        if not email:
            return None  # Slack cannot look people up by phone
        return await self.users.by_email(email)

    def forget_misses(self) -> None:
        self.users.forget_misses()

    async def add_members(self, chat_id: str, im_user_ids: list[str]) -> list[InviteResult]:
        ids = list(dict.fromkeys(u for u in im_user_ids if u))
        if not ids:
            return []
        expected = ("already_in_channel", "cant_invite_self", *PER_USER_INVITE_ERRORS)
        data = await self.api.call("conversations.invite", expected=expected, channel=chat_id, users=ids, force=True)
        # With `force`, Slack invites the valid ids and lists the others in `errors`.
        failed = {e.get("user"): str(e.get("error", "")) for e in data.get("errors") or [] if isinstance(e, dict)}
        if data.get("ok") or failed:
            return [self._invite_result(u, failed.get(u)) for u in ids]
        code = str(data.get("error"))
        if len(ids) == 1:
            return [self._invite_result(ids[0], code)]
        # An error about the batch as a whole, not per person: find out one by one.
        results = []
        for u in ids:
            results += await self.add_members(chat_id, [u])
        return results

    @staticmethod
    def _invite_result(user: str, code: str | None) -> InviteResult:
        if not code or code in ("already_in_channel", "cant_invite_self"):
            return InviteResult(im_user_id=user, ok=True, detail="already in the channel" if code else "")
        return InviteResult(im_user_id=user, ok=False, detail=f"{code}: {INVITE_DETAIL.get(code, 'not invited')}")

    async def remove_members(self, chat_id: str, im_user_ids: list[str]) -> None:
        for user in dict.fromkeys(im_user_ids):
            await self.api.call(
                "conversations.kick",
                expected=("not_in_channel", "user_not_found", "cant_kick_self"),
                channel=chat_id,
                user=user,
            )

    # ------------------------------------------------------------------ posts
    async def _find_posted(self, chat_id: str, key: str) -> str | None:
        """The ts of an earlier post with this key: this process's memory, else the channel's
        recent history (the answer to an earlier attempt may have been lost)."""
        if key in self._posted:
            return self._posted[key]
        data = await self.api.call(
            "conversations.history",
            expected=("missing_scope",),
            channel=chat_id,
            limit=DEDUP_SCAN,
            include_all_metadata=True,
        )
        if not data.get("ok"):
            log.warning("cannot read #%s history to avoid duplicate posts: %s", chat_id, data.get("error"))
            return None
        for message in data.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("key") == key:
                self._posted[key] = message["ts"]
                return str(message["ts"])
        return None

    async def post_card(self, chat_id: str, card: StatusCard, idempotency_key: str) -> CardHandle:
        ts = await self._find_posted(chat_id, idempotency_key)
        if ts is None:
            data = await self.api.call(
                "chat.postMessage",
                channel=chat_id,
                text=blocks.fallback_text(card),
                blocks=blocks.render(card),
                metadata=blocks.card_metadata(card, idempotency_key),
                unfurl_links=False,
                unfurl_media=False,
            )
            ts = str(data["ts"])
            self._posted[idempotency_key] = ts
        self._card_versions[(chat_id, ts)] = max(self._card_versions.get((chat_id, ts), 0), card.version)
        await self._sync_topic(chat_id, card)
        return CardHandle(ts)

    async def pin_card(self, chat_id: str, handle: CardHandle) -> None:
        await self.api.call(
            "pins.add", expected=("already_pinned", "too_many_pins", "not_pinnable"), channel=chat_id, timestamp=handle
        )

    async def update_card(self, chat_id: str, handle: CardHandle, card: StatusCard) -> None:
        """`chat.update` of the pinned card; within this process an older version never
        overwrites a newer one (a late retry of an earlier update is skipped)."""
        slot = (chat_id, handle)
        lock = self._card_locks.setdefault(slot, asyncio.Lock())
        async with lock:
            if card.version < self._card_versions.get(slot, 0):
                log.info("skipping card v%s of %s: v%s is shown", card.version, slot, self._card_versions[slot])
                return
            await self.api.call(
                "chat.update",
                channel=chat_id,
                ts=handle,
                text=blocks.fallback_text(card),
                blocks=blocks.render(card),
            )
            self._card_versions[slot] = card.version
        await self._sync_topic(chat_id, card)

    async def _sync_topic(self, chat_id: str, card: StatusCard) -> None:
        """Keep the channel topic at severity · status · title · link (only when it changes)."""
        wanted = blocks.topic(card)
        if chat_id not in self._topics:
            info = await self.api.call("conversations.info", expected=("missing_scope",), channel=chat_id)
            self._topics[chat_id] = str(((info.get("channel") or {}).get("topic") or {}).get("value") or "")
        if self._topics[chat_id] == wanted:
            return
        await self.api.call("conversations.setTopic", channel=chat_id, topic=wanted)
        self._topics[chat_id] = wanted

    async def post_message(
        self, chat_id: str, text: str, idempotency_key: str, *, mentions: Sequence[Mention] = ()
    ) -> MessageRef:
        ts = await self._find_posted(chat_id, idempotency_key)
        if ts is None:
            data = await self.api.call(
                "chat.postMessage",
                channel=chat_id,
                text=mrkdwn.message(text, [m.im_user_id for m in mentions]),
                metadata=blocks.message_metadata(idempotency_key),
                unfurl_links=False,
            )
            ts = str(data["ts"])
            self._posted[idempotency_key] = ts
        return MessageRef(message_id=ts)

    async def post_rich(self, chat_id: str, rich: Rich, idempotency_key: str) -> MessageRef:
        """mrkdwn with our links (warroom/im/slack/render.py); found again by its key like any post."""
        ts = await self._find_posted(chat_id, idempotency_key)
        if ts is None:
            data = await self.api.call(
                "chat.postMessage",
                channel=chat_id,
                text=render.render(rich),
                metadata=blocks.message_metadata(idempotency_key),
                unfurl_links=False,
            )
            ts = str(data["ts"])
            self._posted[idempotency_key] = ts
        return MessageRef(message_id=ts)

    async def edit_rich(self, chat_id: str, message_id: str, rich: Rich) -> None:
        await self.api.call("chat.update", channel=chat_id, ts=message_id, text=render.render(rich))

    async def post_notice(self, chat_id: str, im_user_id: str, text: str, idempotency_key: str) -> None:
        """An ephemeral message only `im_user_id` sees (a refused click). Ephemeral messages
        leave no trace to look up, so a retry after a lost answer may show it twice; showing it
        to someone who left the channel falls back to a normal post."""
        if self._notices.check_and_add(idempotency_key):
            return
        try:
            data = await self.api.call(
                "chat.postEphemeral",
                expected=("user_not_in_channel",),
                channel=chat_id,
                user=im_user_id,
                text=mrkdwn.escape(text),
            )
        except ImError:
            self._notices.forget(idempotency_key)
            raise
        if not data.get("ok"):
            await self.post_message(chat_id, text, idempotency_key, mentions=[Mention(im_user_id=im_user_id)])

    async def fetch_history(self, chat_id: str, since: datetime | None = None) -> list[ChatMessage]:
        out: list[ChatMessage] = []
        cursor = None
        for _ in range(HISTORY_MAX_PAGES):
            data = await self.api.call(
                "conversations.history",
                channel=chat_id,
                limit=HISTORY_PAGE,
                cursor=cursor,
                oldest=f"{since.timestamp():.6f}" if since else None,
                include_all_metadata=True,
            )
            for m in data.get("messages") or []:
                if m.get("subtype") in SYSTEM_SUBTYPES:
                    continue
                if ((m.get("metadata") or {}).get("event_type")) == blocks.CARD_EVENT_TYPE:
                    continue
                out.append(
                    ChatMessage(
                        message_id=str(m["ts"]),
                        chat_id=chat_id,
                        author=str(m.get("user") or m.get("bot_id") or ""),
                        text=str(m.get("text") or ""),
                        at=datetime.fromtimestamp(float(m["ts"]), UTC),
                    )
                )
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor or not data.get("has_more", True):
                break
        return sorted(out, key=lambda m: float(m.message_id))

    # ------------------------------------------------------------------ inbound
    def handle_callback(self, request: CallbackRequest) -> CallbackResult:
        """Verify, then parse. The signature is the request's replay key (the API takes each
        once, across replicas). Slack's retry headers are not signed, so they never exempt a
        request from that; they only let an event whose first delivery failed on our side
        (`X-Slack-Retry-Reason` other than `http_timeout`) past this process's event-id cache
        (the workflow drops it if the first delivery did arrive)."""
        signing.verify(self.signing_secret, request.headers, request.body)
        reason = request.headers.get("x-slack-retry-reason", "") if "x-slack-retry-num" in request.headers else ""
        bot_user = str(self._identity.get("user_id") or "") if self._identity else None
        result = inbound.parse(
            request.body,
            request.headers.get("content-type", ""),
            bot_user_id=bot_user,
            seen=self.seen,
            redelivery=bool(reason) and reason != "http_timeout",
        )
        return result.model_copy(update={"replay_key": request.headers.get(signing.SIGNATURE_HEADER, "")})

    # ------------------------------------------------------------------ setup
    async def setup_checks(self) -> list[SetupCheck]:
        return await run_setup_checks(
            SlackSetup(self.token, self.signing_secret, self.private, self.public_url, self.api, self.identity)
        )

    async def aclose(self) -> None:
        await self.api.aclose()


def build_slack_adapter(context: PlatformContext) -> SlackAdapter:
    settings: SlackSettings = context.settings
    return SlackAdapter(
        token=settings.bot_token.get_secret_value(),
        signing_secret=settings.signing_secret.get_secret_value(),
        base_url=settings.api_base_url,
        public_url=context.public_url,
        private=settings.private_channels,
        name_template=settings.channel_template,
        rate_scale=settings.rate_scale,
        timeout=settings.timeout_seconds,
    )
