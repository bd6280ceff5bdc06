"""Every IM callback route, fed raw garbage and hostile-but-correctly-signed bodies: always a clear
4xx (never a 500), one log line and a count by reason for each refusal, and the API keeps serving.

The OpenAPI fuzzing (tests/test_fuzz.py) cannot reach these routes: it cannot sign. Here every
installed platform is covered (iterating the plugin registry), the in-memory one included.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from starters.api.app import create_app
from tests.fakes import lark_api, wecom_api
from tests.fakes.dingtalk_api import robot_sign
from tests.platforms import installed
from warroom.im.plugins import platform_names
from warroom.im.sandbox.adapter import sign as sandbox_sign
from warroom.im.slack import signing as slack_signing
from warroom.settings import Settings
from warroom.store import Store

SLACK_SECRET, LARK_KEY, LARK_TOKEN, MEMORY_TOKEN = "slack-secret", "k" * 16, "lark-token", "m-secret"
DINGTALK_SECRET = "dingtalk-secret"
WECOM_CORP, WECOM_TOKEN, WECOM_KEY = "wwhostile", "wecom-token", "k" * 43
# (headers, body) or (headers, body, query): WeCom signs in the query string
Sign = Callable[[bytes], tuple[Any, ...]]


def _sandbox(settings: Settings) -> Sign:
    secret = settings.platform("sandbox").signing_secret.get_secret_value()

    def signed(body: bytes) -> tuple[dict[str, str], bytes]:
        ts = str(int(time.time()))
        return {"x-sandbox-timestamp": ts, "x-sandbox-signature": sandbox_sign(secret, ts, body)}, body

    return signed


def _slack(body: bytes) -> tuple[dict[str, str], bytes]:
    ts = str(int(time.time()))
    return {
        "x-slack-request-timestamp": ts,
        "x-slack-signature": slack_signing.sign(SLACK_SECRET, ts, body),
        "content-type": "application/json",
    }, body


def _lark(body: bytes) -> tuple[dict[str, str], bytes]:
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {"raw": body.decode("latin-1")}
    if not isinstance(payload, dict):
        payload = {"value": payload}
    return lark_api.callback(payload, encrypt_key=LARK_KEY)


def _dingtalk(body: bytes) -> tuple[dict[str, str], bytes]:
    ts = str(int(time.time() * 1000))
    return {"timestamp": ts, "sign": robot_sign(DINGTALK_SECRET, ts), "content-type": "application/json"}, body


def _wecom(body: bytes) -> tuple[dict[str, str], bytes, dict[str, str]]:
    """The body encrypted and signed as WeCom does; a JSON object becomes WeCom's flat XML first, so the
    hostile values reach the event's fields."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        fields = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in doc.items() if str(k).isidentifier())
        inner = f"<xml>{fields}</xml>"
    else:
        inner = body.decode("utf-8", "replace")
    ts, nonce = str(int(time.time())), "n0nce"
    inner = inner.encode("utf-8", "replace").decode()  # WeCom encrypts bytes: no lone surrogates reach us
    encrypted = wecom_api.encrypt(WECOM_KEY, WECOM_CORP, inner)
    envelope = f"<xml><ToUserName><![CDATA[{WECOM_CORP}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    query = {"msg_signature": wecom_api.signature(WECOM_TOKEN, ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
    return {"content-type": "text/xml"}, envelope.encode(), query


def _memory(body: bytes) -> tuple[dict[str, str], bytes]:
    return {"x-memory-signature": hmac.new(MEMORY_TOKEN.encode(), body, hashlib.sha256).hexdigest()}, body


@pytest_asyncio.fixture
async def api(client: Client, store: Store, settings: Settings, tmp_path: Path) -> AsyncIterator[Any]:
    with installed(tmp_path / "site", {"memory": "tests.platforms.memory:plugin"}):
        settings = settings.model_copy(
            update={
                "SLACK_BOT_TOKEN": "xoxb-test",
                "SLACK_SIGNING_SECRET": SLACK_SECRET,
                "LARK_APP_ID": "cli_x",
                "LARK_APP_SECRET": "s",
                "LARK_ENCRYPT_KEY": LARK_KEY,
                "LARK_VERIFICATION_TOKEN": LARK_TOKEN,
                "MEMORY_TOKEN": MEMORY_TOKEN,
                "DINGTALK_APP_KEY": "ding-key",
                "DINGTALK_APP_SECRET": DINGTALK_SECRET,
                "DINGTALK_CALLBACK_MODE": "http",
                "WECOM_CORP_ID": WECOM_CORP,
                "WECOM_SECRET": "s",
                "WECOM_AGENT_ID": "1000002",
                "WECOM_TOKEN": WECOM_TOKEN,
                "WECOM_ENCODING_AES_KEY": WECOM_KEY,
            }
        )
        app = create_app(settings, client=client, store=store)
        signers = {
            "sandbox": _sandbox(app.state.warroom.settings),
            "slack": _slack,
            "lark": _lark,
            "dingtalk": _dingtalk,
            "wecom": _wecom,
            "memory": _memory,
        }
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=30) as http:
            yield http, signers


# ---- what an attacker or a broken proxy sends -------------------------------------------------


def _hostile_values(rng: random.Random) -> list[Any]:
    deep: Any = "x"
    for _ in range(rng.randint(50, 400)):
        deep = [deep] if rng.random() < 0.5 else {"a": deep}
    return [
        None, True, 0, -1, 10**40, 1e308, float("inf"), float("nan"), "", "x" * rng.randint(1, 5000),
        "\x00", "é𝄞", "\ud800", "a\udfffb", [], {}, [1, "a", None], {"": {"": []}}, deep,
    ]  # fmt: skip


def _mutate(rng: random.Random, doc: Any, values: list[Any]) -> Any:
    """`doc` with one value somewhere replaced by a hostile one."""
    if isinstance(doc, dict) and doc:
        key = rng.choice(list(doc))
        out = dict(doc)
        out[key] = rng.choice(values) if rng.random() < 0.4 else _mutate(rng, doc[key], values)
        return out
    if isinstance(doc, list) and doc:
        i = rng.randrange(len(doc))
        return [*doc[:i], _mutate(rng, doc[i], values), *doc[i + 1 :]]
    return rng.choice(values)


SHAPES: dict[str, list[dict[str, Any]]] = {
    "sandbox": [
        {"type": "action", "event_id": "e1", "chat_id": "C1", "user_id": "U1", "action": "acknowledge"},
        {"type": "message", "event_id": "e2", "chat_id": "C1", "message_id": "1", "user_id": "U1", "text": "hi"},
    ],
    "slack": [
        {
            "type": "event_callback",
            "event_id": "Ev1",
            "event": {"type": "message", "channel": "C1", "user": "U1", "text": "hi", "ts": "1.2"},
        },
        {"type": "event_callback", "event_id": "Ev2", "event": {"type": "channel_archive", "channel": "C1"}},
        {"type": "url_verification", "challenge": "c"},
    ],
    "lark": [
        lark_api.card_action(
            token=LARK_TOKEN,
            chat_id="oc_1",
            message_id="om_1",
            open_id="ou_1",
            value={"warroom": 1, "action": "snooze", "minutes": 120, "card_version": 1},
        ),
        lark_api.envelope("im.message.receive_v1", {"message": {"chat_id": "oc_1"}}, token=LARK_TOKEN),
    ],
    "dingtalk": [
        {
            "conversationId": "cid1==",
            "conversationType": "2",
            "msgId": "m1",
            "msgtype": "text",
            "text": {"content": " status?"},
            "senderStaffId": "u1",
            "isInAtList": True,
        },
        {
            "userId": "u1",
            "outTrackId": "wr-c1-x",
            "spaceType": "IM_GROUP",
            "spaceId": "cid1==",
            "content": '{"cardPrivateData": {"params": {"action": "snooze", "minutes": "120", "card_version": "1"}}}',
        },
    ],
    "wecom": [
        {
            "ToUserName": WECOM_CORP,
            "FromUserName": "ann",
            "CreateTime": "1700000000",
            "MsgType": "event",
            "Event": "template_card_event",
            "EventKey": "wr:snooze:1:120",
            "TaskId": "wr" + "0" * 30 + "_v1_abcdef12",
            "CardType": "button_interaction",
            "ResponseCode": "code",
            "AgentID": "1000002",
        },
        {"ToUserName": WECOM_CORP, "FromUserName": "ann", "MsgType": "text", "Content": "hi", "MsgId": "1"},
    ],
    "memory": [{"id": "1", "chat": "mc-1", "user": "m-ann", "action": "acknowledge"}],
}


def _slack_form(payload: Any) -> bytes:
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def _bodies(platform: str, rng: random.Random) -> list[bytes]:
    values = _hostile_values(rng)
    out = [bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))) for _ in range(30)]  # raw bytes
    out += [b"\xff", b"{", b"[]", b"null", b'{"a": NaN}', b'{"a": Infinity}', b"\x00" * 10]
    for _ in range(80):
        shape = _mutate(rng, rng.choice(SHAPES.get(platform) or [{}]), values)
        out.append(json.dumps(shape, allow_nan=True).encode())
    return out


async def _post(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], body: bytes, query: dict[str, str] | None = None
) -> httpx.Response:
    return await http.post(path, content=body, headers=headers, params=query)


# ---- the tests ---------------------------------------------------------------------------------


async def test_the_reported_bodies_are_4xx_not_500(api) -> None:
    http, _ = api
    # Unsigned garbage that is not UTF-8: it used to be decoded before verification (500).
    r = await http.post(
        "/im/slack/events",
        content=b"\xff",
        headers={"x-slack-request-timestamp": str(int(time.time())), "x-slack-signature": "v0=00"},
    )
    assert r.status_code == 401, r.text
    # Signed, but shaped wrong.
    channel_list = {"type": "event_callback", "event_id": "E", "event": {"type": "message", "channel": ["C1"],
                    "user": "U1", "text": "hi", "ts": "1.2"}}  # fmt: skip
    h, b = _slack(json.dumps(channel_list).encode())
    assert (await _post(http, "/im/slack/events", h, b)).status_code == 400
    click = {"type": "block_actions", "user": {"id": "U1"}, "container": {"channel_id": "C1", "message_ts": "1"},
             "actions": [{"action_id": "wr:snooze:", "value": '{"a": "snooze", "v": 1, "m": Infinity}'}]}  # fmt: skip
    h, b = _slack(_slack_form(click))
    h["content-type"] = "application/x-www-form-urlencoded"
    assert (await _post(http, "/im/slack/interactions", h, b)).status_code == 400
    for value in ({"warroom": 1, "action": "ack", "card_version": "x"}, {"warroom": 1, "action": "snooze",
                  "minutes": float("inf"), "card_version": 1}):  # fmt: skip
        action = lark_api.card_action(token=LARK_TOKEN, chat_id="oc_1", message_id="om", open_id="ou_1", value=value)
        h, b = lark_api.callback(json.loads(json.dumps(action, allow_nan=True)), encrypt_key=LARK_KEY)
        r = await _post(http, "/im/lark/events", h, b)
        assert 400 <= r.status_code < 500 or r.json().get("toast"), r.text  # refused, or a toast saying so
        assert r.status_code != 500


async def test_signed_bodies_that_are_not_plain_json_are_400(api) -> None:
    """Python's json accepts NaN and lone surrogate escapes; signed, they used to pass as a message
    id ("nan", a 200) or fail later, in the workflow signal's encoding (a 500)."""
    http, sign = api
    nan_ts = {"type": "event_callback", "event_id": "E", "event": {"type": "message", "channel": "C1",
              "user": "U1", "text": "hi", "ts": float("nan")}}  # fmt: skip
    h, b = _slack(json.dumps(nan_ts).encode())
    r = await _post(http, "/im/slack/events", h, b)
    assert r.status_code == 400 and "NaN" in r.json()["error"]["message"], r.text
    for platform, shape in (("sandbox", SHAPES["sandbox"][0]), ("slack", SHAPES["slack"][0])):
        h, b = sign[platform](json.dumps(shape).replace('"C1"', '"\\ud800"').encode())
        r = await _post(http, f"/im/{platform}/events", h, b)
        assert r.status_code == 400 and "surrogate" in r.text, (platform, r.status_code, r.text)
    for encrypted in (True, False):
        surrogate = json.loads(json.dumps(SHAPES["lark"][1]).replace('"oc_1"', '"\\ud800"'))
        h, b = lark_api.callback(surrogate, encrypt_key=LARK_KEY, encrypted=encrypted)
        r = await _post(http, "/im/lark/events", h, b)
        assert r.status_code == 400 and "surrogate" in r.text, r.text


@pytest.mark.parametrize("platform", (*platform_names(), "memory"))
async def test_fuzzed_callbacks_never_answer_500(api, platform: str) -> None:
    http, sign = api
    if platform not in sign:
        pytest.fail(f"platform {platform!r} is installed but this suite cannot sign its callbacks: add it")
    rng = random.Random(f"hostile-{platform}")
    paths = {"slack": ["/im/slack/events", "/im/slack/interactions"], "wecom": ["/im/wecom/callback"]}.get(
        platform, [f"/im/{platform}/events"]
    )
    statuses: dict[int, int] = {}
    for body in _bodies(platform, rng):
        for path in paths:
            for signed in (False, True):
                headers, payload, *query = sign[platform](body) if signed else ({}, body)
                if path.endswith("interactions") and signed and rng.random() < 0.5:
                    headers, payload = sign[platform](_slack_form(body.decode("latin-1")))
                    headers["content-type"] = "application/x-www-form-urlencoded"
                r = await _post(http, path, headers, payload, query[0] if query else None)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                assert r.status_code < 500, f"{path} answered {r.status_code} to {payload[:200]!r}: {r.text[:300]}"
    assert statuses.get(401, 0) > 0  # the unsigned ones were refused as such
    assert (await http.get("/healthz")).status_code in (200, 503)  # still serving
    metrics = (await http.get("/metrics")).text
    assert f'warroom_callbacks_refused_total{{platform="{platform}"' in metrics or platform == "memory"
