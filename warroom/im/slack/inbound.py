"""Slack callbacks (already verified) → domain events.

- Events API (`/im/slack/events`, JSON): `url_verification` is answered with its challenge;
  `event_callback` carries `message`, `app_mention`, `channel_archive`/`group_archive`,
  `channel_deleted`/`group_deleted`, `member_joined_channel`/`member_left_channel`.
- Interactivity (`/im/slack/interactions`, form field `payload`): `block_actions` from the card.

Event ids are stable across Slack's retries, so duplicates can be dropped here (one process)
and again by the workflow (everywhere): a click is `ba:<trigger_id>:<action_ts>`, a message
`msg:<channel>:<ts>` (the `message` and `app_mention` events of one message share it).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from warroom.errors import CallbackRejected
from warroom.im import values
from warroom.im.base import ActionClicked, CallbackResult, InboundEvent, MessageReceived, RoomGone
from warroom.im.slack.blocks import ACTION_PREFIX, parse_button_value

log = logging.getLogger("warroom.slack")

MESSAGE_SUBTYPES = {None, "thread_broadcast", "file_share", "me_message"}
ARCHIVE_EVENTS = {"channel_archive", "group_archive", "channel_deleted", "group_deleted"}
MEMBER_EVENTS = {"member_joined_channel", "member_left_channel"}


class SeenCache:
    """Keys seen in the last `ttl` seconds (bounded): Slack retries and replays are dropped."""

    def __init__(self, ttl: float = 3600, max_size: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.max_size = max_size
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def check_and_add(self, key: str, *, recheck: bool = False) -> bool:
        """True when `key` was seen before (and is still remembered); `recheck`: remember it,
        but answer False (a redelivery that must go through again)."""
        now = self.clock()
        while self._seen and (next(iter(self._seen.values())) < now or len(self._seen) > self.max_size):
            self._seen.popitem(last=False)
        if key in self._seen:
            return not recheck
        self._seen[key] = now + self.ttl
        return False

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)


def parse(
    body: bytes, content_type: str, *, bot_user_id: str | None, seen: SeenCache, redelivery: bool = False
) -> CallbackResult:
    """Parse a verified request body; raise `CallbackRejected(400)` when it is malformed."""
    try:
        return _parse(body, content_type, bot_user_id, seen, redelivery)
    except (AttributeError, TypeError, KeyError) as e:  # well-formed JSON of the wrong shape
        raise CallbackRejected(f"malformed Slack callback: {type(e).__name__}: {e}", status=400) from None


def _parse(
    body: bytes, content_type: str, bot_user_id: str | None, seen: SeenCache, redelivery: bool
) -> CallbackResult:
    try:
        if "application/x-www-form-urlencoded" in content_type or body.startswith(b"payload="):
            form = parse_qs(body.decode(), strict_parsing=False)
            if "payload" not in form:
                raise CallbackRejected(
                    "unsupported Slack request (no payload: slash commands are not used)", status=400
                )
            return _interaction(values.loads(form["payload"][0]), seen, redelivery)
        payload = values.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise CallbackRejected(f"malformed Slack callback: {e}", status=400) from None
    if not isinstance(payload, dict):
        raise CallbackRejected("malformed Slack callback: not a JSON object", status=400)
    kind = payload.get("type")
    if kind == "url_verification":
        return CallbackResult.with_json({"challenge": str(payload.get("challenge", ""))})
    if kind == "event_callback":
        return _event(payload, bot_user_id, seen, redelivery)
    if kind == "app_rate_limited":
        log.warning("Slack is rate limiting event delivery to this app: %s", payload)
        return CallbackResult.with_json({"ok": True})
    raise CallbackRejected(f"unknown Slack callback type {kind!r}", status=400)


def _interaction(payload: Any, seen: SeenCache, redelivery: bool) -> CallbackResult:
    if not isinstance(payload, dict):
        raise CallbackRejected("malformed Slack interaction payload", status=400)
    if payload.get("type") != "block_actions":
        return CallbackResult.with_json({"ok": True})  # shortcuts, modals: not ours
    user = (payload.get("user") or {}).get("id")
    container = payload.get("container") or {}
    chat_id = container.get("channel_id") or (payload.get("channel") or {}).get("id")
    if not user or not chat_id:
        raise CallbackRejected("block_actions without a user or a channel", status=400)
    events: list[InboundEvent] = []
    for action in payload.get("actions") or []:
        action_id = str(action.get("action_id", ""))
        if not action_id.startswith(ACTION_PREFIX):
            continue  # the "Open incident" link button and anything else that is not ours
        try:
            verb, minutes, version = parse_button_value(str(action.get("value", "")))
        except (ValueError, KeyError, TypeError) as e:
            raise CallbackRejected(f"malformed button value on {action_id}: {e}", status=400) from None
        event_id = f"ba:{payload.get('trigger_id') or container.get('message_ts', '')}:{action.get('action_ts', '')}"
        if seen.check_and_add(event_id, recheck=redelivery):
            continue
        events.append(
            ActionClicked(
                event_id=event_id,
                chat_id=chat_id,
                im_user_id=user,
                action=verb,
                minutes=minutes,
                card_version=version,
            )
        )
    return CallbackResult.with_json({"ok": True}, events=events)


def _event(envelope: dict[str, Any], bot_user_id: str | None, seen: SeenCache, redelivery: bool) -> CallbackResult:
    ok = CallbackResult.with_json({"ok": True})
    event = envelope.get("event") or {}
    envelope_id = str(envelope.get("event_id") or "")
    if envelope_id and seen.check_and_add(f"ev:{envelope_id}", recheck=redelivery):
        return ok  # a retry of an event this process already took
    for auth in envelope.get("authorizations") or []:
        if auth.get("is_bot") and auth.get("user_id"):
            bot_user_id = auth["user_id"]
            break
    kind = event.get("type")
    channel = event.get("channel")
    if kind in ("message", "app_mention"):
        if kind == "message" and event.get("subtype") not in MESSAGE_SUBTYPES:
            return ok  # edits, deletions, joins, topic changes…
        user = event.get("user")
        if not user or not channel or user == bot_user_id:
            return ok  # our own messages, and bot posts without a user
        text = str(event.get("text") or "")
        mentions = kind == "app_mention" or bool(bot_user_id and f"<@{bot_user_id}>" in text)
        ts = str(event.get("ts") or "")
        event_id = f"msg:{channel}:{ts}"
        if seen.check_and_add(event_id + (":m" if mentions else ""), recheck=redelivery):
            return ok
        return CallbackResult.with_json(
            None,
            events=[
                MessageReceived(
                    event_id=event_id, chat_id=channel, message_id=ts, im_user_id=user, text=text, mentions_bot=mentions
                )
            ],
        )
    if kind in ARCHIVE_EVENTS:
        who = event.get("user") or ""
        if not channel or (bot_user_id and who == bot_user_id):
            return ok  # we archived it ourselves (dismissal)
        return CallbackResult.with_json(
            None, events=[RoomGone(event_id=f"gone:{channel}:{envelope_id}", chat_id=channel, im_user_id=who)]
        )
    if kind in MEMBER_EVENTS:
        log.info("slack %s: %s in %s", kind, event.get("user"), channel)
    return ok
