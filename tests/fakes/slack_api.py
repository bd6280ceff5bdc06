"""A protocol-faithful fake of Slack's Web API, for the real slack-sdk client to talk to.

- Every call is checked against Slack's own OpenAPI spec, read at test time from
  `../shared/specs/slack_web_openapi_v2.json` (never copied into this repository): the method
  must exist and the spec's required arguments must be present, else Slack's
  `unknown_method` / `invalid_arguments` answers. Every error code this fake answers must be
  one the spec lists for the method (or one Slack answers for any method); anything else is
  recorded in `spec_violations`, which the tests assert empty.
- Real state: users (by email), channels (name, private, creator, purpose, topic, archived,
  members), messages with blocks and metadata, pins, ephemeral messages; Slack's rules and
  error codes (`name_taken` also for archived names, `already_in_channel`, `not_in_channel`,
  `cant_update_message`, `users_not_found`, scopes → `missing_scope`…), X-OAuth-Scopes headers.
- Faults per method: 429 with Retry-After, 5xx, a dropped connection before or after the effect,
  a timeout after the effect, any Slack error code the spec lists for the method; plus
  sliding-window rate limits like Slack's tiers.
- Inbound helpers build what Slack would send the app (block_actions from the card actually
  posted, message/app_mention/channel_archive events) and sign it like Slack.

Served by uvicorn on 127.0.0.1 (a free port) through `running_fake_slack()`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import random
import re
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.routing import Route

from tests.serving import serving

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = Path(os.environ.get("WARROOM_SLACK_SPEC", REPO.parent / "shared" / "specs" / "slack_web_openapi_v2.json"))

TOKEN = "xoxb-fake-bot-token"
SIGNING_SECRET = "fake-signing-secret"
TEAM_ID, TEAM_NAME, TEAM_URL = "T0WARROOM", "War Room Test", "https://warroom-test.slack.com/"
BOT_USER_ID, BOT_ID, APP_ID = "U0BOT", "B0BOT", "A0WARROOM"
CHAOS_FAULTS = ("ratelimited", "server_error", "drop", "drop_after", "timeout_after")
ALL_SCOPES = frozenset(
    {
        "chat:write",
        "pins:write",
        "users:read",
        "users:read.email",
        "app_mentions:read",
        "groups:write",
        "groups:read",
        "groups:history",
        "channels:manage",
        "channels:read",
        "channels:history",
    }
)
# Error codes Slack answers for any method (transport, auth, arguments), beyond the spec's lists.
UNIVERSAL_ERRORS = frozenset(
    {
        "ratelimited",
        "invalid_arguments",
        "unknown_method",
        "internal_error",
        "fatal_error",
        "missing_scope",
        "not_authed",
        "invalid_auth",
        "request_timeout",
    }
)
# Codes on the current docs.slack.dev method pages that the 2021 spec's enums lack.
NEWER_ERRORS = {
    "conversations.archive": {"not_in_channel"},
    "chat.postMessage": {"invalid_blocks", "not_in_channel", "is_archived"},
    "chat.update": {"invalid_blocks", "is_archived"},
    "conversations.history": {"not_in_channel"},
    "conversations.info": {"channel_not_found"},
    "pins.add": {"not_in_channel"},
}
_NAME_OK = re.compile(r"^[a-z0-9_-]+$")
FAULT_KINDS = ("ratelimited", "server_error", "drop", "drop_after", "timeout_after", "error")


class SlackError(Exception):
    def __init__(self, code: str, status: int = 200, **extra: Any) -> None:
        super().__init__(code)
        self.code, self.status, self.extra = code, status, extra


# ---------------------------------------------------------------------------- the spec


class SlackSpec:
    """Method names, arguments and error enums from Slack's OpenAPI 2.0 document."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        doc = json.loads(path.read_text())
        self.methods: dict[str, dict[str, Any]] = {}
        for route, ops in doc["paths"].items():
            name = route.lstrip("/")
            params: dict[str, dict[str, Any]] = {}
            errors: set[str] = set()
            for op in ops.values():
                for p in op.get("parameters", []):
                    params[p["name"]] = {"required": bool(p.get("required")), "type": p.get("type"), "in": p["in"]}
                schema = (op.get("responses", {}).get("default") or {}).get("schema") or {}
                errors |= set(((schema.get("properties") or {}).get("error") or {}).get("enum") or [])
            self.methods[name] = {"params": params, "errors": errors}

    def exists(self, method: str) -> bool:
        return method in self.methods

    def problems(self, method: str, args: dict[str, Any]) -> list[str]:
        """What Slack would say is wrong with the arguments (token is checked separately)."""
        out = []
        for name, p in self.methods[method]["params"].items():
            if name == "token":
                continue
            value = args.get(name)
            if p["required"] and (value is None or value == ""):
                out.append(f"[ERROR] missing required field: {name}")
            elif value is not None and p["type"] == "boolean" and _as_bool(value) is None:
                out.append(f"[ERROR] expected boolean for field: {name}")
            elif value is not None and p["type"] == "integer" and not re.fullmatch(r"-?\d+", str(value)):
                out.append(f"[ERROR] expected integer for field: {name}")
        return out

    def allows_error(self, method: str, code: str) -> bool:
        return (
            code in UNIVERSAL_ERRORS or code in self.methods[method]["errors"] or code in NEWER_ERRORS.get(method, ())
        )

    def unknown_args(self, method: str, args: dict[str, Any]) -> set[str]:
        return set(args) - set(self.methods[method]["params"]) - {"token"}


def _as_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    s = str(v).lower()
    return True if s in ("1", "true") else False if s in ("0", "false") else None


# ---------------------------------------------------------------------------- state


@dataclass
class User:
    id: str
    email: str
    name: str
    deleted: bool = False
    is_bot: bool = False

    def obj(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "real_name": self.name,
            "deleted": self.deleted,
            "is_bot": self.is_bot,
            "profile": {"email": self.email, "real_name": self.name, "display_name": self.name},
        }


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool
    creator: str
    created: int
    purpose: str = ""
    topic: str = ""
    archived: bool = False
    members: set[str] = field(default_factory=set)
    messages: list[dict[str, Any]] = field(default_factory=list)
    pins: set[str] = field(default_factory=set)

    def obj(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_private": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_archived": self.archived,
            "is_general": False,
            "is_member": BOT_USER_ID in self.members,
            "created": self.created,
            "creator": self.creator,
            "purpose": {"value": self.purpose, "creator": BOT_USER_ID if self.purpose else "", "last_set": 0},
            "topic": {"value": self.topic, "creator": BOT_USER_ID if self.topic else "", "last_set": 0},
            "num_members": len(self.members),
        }

    def message(self, ts: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if m["ts"] == ts), None)


@dataclass
class Fault:
    kind: str
    times: int = 1  # how many calls it hits; -1: every call until cleared
    retry_after: int = 1
    status: int = 503
    delay: float = 3.0
    code: str = ""  # kind "error": answer `{"ok": false, "error": code}` (nothing applied)


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    outcome: str  # "ok", an error code, or "fault:<kind>"
    at: float


# ---------------------------------------------------------------------------- the fake


class FakeSlack:
    def __init__(self, spec: SlackSpec | None = None) -> None:
        self.spec = spec or SlackSpec()
        self.app = Starlette(routes=[Route("/api/{method}", _Endpoint(self), methods=["GET", "POST"])])
        self.url = ""
        self.reset()

    def reset(self) -> None:
        self.scopes: set[str] = set(ALL_SCOPES)
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.calls: list[Call] = []
        self.joins: Counter[tuple[str, str]] = Counter()
        self.spec_violations: list[str] = []
        self.unknown_args: dict[str, set[str]] = {}
        self.faults: dict[str, deque[Fault]] = {}
        self.limits: dict[str, tuple[int, float, int]] = {}
        self._windows: dict[str, deque[float]] = {}
        self._ids = itertools.count(1)
        self._last_ts = 0.0
        self.chaos_rate, self._rng = 0.0, random.Random(0)
        self.latency = 0.0  # seconds every request is held before it is handled (the benchmarks' L)
        self.users[BOT_USER_ID] = User(BOT_USER_ID, "warroom-bot@bots.invalid", "warroom", is_bot=True)

    # -- test controls --------------------------------------------------------------------
    def add_user(self, email: str, name: str | None = None, *, deleted: bool = False) -> str:
        uid = f"U{next(self._ids):07d}"
        self.users[uid] = User(uid, email.lower(), name or email.split("@")[0], deleted=deleted)
        return uid

    def user_id(self, email: str) -> str:
        return next(u.id for u in self.users.values() if u.email == email.lower())

    def add_channel(self, name: str, *, private: bool = False, creator: str = "U9OTHER", purpose: str = "",
                    archived: bool = False, members: set[str] | None = None) -> Channel:  # fmt: skip
        ch = Channel(self._channel_id(private), name, private, creator, int(time.time()), purpose=purpose)
        ch.archived = archived
        ch.members = set(members or {creator})
        self.channels[ch.id] = ch
        return ch

    def inject(self, method: str, kind: str, *, times: int = 1, **kw: Any) -> None:
        """Make the next `times` calls of `method` fail with `kind` (see FAULT_KINDS)."""
        assert kind in FAULT_KINDS, kind
        self.faults.setdefault(method, deque()).append(Fault(kind, times, **kw))

    def limit(self, method: str, calls: int, per_seconds: float, *, retry_after: int = 1) -> None:
        """Slack-style tier: more than `calls` in `per_seconds` → 429 with Retry-After."""
        self.limits[method] = (calls, per_seconds, retry_after)

    def chaos(self, rate: float, *, seed: int = 7, timeout_delay: float = 2.0) -> None:
        """From now on, a `rate` share of all calls meets a random fault: 429 with Retry-After,
        503, a dropped connection before or after the effect, or an answer later than the client's
        timeout (`timeout_delay`) after the effect."""
        self.chaos_rate, self._rng, self._timeout_delay = rate, random.Random(seed), timeout_delay

    def clear_faults(self) -> None:
        self.faults.clear()
        self.limits.clear()

    def count(self, method: str, outcome: str | None = "ok") -> int:
        return sum(1 for c in self.calls if c.method == method and (outcome is None or c.outcome == outcome))

    def channels_named(self, prefix: str) -> list[Channel]:
        return [c for c in self.channels.values() if c.name.startswith(prefix)]

    def bot_messages(self, channel: str, event_type: str | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.channels[channel].messages
            if m.get("user") == BOT_USER_ID
            and not m.get("subtype")
            and (event_type is None or (m.get("metadata") or {}).get("event_type") == event_type)
        ]

    # -- what Slack sends the app -----------------------------------------------------------
    def sign(self, body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        mac = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={mac}"}

    def block_actions(self, channel: str, ts: str, user: str, action_id: str) -> bytes:
        """The form body of a click on a button of message `ts`, as Slack posts it."""
        ch = self.channels[channel]
        message = ch.message(ts)
        assert message is not None, f"no message {ts} in {channel}"
        for block in message.get("blocks") or []:
            for element in block.get("elements") or []:
                if element.get("action_id") == action_id:
                    action = {
                        "type": element["type"],
                        "action_id": action_id,
                        "block_id": block.get("block_id", ""),
                        "text": element.get("text"),
                        "value": element.get("value"),
                        "action_ts": self._ts(),
                    }
                    break
            else:
                continue
            break
        else:
            raise AssertionError(f"no button {action_id} on message {ts}")
        trigger = hashlib.sha1(action["action_ts"].encode()).hexdigest()[:16]
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": self.users[user].name, "name": self.users[user].name, "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "token": "legacy-verification-token",
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": f"{next(self._ids)}.{int(time.time())}.{trigger}",
            "team": {"id": TEAM_ID, "domain": "warroom-test"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": ch.name},
            "message": message,
            "state": {"values": {}},
            "response_url": f"https://hooks.slack.com/actions/{TEAM_ID}/1/fake",
            "actions": [action],
        }
        return urlencode({"payload": json.dumps(payload)}).encode()

    def buttons(self, channel: str, ts: str) -> dict[str, dict[str, Any]]:
        message = self.channels[channel].message(ts) or {}
        return {
            e["action_id"]: e
            for b in message.get("blocks") or []
            for e in b.get("elements") or []
            if e.get("type") == "button"
        }

    def user_message(self, channel: str, user: str, text: str, *, event_type: str = "message") -> bytes:
        """Somebody posts in the channel: the message is stored and its event body returned."""
        ts = self._ts()
        message = {"type": "message", "user": user, "text": text, "ts": ts}
        self.channels[channel].messages.append(message)
        event = {**message, "channel": channel, "event_ts": ts, "channel_type": "group"}
        if event_type == "app_mention":
            event["type"] = "app_mention"
        return self._envelope(event)

    def archive_by_user(self, channel: str, user: str) -> bytes:
        self.channels[channel].archived = True
        kind = "group_archive" if self.channels[channel].is_private else "channel_archive"
        return self._envelope({"type": kind, "channel": channel, "user": user, "event_ts": self._ts()})

    def _envelope(self, event: dict[str, Any]) -> bytes:
        return json.dumps(
            {
                "token": "legacy-verification-token",
                "team_id": TEAM_ID,
                "api_app_id": APP_ID,
                "event": event,
                "type": "event_callback",
                "event_id": f"Ev{next(self._ids):08d}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
            }
        ).encode()

    # -- the Web API ------------------------------------------------------------------------
    def _channel_id(self, private: bool) -> str:
        return f"{'G' if private else 'C'}{next(self._ids):08d}"

    def _ts(self) -> str:
        now = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    def _fault(self, method: str) -> Fault | None:
        if method in self.limits:
            calls, per, retry_after = self.limits[method]
            window = self._windows.setdefault(method, deque())
            now = time.monotonic()
            while window and window[0] <= now - per:
                window.popleft()
            if len(window) >= calls:
                return Fault("ratelimited", retry_after=retry_after)
            window.append(now)
        if self.chaos_rate and self._rng.random() < self.chaos_rate:
            kind = self._rng.choice(CHAOS_FAULTS)
            return Fault(kind, delay=self._timeout_delay)
        queue = self.faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        if fault.times > 0:
            fault.times -= 1
            if fault.times == 0:
                queue.popleft()
        return fault

    def handle(self, method: str, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        """Answer one call (the effect is applied here); raises SlackError for an error answer."""
        if not self.spec.exists(method):
            raise SlackError("unknown_method")
        if not token:
            raise SlackError("not_authed")
        if token != TOKEN:
            raise SlackError("invalid_auth")
        problems = self.spec.problems(method, args)
        if problems:
            raise SlackError("invalid_arguments", response_metadata={"messages": problems})
        extra = self.spec.unknown_args(method, args)
        if extra:
            self.unknown_args.setdefault(method, set()).update(extra)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            self.spec_violations.append(f"{method}: called, but this fake does not implement it")
            raise SlackError("fatal_error")
        return handler(args)

    def _need(self, *any_of: str) -> None:
        if not self.scopes & set(any_of):
            raise SlackError("missing_scope", needed=",".join(any_of), provided=",".join(sorted(self.scopes)))

    def _chan(self, args: dict[str, Any], *, member: bool = True, writable: bool = False) -> Channel:
        ch = self.channels.get(str(args.get("channel") or args.get("channel_id") or ""))
        if ch is None or (ch.is_private and BOT_USER_ID not in ch.members):
            raise SlackError("channel_not_found")
        if writable and ch.archived:
            raise SlackError("is_archived")
        if member and BOT_USER_ID not in ch.members:
            raise SlackError("not_in_channel")
        return ch

    def _scope_for(self, ch: Channel, private: str, public: str) -> None:
        self._need(private) if ch.is_private else self._need(public)

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": TEAM_URL,
            "team": TEAM_NAME,
            "user": "warroom",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _m_conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        private = bool(_as_bool(args.get("is_private", False)))
        self._need("groups:write") if private else self._need("channels:manage", "channels:write")
        name = str(args.get("name") or "")
        if not name:
            raise SlackError("invalid_name_required")
        if len(name) > 80:
            raise SlackError("invalid_name_maxlength")
        if not _NAME_OK.match(name):
            raise SlackError("invalid_name_specials")
        if any(c.name == name for c in self.channels.values()):
            raise SlackError("name_taken")  # archived channels keep their names
        ch = Channel(self._channel_id(private), name, private, BOT_USER_ID, int(time.time()), members={BOT_USER_ID})
        self.channels[ch.id] = ch
        self.joins[(ch.id, BOT_USER_ID)] += 1
        return {"channel": ch.obj()}

    def _m_conversations_setPurpose(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._set_text(args, "purpose")

    def _m_conversations_setTopic(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._set_text(args, "topic")

    def _set_text(self, args: dict[str, Any], which: str) -> dict[str, Any]:
        ch = self._chan(args, writable=True)
        self._scope_for(ch, "groups:write", "channels:manage")
        value = str(args.get(which) or "")
        if len(value) > 250:
            raise SlackError("too_long")
        setattr(ch, which, value)
        ch.messages.append(
            {"type": "message", "subtype": f"channel_{which}", "user": BOT_USER_ID, "text": value, "ts": self._ts()}
        )
        return {"channel": ch.obj()}

    def _m_conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        types = set(str(args.get("types") or "public_channel").split(","))
        if "private_channel" in types:
            self._need("groups:read")
        if "public_channel" in types:
            self._need("channels:read")
        exclude_archived = bool(_as_bool(args.get("exclude_archived", False)))
        visible = [
            c
            for c in self.channels.values()
            if ("private_channel" if c.is_private else "public_channel") in types
            and (not c.is_private or BOT_USER_ID in c.members)
            and not (exclude_archived and c.archived)
        ]
        return self._page(args, [c.obj() for c in visible], "channels", max_limit=1000, default=100)

    def _m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._chan(args, member=False)
        self._scope_for(ch, "groups:read", "channels:read")
        return {"channel": ch.obj()}

    def _m_conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._chan(args, writable=True)
        self._scope_for(ch, "groups:write", "channels:manage")
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if not users:
            raise SlackError("no_user")
        if len(users) > 1000:
            raise SlackError("too_many_users")
        force = bool(_as_bool(args.get("force", False)))
        errors = []
        for u in users:
            if u == BOT_USER_ID:
                errors.append({"user": u, "ok": False, "error": "cant_invite_self"})
            elif u not in self.users or self.users[u].deleted:
                errors.append({"user": u, "ok": False, "error": "user_not_found"})
            elif u in ch.members:
                errors.append({"user": u, "ok": False, "error": "already_in_channel"})
        failed = {e["user"] for e in errors}
        new = [u for u in users if u not in failed]
        hard = [e for e in errors if e["error"] != "already_in_channel"]
        if hard and not force:
            raise SlackError(hard[0]["error"], errors=errors)
        if not new:
            raise SlackError(errors[0]["error"], errors=errors)
        for u in new:
            ch.members.add(u)
            self.joins[(ch.id, u)] += 1
            ch.messages.append({"type": "message", "subtype": "channel_join", "user": u, "text": "", "ts": self._ts()})
        if hard:
            raise SlackError(hard[0]["error"], errors=errors)  # force: the valid ones are in anyway
        return {"channel": ch.obj()}

    def _m_conversations_kick(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._chan(args, writable=True)
        self._scope_for(ch, "groups:write", "channels:manage")
        user = str(args.get("user") or "")
        if user == BOT_USER_ID:
            raise SlackError("cant_kick_self")
        if user not in self.users:
            raise SlackError("user_not_found")
        if user not in ch.members:
            raise SlackError("not_in_channel")
        ch.members.discard(user)
        return {}

    def _m_users_lookupByEmail(self, args: dict[str, Any]) -> dict[str, Any]:
        self._need("users:read.email")
        email = str(args.get("email") or "").lower()
        user = next((u for u in self.users.values() if u.email == email and not u.deleted), None)
        if user is None:
            raise SlackError("users_not_found")
        return {"user": user.obj()}

    def _blocks(self, args: dict[str, Any]) -> list[dict[str, Any]] | None:
        raw = args.get("blocks")
        if raw is None:
            return None
        blocks = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(blocks, list) or len(blocks) > 50:
            raise SlackError("invalid_blocks")
        block_ids, action_ids = set(), set()
        for b in blocks:
            if not isinstance(b, dict) or "type" not in b:
                raise SlackError("invalid_blocks")
            if b.get("block_id"):
                if b["block_id"] in block_ids or len(b["block_id"]) > 255:
                    raise SlackError("invalid_blocks")
                block_ids.add(b["block_id"])
            if b["type"] == "header" and len(b["text"]["text"]) > 150:
                raise SlackError("invalid_blocks")
            if b["type"] == "section" and len(b.get("fields") or []) > 10:
                raise SlackError("invalid_blocks")
            for e in b.get("elements") or []:
                if e.get("type") != "button":
                    continue
                if len(e["text"]["text"]) > 75 or len(str(e.get("value", ""))) > 2000 or e["action_id"] in action_ids:
                    raise SlackError("invalid_blocks")
                action_ids.add(e["action_id"])
        return blocks

    def _metadata(self, args: dict[str, Any]) -> dict[str, Any] | None:
        raw = args.get("metadata")
        if raw is None:
            return None
        md = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(md, dict) or "event_type" not in md or "event_payload" not in md:
            raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] invalid metadata"]})
        return md

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        self._need("chat:write")
        ch = self._chan(args, writable=True)
        blocks = self._blocks(args)
        if not args.get("text") and not blocks:
            raise SlackError("no_text")
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "text": str(args.get("text") or ""),
            "ts": self._ts(),
            "team": TEAM_ID,
        }
        if blocks is not None:
            message["blocks"] = blocks
        md = self._metadata(args)
        if md is not None:
            message["metadata"] = md
        ch.messages.append(message)
        return {"channel": ch.id, "ts": message["ts"], "message": _public(message)}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        self._need("chat:write")
        ch = self._chan(args)
        if ch.archived:
            raise SlackError("is_archived")
        message = ch.message(str(args.get("ts")))
        if message is None:
            raise SlackError("message_not_found")
        if message.get("user") != BOT_USER_ID:
            raise SlackError("cant_update_message")
        blocks = self._blocks(args)
        if not args.get("text") and not blocks:
            raise SlackError("no_text")
        message["text"] = str(args.get("text") or "")
        if blocks is not None:
            message["blocks"] = blocks
        md = self._metadata(args)
        if md is not None:
            message["metadata"] = md
        message["edited"] = {"user": BOT_USER_ID, "ts": self._ts()}
        return {"channel": ch.id, "ts": message["ts"], "text": message["text"], "message": _public(message)}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        self._need("chat:write")
        ch = self._chan(args, writable=True)
        user = str(args.get("user"))
        if user not in ch.members:
            raise SlackError("user_not_in_channel")
        if not args.get("text") and not args.get("blocks"):
            raise SlackError("no_text")
        ts = self._ts()
        self.ephemerals.append({"channel": ch.id, "user": user, "text": str(args.get("text") or ""), "ts": ts})
        return {"message_ts": ts}

    def _m_pins_add(self, args: dict[str, Any]) -> dict[str, Any]:
        self._need("pins:write")
        ch = self._chan(args)
        ts = str(args.get("timestamp") or "")
        if not ts:
            raise SlackError("no_item_specified")
        if ch.message(ts) is None:
            raise SlackError("message_not_found")
        if ts in ch.pins:
            raise SlackError("already_pinned")
        ch.pins.add(ts)
        return {}

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._chan(args)
        self._scope_for(ch, "groups:history", "channels:history")
        try:
            oldest = float(args.get("oldest") or 0)
        except ValueError:
            raise SlackError("invalid_ts_oldest") from None
        try:
            latest = float(args.get("latest") or 1e12)
        except ValueError:
            raise SlackError("invalid_ts_latest") from None
        inclusive = bool(_as_bool(args.get("inclusive", False)))
        with_md = bool(_as_bool(args.get("include_all_metadata", False)))
        messages = [
            _public(m, with_md)
            for m in reversed(ch.messages)
            if ((oldest <= float(m["ts"]) <= latest) if inclusive else (oldest < float(m["ts"]) < latest))
        ]
        out = self._page(args, messages, "messages", max_limit=999, default=100)
        out["has_more"] = bool(out["response_metadata"]["next_cursor"])
        out["pin_count"] = len(ch.pins)
        return out

    def _page(self, args: dict[str, Any], items: list[Any], key: str, *, max_limit: int, default: int) -> dict:
        limit = min(int(args.get("limit") or default), max_limit)
        start = 0
        if args.get("cursor"):
            try:
                start = int(base64.b64decode(str(args["cursor"])).decode().removeprefix("next:"))
            except ValueError:
                raise SlackError("invalid_cursor") from None
        page = items[start : start + limit]
        nxt = base64.b64encode(f"next:{start + limit}".encode()).decode() if start + limit < len(items) else ""
        return {key: page, "response_metadata": {"next_cursor": nxt}}

    def _m_conversations_archive(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._chan(args, member=False)
        self._scope_for(ch, "groups:write", "channels:manage")
        if ch.archived:
            raise SlackError("already_archived")
        if BOT_USER_ID not in ch.members:
            raise SlackError("not_in_channel")
        ch.archived = True
        return {}

    def _m_conversations_unarchive(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._chan(args, member=False)
        self._scope_for(ch, "groups:write", "channels:manage")
        if not ch.archived:
            raise SlackError("not_archived")
        ch.archived = False
        return {}


def _public(message: dict[str, Any], with_metadata: bool = True) -> dict[str, Any]:
    out = dict(message)
    if not with_metadata:
        out.pop("metadata", None)
    return out


class _Dropped(Exception):
    """Raised after a partial response so uvicorn drops the connection, as a network would."""


class _Endpoint:
    """The ASGI endpoint of `/api/{method}`: raw ASGI so a connection can be dropped mid-answer."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        fake = self.fake
        method = scope["path_params"]["method"]
        if fake.latency:  # held before anything is read or applied, so the call takes effect L late
            await asyncio.sleep(fake.latency)
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        args: dict[str, Any] = dict(parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True))
        ctype = headers.get("content-type", "")
        if body:
            if "application/json" in ctype:
                try:
                    parsed = json.loads(body)
                except ValueError:
                    await self._answer(send, method, args, {"ok": False, "error": "invalid_json"})
                    return
                if not isinstance(parsed, dict):
                    await self._answer(send, method, args, {"ok": False, "error": "json_not_object"})
                    return
                args.update(parsed)
            else:
                args.update(parse_qsl(body.decode(), keep_blank_values=True))
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else args.pop("token", None)
        args.pop("token", None)
        fault = fake._fault(method) if fake.spec.exists(method) else None
        if fault and fault.kind == "ratelimited":
            fake.calls.append(Call(method, args, "fault:ratelimited", time.time()))
            await self._answer(
                send, method, args, {"ok": False, "error": "ratelimited"}, 429, {"retry-after": str(fault.retry_after)}
            )
            return
        if fault and fault.kind == "server_error":
            fake.calls.append(Call(method, args, "fault:server_error", time.time()))
            await self._raw(send, fault.status, b"<html>upstream connect error</html>", "text/html")
            return
        if fault and fault.kind == "error":
            fake.calls.append(Call(method, args, fault.code, time.time()))
            if not fake.spec.allows_error(method, fault.code):
                fake.spec_violations.append(f"{method}: injected {fault.code!r}, which the spec does not list")
            await self._answer(send, method, args, {"ok": False, "error": fault.code})
            return
        if fault and fault.kind == "drop":
            fake.calls.append(Call(method, args, "fault:drop", time.time()))
            await self._drop(send)
            return
        try:
            data = {"ok": True, **fake.handle(method, args, token)}
            outcome, status = "ok", 200
        except SlackError as e:
            if fake.spec.exists(method) and not fake.spec.allows_error(method, e.code):
                fake.spec_violations.append(f"{method}: answered {e.code!r}, which the spec does not list")
            data = {"ok": False, "error": e.code, **e.extra}
            outcome, status = e.code, e.status
        if fault and fault.kind == "drop_after":
            fake.calls.append(Call(method, args, "fault:drop_after", time.time()))
            await self._drop(send)
            return
        if fault and fault.kind == "timeout_after":
            fake.calls.append(Call(method, args, "fault:timeout_after", time.time()))
            await asyncio.sleep(fault.delay)
        else:
            fake.calls.append(Call(method, args, outcome, time.time()))
        await self._answer(send, method, args, data, status)

    async def _answer(
        self, send: Any, method: str, args: dict[str, Any], data: dict[str, Any], status: int = 200,
        extra: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        headers = {
            "x-oauth-scopes": ",".join(sorted(self.fake.scopes)),
            "x-accepted-oauth-scopes": "",
            **(extra or {}),
        }
        await self._raw(send, status, json.dumps(data).encode(), "application/json; charset=utf-8", headers)

    @staticmethod
    async def _raw(send: Any, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        hs = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
        hs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": hs})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _drop(send: Any) -> None:
        body = b'{"ok": tr'
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"200")],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": True})
        raise _Dropped("connection dropped by fault injection")


# ---------------------------------------------------------------------------- serving


@contextlib.asynccontextmanager
async def running_fake_slack(fake: FakeSlack | None = None) -> AsyncIterator[FakeSlack]:
    """Serve a FakeSlack on 127.0.0.1 for the duration of the block; `fake.url` is the API base."""
    fake = fake or FakeSlack()
    async with serving(fake.app, lifespan="off", log_level="critical") as url:
        fake.url = f"{url}/api/"
        yield fake
