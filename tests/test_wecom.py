"""WeCom: the adapter through the real wechatpy against a wire-protocol fake
(`tests/fakes/wecom_api.py`), the callback crypto cross-checked with wechatpy's WeChatCrypto, and
the whole stack (Temporal dev server, worker, `warroom api` served by uvicorn) with the fake
standing in for WeCom.

Assertions are made at the fake platform's records (groups, members, messages, cards, codes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.fakes.wecom_api import FakeWeCom
from warroom.errors import PermanentImError, RateLimited, TransientImError
from warroom.im.wecom.api import WeComApi

T = TypeVar("T")


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    with FakeWeCom(late_seconds=1.5) as f:
        yield f


def make_api(fake: FakeWeCom, **extra: Any) -> WeComApi:
    s = fake.settings(**extra)
    return WeComApi(corp_id=s["WECOM_CORP_ID"], secret=s["WECOM_SECRET"], agent_id=s["WECOM_AGENT_ID"],
                    api_base_url=s["WECOM_API_BASE_URL"], timeout=s["WECOM_TIMEOUT_SECONDS"])  # fmt: skip


async def retried(call: Callable[[], Awaitable[T]], attempts: int = 8) -> T:
    """What Temporal does with an activity: retry transient failures, after the platform's delay."""
    for _ in range(attempts - 1):
        try:
            return await call()
        except RateLimited as e:
            await asyncio.sleep(min(e.retry_after, 0.1))
        except TransientImError:
            await asyncio.sleep(0.05)
    return await call()


# ---------------------------------------------------------------------------- token and errors


async def test_token_at_the_base_url_shared_and_refreshed_once_when_refused(fake: FakeWeCom):
    ann = fake.add_user("Ann", email="ann@example.com")
    api = make_api(fake)
    assert await api.userid_by_email("ann@example.com", 2) == ann
    assert len(fake.ops("gettoken")) == 1  # fetched from the fake, not qyapi.weixin.qq.com
    again = make_api(fake)  # another adapter of the same app in this process: the same token
    assert again.client is api.client
    for _ in range(3):
        await again.userid_by_email("ann@example.com", 2)
    assert len(fake.ops("gettoken")) == 1
    fake.fail("user.by_email", "42001")  # expired early: one refresh, the call succeeds
    assert await api.userid_by_email("ann@example.com", 2) == ann
    assert len(fake.ops("gettoken")) == 2
    fake.fail("user.by_email", "40014", "40014", "40014")  # refused over and over: no recursion
    with pytest.raises(TransientImError):
        await api.userid_by_email("ann@example.com", 2)
    assert len(fake.ops("gettoken")) == 3 and fake.pending_faults("user.by_email") == ["40014"]
    wrong = make_api(fake, WECOM_SECRET="not-the-secret")
    with pytest.raises(PermanentImError) as info:
        await wrong.userid_by_email("ann@example.com", 2)
    assert "WECOM_SECRET" in str(info.value)


async def test_errcodes_become_retry_decisions_with_what_to_fix(fake: FakeWeCom):
    api = make_api(fake)
    fake.fail("user.getuserid", "45009", "45033", "500", "502", "-1", "timeout_after")
    for expected in (RateLimited, RateLimited, TransientImError, TransientImError, TransientImError, TransientImError):
        with pytest.raises(expected):
            await api.userid_by_mobile("13800000001")
    assert await api.userid_by_mobile("13800000001") is None  # a miss is no error
    for code, words in ((60011, "root department"), (86008, "created by this app"), (40003, "userid"),
                        (86999, "86xxx"), (40056, "WECOM_AGENT_ID")):  # fmt: skip
        fake.fail("appchat.update", str(code))
        with pytest.raises(PermanentImError) as info:
            await api.update_chat("c1", name="x")
        assert words in str(info.value) and info.value.code == str(code)
