"""The SQL store against both backends: SQLite (a temp file) and PostgreSQL (a fresh database).

The PostgreSQL cases are marked `postgres`; they get one uniquely named database per test
session (created with `CREATE DATABASE`, dropped at the end) that is emptied before each test.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg import sql
from sqlalchemy import create_engine, func, inspect, select, text

from warroom.errors import Conflict, NotFound
from warroom.models import (
    Action,
    Alert,
    IncidentIn,
    IncidentStatus,
    Member,
    MemberState,
    Outcome,
    Responder,
    RoomState,
    Severity,
    Source,
    TimelineEntry,
    WarRoom,
)
from warroom.store import Store, migrate
from warroom.store.db import make_engine
from warroom.store.incidents import IncidentStore
from warroom.store.migrate import head_revision
from warroom.store.tables import Base, RoomRow

PG_ADMIN_USERS = ("postgres", "root")
PG_HOST = "127.0.0.1:5432"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


# ---- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session; dropped at the end."""
    admin = user = None
    errors = []
    for candidate in PG_ADMIN_USERS:
        try:
            admin = psycopg.connect(f"postgresql://{candidate}@{PG_HOST}/test", autocommit=True, connect_timeout=5)
            user = candidate
            break
        except psycopg.Error as e:
            errors.append(f"{candidate}: {e}")
    if admin is None:
        pytest.skip(f"PostgreSQL is not reachable at {PG_HOST}: {'; '.join(errors)}")
    name = f"warroom_test_{uuid.uuid4().hex[:12]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = f"postgresql+psycopg://{user}@{PG_HOST}/{name}"
        migrate(url)
        yield url
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


def _empty_pg(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE TABLE {tables} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url = request.getfixturevalue("pg_url")
    _empty_pg(url)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def body(**kw: object) -> IncidentIn:
    kw.setdefault("title", "checkout is down")
    return IncidentIn(**kw)


def alice() -> Responder:
    return Responder(name="Alice", email="alice@example.com", phone="+1 555 0100")


def bob() -> Responder:
    return Responder(email="bob@example.com")


def is_utc(dt: datetime | None) -> bool:
    return dt is not None and dt.tzinfo is not None and dt.utcoffset() == timedelta(0)


# ---- migrations --------------------------------------------------------------------------------


def _schema(url: str) -> tuple[list[str], dict[str, list[str]], list[str]]:
    engine = make_engine(url)
    try:
        insp = inspect(engine)
        tables = sorted(insp.get_table_names())
        columns = {t: [c["name"] for c in insp.get_columns(t)] for t in tables}
        with engine.connect() as conn:
            versions = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()
    return tables, columns, versions


def test_migrate_twice_is_a_noop(store: Store, db_url: str) -> None:
    store.incidents.upsert(body(id="keep-me"), T0)
    before = _schema(db_url)
    migrate(db_url)
    migrate(db_url)
    after = _schema(db_url)
    assert after == before
    tables, _, versions = after
    assert versions == [head_revision()]
    assert set(tables) == {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"}
    assert store.incidents.get("keep-me").title == "checkout is down"


def test_migrated_schema_matches_the_models(store: Store, db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_store_without_create_schema_does_not_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    s = Store(url, create_schema=False)
    try:
        assert inspect(s.db.engine).get_table_names() == []
        s.db.ping()
    finally:
        s.close()


# ---- incidents ---------------------------------------------------------------------------------


def test_create_and_get(store: Store) -> None:
    inc, created = store.incidents.upsert(
        body(id="inc-1", description="5xx", severity="critical", responders=[alice(), bob()], labels={"svc": "pay"}),
        T0,
    )
    assert created
    assert inc.id == "inc-1"
    assert inc.version == 1
    assert inc.status is IncidentStatus.TRIGGERED
    assert inc.severity is Severity.CRITICAL
    assert inc.labels == {"svc": "pay"}
    assert [r.id for r in inc.responders] == ["alice@example.com", "bob@example.com"]
    assert inc.responders[0].phone == "+15550100"
    assert inc.created_at == inc.updated_at == T0
    assert store.incidents.get("inc-1") == inc


def test_create_without_id_generates_one(store: Store) -> None:
    a, _ = store.incidents.upsert(body(), T0)
    b, _ = store.incidents.upsert(body(), T0)
    assert a.id and b.id and a.id != b.id
    assert store.incidents.get(a.id).id == a.id


def test_get_unknown_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.incidents.get("nope")


def test_update_bumps_version_only_on_change(store: Store) -> None:
    store.incidents.upsert(body(id="inc-1", responders=[alice()]), T0)
    t1 = T0 + timedelta(minutes=1)
    same, created = store.incidents.upsert(body(id="inc-1"), t1)
    assert not created
    assert same.version == 1 and same.updated_at == T0
    assert [r.id for r in same.responders] == ["alice@example.com"]  # responders not given: kept

    changed, created = store.incidents.upsert(body(id="inc-1", title="checkout is slow"), t1)
    assert not created
    assert changed.title == "checkout is slow"
    assert changed.version == 2 and changed.updated_at == t1 and changed.created_at == T0

    t2 = t1 + timedelta(minutes=1)
    replaced, _ = store.incidents.upsert(body(id="inc-1", title="checkout is slow", responders=[bob()]), t2)
    assert [r.id for r in replaced.responders] == ["bob@example.com"]
    assert replaced.version == 3 and replaced.updated_at == t2

    cleared, _ = store.incidents.upsert(body(id="inc-1", title="checkout is slow", responders=[]), t2)
    assert cleared.responders == [] and cleared.version == 4


def test_update_status_away_from_snoozed_clears_snooze(store: Store) -> None:
    store.incidents.upsert(body(id="inc-1"), T0)
    snoozed = store.incidents.apply_action("inc-1", Action.SNOOZE, actor="a", key="k1", now=T0, minutes=30)
    assert snoozed.snoozed_until == T0 + timedelta(minutes=30)
    inc, _ = store.incidents.upsert(body(id="inc-1", status="acknowledged"), T0 + timedelta(minutes=1))
    assert inc.status is IncidentStatus.ACKNOWLEDGED
    assert inc.snoozed_until is None and inc.status_before_snooze is None
    assert inc.version == snoozed.version + 1


def _pages(store: Store, *, limit: int, status: IncidentStatus | None = None) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        items, cursor = store.incidents.list(status=status, limit=limit, cursor=cursor)
        pages.append([i.id for i in items])
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not end"


def test_list_keyset_pagination_newest_first(store: Store) -> None:
    # five distinct creation times, plus three incidents created at the very same instant (ties -> id desc)
    for n in range(5):
        store.incidents.upsert(body(id=f"inc-{n}"), T0 + timedelta(seconds=n))
    tie = T0 + timedelta(seconds=2, microseconds=500)
    for suffix in ("a", "c", "b"):
        store.incidents.upsert(body(id=f"tie-{suffix}"), tie)
    expected = ["inc-4", "inc-3", "tie-c", "tie-b", "tie-a", "inc-2", "inc-1", "inc-0"]

    items, cursor = store.incidents.list()
    assert [i.id for i in items] == expected and cursor is None
    for limit in (1, 2, 3, 7):
        pages = _pages(store, limit=limit)
        assert [x for p in pages for x in p] == expected, limit
        assert all(len(p) == limit for p in pages[:-1])
        assert 1 <= len(pages[-1]) <= limit
    items, cursor = store.incidents.list(limit=8)
    assert len(items) == 8 and cursor is None


def test_list_filters_by_status(store: Store) -> None:
    for n in range(6):
        store.incidents.upsert(body(id=f"inc-{n}"), T0 + timedelta(seconds=n))
    for n in (1, 2, 4):
        store.incidents.apply_action(f"inc-{n}", Action.CLOSE, actor="x", key=f"close-{n}", now=T0)
    assert _pages(store, limit=2, status=IncidentStatus.CLOSED) == [["inc-4", "inc-2"], ["inc-1"]]
    assert _pages(store, limit=2, status=IncidentStatus.TRIGGERED) == [["inc-5", "inc-3"], ["inc-0"]]
    assert store.incidents.list(status=IncidentStatus.SNOOZED) == ([], None)


def test_recent_reads_what_similarity_needs_newest_first(store: Store) -> None:
    for n in range(4):
        store.incidents.upsert(
            body(
                id=f"inc-{n}",
                description=f"disk {n}",
                labels={"service": "db"},
                alerts=[Alert(title="disk full", service="db", region="eu")],
                responders=[alice()],
            ),
            T0 + timedelta(seconds=n),
        )
    store.incidents.apply_action("inc-3", Action.CLOSE, actor="x", key="close-3", now=T0)
    recent = store.incidents.recent(limit=3)
    assert [i.id for i in recent] == ["inc-3", "inc-2", "inc-1"]
    full = store.incidents.get("inc-3")
    assert recent[0] == full.model_copy(update={"responders": []})  # all but the responders
    assert recent[0].status is IncidentStatus.CLOSED and recent[0].alerts[0].region == "eu"
    assert all(is_utc(i.created_at) and is_utc(i.updated_at) for i in recent)

    # Built incidents are kept between calls: a change made by another process (another store
    # on the same database) shows at the next call, and a newer incident pushes the oldest out.
    IncidentStore(store.db).apply_action("inc-2", Action.ACKNOWLEDGE, actor="x", key="ack-2", now=T0)
    store.incidents.upsert(body(id="inc-9", title="newest"), T0 + timedelta(seconds=9))
    again = store.incidents.recent(limit=3)
    assert [i.id for i in again] == ["inc-9", "inc-3", "inc-2"]
    assert again[2].status is IncidentStatus.ACKNOWLEDGED and again[1] is recent[0]  # inc-3 not rebuilt


def test_list_empty_and_bad_cursor(store: Store) -> None:
    assert store.incidents.list() == ([], None)
    with pytest.raises(ValueError, match="invalid cursor"):
        store.incidents.list(cursor="not-a-cursor")


def test_set_responders(store: Store) -> None:
    store.incidents.upsert(body(id="inc-1", responders=[alice()]), T0)
    t1 = T0 + timedelta(minutes=1)
    inc = store.incidents.set_responders("inc-1", [bob(), alice()], t1)
    assert [r.id for r in inc.responders] == ["bob@example.com", "alice@example.com"]
    assert inc.version == 2 and inc.updated_at == t1
    again = store.incidents.set_responders("inc-1", [bob(), alice()], t1 + timedelta(minutes=1))
    assert again.version == 2 and again.updated_at == t1
    assert store.incidents.get("inc-1") == again
    with pytest.raises(NotFound):
        store.incidents.set_responders("nope", [bob()], t1)


def test_apply_action_exactly_once_per_key(store: Store) -> None:
    store.incidents.upsert(body(id="inc-1"), T0)
    t1 = T0 + timedelta(minutes=1)
    acked = store.incidents.apply_action("inc-1", Action.ACKNOWLEDGE, actor="alice@example.com", key="k-ack", now=t1)
    assert acked.status is IncidentStatus.ACKNOWLEDGED and acked.version == 2 and acked.updated_at == t1
    # a retry with the same key changes nothing and does not fail (even though ack is now illegal)
    for _ in range(3):
        again = store.incidents.apply_action(
            "inc-1", Action.ACKNOWLEDGE, actor="alice@example.com", key="k-ack", now=t1 + timedelta(minutes=5)
        )
        assert again == acked
    closed = store.incidents.apply_action("inc-1", Action.CLOSE, actor="bob", key="k-close", now=t1)
    assert closed.status is IncidentStatus.CLOSED and closed.version == 3
    reopened = store.incidents.apply_action("inc-1", Action.REOPEN, actor="bob", key="k-reopen", now=t1)
    assert reopened.status is IncidentStatus.TRIGGERED and reopened.version == 4


def test_apply_action_conflict_on_illegal_transition(store: Store) -> None:
    store.incidents.upsert(body(id="inc-1"), T0)
    with pytest.raises(Conflict, match="cannot reopen an incident that is triggered"):
        store.incidents.apply_action("inc-1", Action.REOPEN, actor="a", key="k1", now=T0)
    with pytest.raises(Conflict, match="snooze needs minutes"):
        store.incidents.apply_action("inc-1", Action.SNOOZE, actor="a", key="k2", now=T0, minutes=0)
    assert store.incidents.get("inc-1").version == 1
    # a refused key is not burnt: once the action becomes legal, the same key applies it
    store.incidents.apply_action("inc-1", Action.CLOSE, actor="a", key="k3", now=T0)
    assert store.incidents.apply_action("inc-1", Action.REOPEN, actor="a", key="k1", now=T0).version == 3
    with pytest.raises(NotFound):
        store.incidents.apply_action("nope", Action.CLOSE, actor="a", key="k4", now=T0)


def test_snooze_and_unsnooze_round_trip(store: Store) -> None:
    store.incidents.upsert(body(id="inc-1"), T0)
    store.incidents.apply_action("inc-1", Action.ACKNOWLEDGE, actor="a", key="k1", now=T0)
    s1 = store.incidents.apply_action("inc-1", Action.SNOOZE, actor="a", key="k2", now=T0, minutes=10)
    s2 = store.incidents.apply_action("inc-1", Action.SNOOZE, actor="a", key="k3", now=T0, minutes=60)
    assert s1.status_before_snooze is s2.status_before_snooze is IncidentStatus.ACKNOWLEDGED
    assert s2.snoozed_until == T0 + timedelta(minutes=60)
    woke = store.incidents.apply_action("inc-1", Action.UNSNOOZE, actor="system", key="k4", now=T0)
    assert woke.status is IncidentStatus.ACKNOWLEDGED and woke.snoozed_until is None
    assert store.incidents.get("inc-1") == woke


def _race(n: int, work) -> list[object]:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_same_key_is_applied_once(store: Store) -> None:
    store.incidents.upsert(body(id="inc-1"), T0)
    results = _race(
        4, lambda i: store.incidents.apply_action("inc-1", Action.ACKNOWLEDGE, actor=f"u{i}", key="same", now=T0)
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    assert {r.version for r in results} == {2}  # type: ignore[union-attr]
    inc = store.incidents.get("inc-1")
    assert inc.status is IncidentStatus.ACKNOWLEDGED and inc.version == 2


def test_concurrent_actions_do_not_lose_updates(store: Store) -> None:
    store.incidents.upsert(body(id="inc-1"), T0)
    n = 6
    results = _race(
        n,
        lambda i: store.incidents.apply_action("inc-1", Action.SNOOZE, actor="a", key=f"k{i}", now=T0, minutes=i + 1),
    )
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    assert sorted(r.version for r in results) == list(range(2, n + 2))  # type: ignore[union-attr]
    inc = store.incidents.get("inc-1")
    assert inc.version == n + 1
    assert inc.status_before_snooze is IncidentStatus.TRIGGERED


# ---- timezones ---------------------------------------------------------------------------------


def test_datetimes_come_back_aware_utc(store: Store) -> None:
    plus8 = timezone(timedelta(hours=8))
    local = datetime(2026, 3, 1, 20, 0, 0, 123456, tzinfo=plus8)  # == T0 + 123456 us
    created, _ = store.incidents.upsert(body(id="inc-1"), local)
    assert is_utc(created.created_at) and created.created_at == local
    snoozed = store.incidents.apply_action("inc-1", Action.SNOOZE, actor="a", key="k", now=local, minutes=5)
    for got in (store.incidents.get("inc-1"), store.incidents.list()[0][0]):
        for dt in (got.created_at, got.updated_at, got.snoozed_until):
            assert is_utc(dt), dt
        assert got.created_at == local
        assert got.created_at.hour == 12 and got.created_at.microsecond == 123456
        assert got.snoozed_until == snoozed.snoozed_until == local + timedelta(minutes=5)

    store.timeline.append([_entry("inc-1", 1, at=local)])
    assert is_utc(store.timeline.list("inc-1")[0].at)
    store.links.save("sandbox", email="a@x.io", phone=None, name="A", im_user_id="U1", method="email", now=local)
    assert is_utc(store.links.list()[0].linked_at)


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        store.incidents.upsert(body(id="inc-1"), datetime(2026, 3, 1, 12, 0, 0))


def test_cursor_across_timezones(store: Store) -> None:
    # the same instants given in different offsets still paginate in instant order
    plus5 = timezone(timedelta(hours=5))
    store.incidents.upsert(body(id="a"), T0)
    store.incidents.upsert(body(id="b"), (T0 + timedelta(seconds=1)).astimezone(plus5))
    store.incidents.upsert(body(id="c"), T0 + timedelta(seconds=2))
    assert _pages(store, limit=1) == [["c"], ["b"], ["a"]]


# ---- rooms -------------------------------------------------------------------------------------


def room(chat_id: str | None = "C1", generation: int = 1, **kw: object) -> WarRoom:
    kw.setdefault("state", RoomState.ACTIVE)
    return WarRoom(platform="sandbox", chat_id=chat_id, name="inc-1 db", generation=generation, **kw)


def test_room_save_and_current(store: Store) -> None:
    assert store.rooms.current("inc-1") is None
    store.rooms.save("inc-1", room(chat_id=None, state=RoomState.NONE), T0)  # nothing wanted: nothing recorded
    assert store.rooms.current("inc-1") is None

    members = [
        Member(responder_id="alice@example.com", email="alice@example.com", im_user_id="UA", state=MemberState.INVITED),
        Member(responder_id="bob", state=MemberState.UNLINKED, detail="no email or phone"),
    ]
    r1 = room(join_url="http://x/sandbox#room=C1", card_handle="7", members=members)
    store.rooms.save("inc-1", r1, T0)
    got = store.rooms.current("inc-1")
    assert got is not None
    assert got.model_dump(exclude={"card_version"}) == r1.model_dump(exclude={"card_version"})

    # saving the same chat again updates it in place
    store.rooms.save("inc-1", r1.model_copy(update={"state": RoomState.DISMISSED}), T0)
    assert store.rooms.current("inc-1").state is RoomState.DISMISSED  # type: ignore[union-attr]

    # a newer generation becomes current
    store.rooms.save("inc-1", room(chat_id="C2", generation=2), T0)
    assert store.rooms.current("inc-1").chat_id == "C2"  # type: ignore[union-attr]
    assert store.rooms.incident_for_chat("sandbox", "C1") == "inc-1"
    assert store.rooms.incident_for_chat("sandbox", "C2") == "inc-1"


def test_all_of_an_incidents_rooms_in_one_read(store: Store) -> None:
    """`all_of` is `current` and `more` at once: the first room's newest generation, then the
    newest room on each other platform, in the order they were first asked for."""
    assert store.rooms.all_of("inc-1") == (None, [])
    store.rooms.save("inc-1", room(chat_id="C1"), T0)
    store.rooms.save("inc-1", WarRoom(platform="slack", chat_id="S1", state=RoomState.ACTIVE), T0, extra=True)
    store.rooms.save("inc-1", WarRoom(platform="lark", chat_id="L1", state=RoomState.ACTIVE), T0, extra=True)
    store.rooms.save("inc-1", room(chat_id="C2", generation=2), T0)
    store.rooms.save(
        "inc-1", WarRoom(platform="slack", chat_id="S2", state=RoomState.ACTIVE, generation=2), T0, extra=True
    )
    first, more = store.rooms.all_of("inc-1")
    assert (first, more) == (store.rooms.current("inc-1"), store.rooms.more("inc-1"))
    assert first is not None and first.chat_id == "C2"
    assert [(r.platform, r.chat_id) for r in more] == [("slack", "S2"), ("lark", "L1")]


def test_a_room_that_failed_before_its_chat_existed_is_current(store: Store) -> None:
    store.rooms.save("inc-1", room(chat_id="C1", state=RoomState.DISMISSED), T0)
    store.rooms.save("inc-1", room(chat_id=None, generation=2, state=RoomState.FAILED, detail="403 no scope"), T0)
    got = store.rooms.current("inc-1")
    assert got is not None and got.state is RoomState.FAILED and got.detail == "403 no scope"
    # retrying the same generation fills in the chat-less row instead of adding one
    store.rooms.save("inc-1", room(chat_id="C3", generation=2), T0)
    assert store.rooms.current("inc-1").chat_id == "C3"  # type: ignore[union-attr]
    with store.db.session() as s:
        assert s.scalar(select(func.count()).select_from(RoomRow).where(RoomRow.incident_id == "inc-1")) == 2


def test_room_register_and_lookup(store: Store) -> None:
    assert store.rooms.incident_for_chat("sandbox", "C1") is None
    store.rooms.register("inc-1", room(state=RoomState.CREATING), T0)
    store.rooms.register("inc-1", room(), T0)  # already registered: left as it is
    assert store.rooms.current("inc-1").state is RoomState.CREATING  # type: ignore[union-attr]
    assert store.rooms.incident_for_chat("sandbox", "C1") == "inc-1"
    assert store.rooms.incident_for_chat("slack", "C1") is None  # chat ids are per platform

    # a chat never moves to another incident
    store.rooms.register("inc-2", room(), T0)
    assert store.rooms.incident_for_chat("sandbox", "C1") == "inc-1"
    with pytest.raises(ValueError, match="already belongs to incident inc-1"):
        store.rooms.save("inc-2", room(), T0)
    assert store.rooms.current("inc-2") is None

    # the same chat id on another platform is another room
    store.rooms.register("inc-2", room().model_copy(update={"platform": "slack"}), T0)
    assert store.rooms.incident_for_chat("slack", "C1") == "inc-2"


def test_room_register_concurrently(store: Store) -> None:
    results = _race(4, lambda i: store.rooms.register("inc-1", room(), T0))
    assert results == [None] * 4
    assert store.rooms.incident_for_chat("sandbox", "C1") == "inc-1"


# ---- user links --------------------------------------------------------------------------------


def test_links_find_save_list(store: Store) -> None:
    links = store.links
    assert links.find("sandbox", email=None, phone=None) is None
    assert links.find("sandbox", email="alice@example.com", phone=None) is None

    links.save("sandbox", email="alice@example.com", phone=None, name="Alice", im_user_id="UA", method="email", now=T0)
    links.save("sandbox", email=None, phone="+15550100", name="Pat", im_user_id="UP", method="phone", now=T0)
    links.save("slack", email="alice@example.com", phone=None, name="Alice", im_user_id="SA", method="manual", now=T0)

    assert links.find("sandbox", email="alice@example.com", phone=None) == "UA"
    assert links.find("slack", email="alice@example.com", phone=None) == "SA"
    assert links.find("lark", email="alice@example.com", phone=None) is None
    assert links.find("sandbox", email=None, phone="+15550100") == "UP"
    assert links.find("sandbox", email="nobody@example.com", phone="+15550100") == "UP"  # falls back to phone
    # both match different rows: the email match wins
    assert links.find("sandbox", email="alice@example.com", phone="+15550100") == "UA"

    # refreshing a link updates the one row
    t1 = T0 + timedelta(hours=1)
    links.save("sandbox", email="alice@example.com", phone=None, name="", im_user_id="UA2", method="manual", now=t1)
    assert links.find("sandbox", email="alice@example.com", phone=None) == "UA2"
    # matched by phone when the email is new: the email is filled in
    links.save("sandbox", email="pat@example.com", phone="+15550100", name="", im_user_id="UP", method="email", now=t1)
    assert links.find("sandbox", email="pat@example.com", phone=None) == "UP"

    sandbox = links.list("sandbox")
    assert [(ln.email, ln.phone, ln.name, ln.im_user_id, ln.method) for ln in sandbox] == [
        ("alice@example.com", None, "Alice", "UA2", "manual"),
        ("pat@example.com", "+15550100", "Pat", "UP", "email"),
    ]
    assert all(ln.linked_at == t1 and is_utc(ln.linked_at) for ln in sandbox)
    assert [ln.platform for ln in links.list()] == ["sandbox", "sandbox", "slack"]


def test_links_are_found_and_saved_for_many_people_at_once(store: Store) -> None:
    """One query for a room's people, with the same answers as one `find` each."""
    from warroom.store.links import NewLink

    links = store.links
    links.save("sandbox", email="alice@example.com", phone=None, name="Alice", im_user_id="UA", method="email", now=T0)
    links.save("sandbox", email=None, phone="+15550100", name="Pat", im_user_id="UP", method="phone", now=T0)
    people = [
        ("alice@example.com", "+15550100"),  # both match different rows: the email wins
        ("nobody@example.com", "+15550100"),  # falls back to the phone
        ("nobody@example.com", None),
        (None, None),
    ]
    assert links.find_many("sandbox", people) == ["UA", "UP", None, None]
    assert links.find_many("sandbox", people) == [links.find("sandbox", email=e, phone=p) for e, p in people]
    assert links.find_many("slack", people) == [None] * 4

    # a batch whose second link matches what the first one saved updates that row
    links.save_many(
        "sandbox",
        [
            NewLink(email="bob@example.com", phone=None, name="Bob", im_user_id="UB", method="email"),
            NewLink(email="bob@example.com", phone="+15550111", name="", im_user_id="UB2", method="email"),
            NewLink(email="pat@example.com", phone="+15550100", name="", im_user_id="UP", method="email"),
        ],
        T0,
    )
    rows = [(ln.email, ln.phone, ln.name, ln.im_user_id) for ln in links.list("sandbox")]
    assert rows == [
        ("alice@example.com", None, "Alice", "UA"),
        ("bob@example.com", "+15550111", "Bob", "UB2"),
        ("pat@example.com", "+15550100", "Pat", "UP"),
    ]


def test_links_list_order_is_the_same_on_every_backend(store: Store) -> None:
    for email, phone, uid in (
        (None, "+15550102", "U1"),
        ("b@example.com", None, "U2"),
        (None, "+15550101", "U3"),
        ("a@example.com", None, "U4"),
    ):
        store.links.save("sandbox", email=email, phone=phone, name="", im_user_id=uid, method="manual", now=T0)
    assert [ln.im_user_id for ln in store.links.list("sandbox")] == ["U4", "U2", "U3", "U1"]


# ---- timeline ----------------------------------------------------------------------------------


def _entry(incident_id: str, seq: int, **kw: object) -> TimelineEntry:
    kw.setdefault("at", T0 + timedelta(seconds=seq))
    return TimelineEntry(
        id=f"{incident_id}-{seq}",
        incident_id=incident_id,
        seq=seq,
        actor=str(kw.pop("actor", "system")),
        source=Source.SYSTEM,
        kind=str(kw.pop("kind", "incident.updated")),
        **kw,
    )


def test_timeline_append_is_idempotent_and_ordered(store: Store) -> None:
    tl = store.timeline
    assert tl.append([]) == 0
    assert tl.list("inc-1") == []
    # written out of order: read back by seq
    assert tl.append([_entry("inc-1", 3), _entry("inc-1", 1)]) == 2
    assert tl.append([_entry("inc-1", 1), _entry("inc-1", 3)]) == 0  # a retried write adds nothing
    assert tl.append([_entry("inc-1", 2, kind="action.refused", detail="no", outcome=Outcome.REFUSED)]) == 1
    assert tl.append([_entry("inc-1", 2), _entry("inc-1", 4), _entry("inc-2", 1)]) == 2
    got = tl.list("inc-1")
    assert [e.id for e in got] == ["inc-1-1", "inc-1-2", "inc-1-3", "inc-1-4"]
    assert got[1] == _entry("inc-1", 2, kind="action.refused", detail="no", outcome=Outcome.REFUSED)
    assert [e.id for e in tl.list("inc-2")] == ["inc-2-1"]


def test_timeline_append_tolerates_a_repeated_entry_in_one_batch(store: Store) -> None:
    assert store.timeline.append([_entry("inc-1", 1), _entry("inc-1", 1), _entry("inc-1", 2)]) == 2
    assert [e.id for e in store.timeline.list("inc-1")] == ["inc-1-1", "inc-1-2"]


def test_timeline_concurrent_appends_store_each_entry_once(store: Store) -> None:
    batch = [_entry("inc-1", n) for n in range(1, 6)]
    results = _race(4, lambda i: store.timeline.append(batch))
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    assert sum(results) == 5  # type: ignore[arg-type]
    assert [e.seq for e in store.timeline.list("inc-1")] == [1, 2, 3, 4, 5]


def test_a_callback_claim_is_taken_once_across_replicas_until_it_expires(store: Store, db_url: str) -> None:
    other = Store(db_url, create_schema=False)  # another API replica on the same database
    try:
        barrier = threading.Barrier(8)
        won: list[bool] = []

        def take(s: Store) -> None:
            barrier.wait()
            won.append(s.callback_claims.claim("slack", "v0=abc", now=T0))

        threads = [threading.Thread(target=take, args=(store if i % 2 else other,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(won) == [False] * 7 + [True]
        assert store.callback_claims.claim("lark", "v0=abc", now=T0)  # keys are per platform
        store.callback_claims.release("slack", "v0=abc")  # its events could not be delivered
        assert other.callback_claims.claim("slack", "v0=abc", now=T0)  # the platform's retry goes through
        assert not store.callback_claims.claim("slack", "v0=abc", now=T0 + timedelta(minutes=10))
        assert store.callback_claims.claim("slack", "v0=abc", now=T0 + timedelta(minutes=12))  # expired
        assert store.callback_claims.claim("slack", "\udcff" + "x" * 5000, now=T0)  # any key fits
    finally:
        other.close()


async def test_bulk_lookups_report_their_progress(store: Store) -> None:
    """One-click Link's progress: each person counted once as their lookup ends, found or not."""
    from tests.platforms.memory.adapter import MemoryAdapter
    from warroom.directory import Contact, resolve_people

    store.links.save("memory", email="bob@example.com", phone=None, name="Bob", im_user_id="m-bob",
                     method="email", now=datetime.now(UTC))  # fmt: skip
    people = [Contact(email="ann@example.com"), Contact(email="bob@example.com"), Contact(name="Nobody")]
    seen: list[tuple[int, int]] = []
    found = await resolve_people(MemoryAdapter("t"), store.links, people, progress=lambda d, t: seen.append((d, t)))
    assert [r.im_user_id for r in found] == ["m-ann", "m-bob", None]
    assert seen == [(1, 3), (2, 3), (3, 3)]
