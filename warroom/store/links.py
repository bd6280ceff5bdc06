"""IM user links: a person's user id on a platform, found by email/phone or set by hand."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Select, bindparam, insert, or_, select, update

from warroom.store.db import Database
from warroom.store.tables import UserLinkRow


class UserLink(BaseModel):
    platform: str
    email: str | None
    phone: str | None
    name: str
    im_user_id: str
    method: str
    linked_at: datetime


class NewLink(BaseModel):
    email: str | None
    phone: str | None
    name: str
    im_user_id: str
    method: str


# what refreshing a stored link may change (its platform and id stay)
_REFRESHED = ("email", "phone", "name", "im_user_id", "method", "linked_at")


class LinkStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def find(self, platform: str, *, email: str | None, phone: str | None) -> str | None:
        """The stored IM user id for a person (email match first, then phone)."""
        with self.db.session() as s:
            return self._find(s, platform, email, phone)

    @staticmethod
    def _find(s, platform: str, email: str | None, phone: str | None) -> str | None:  # type: ignore[no-untyped-def]
        if not email and not phone:
            return None
        rows = s.scalars(
            select(UserLinkRow).where(
                UserLinkRow.platform == platform,
                or_(
                    UserLinkRow.email == email if email else False,
                    UserLinkRow.phone == phone if phone else False,
                ),
            )
        ).all()
        by_email = next((r for r in rows if email and r.email == email), None)
        return (by_email or (rows[0] if rows else None)).im_user_id if rows else None

    def find_many(self, platform: str, people: list[tuple[str | None, str | None]]) -> list[str | None]:
        """`find` for many (email, phone) pairs in one query, in the same order."""
        emails = {e for e, _ in people if e}
        phones = {p for e, p in people if p}
        if not emails and not phones:
            return [None] * len(people)
        columns = select(UserLinkRow.email, UserLinkRow.phone, UserLinkRow.im_user_id)
        q = _matching_query(columns, platform, emails, phones)
        with self.db.reading() as conn:
            rows = conn.execute(q).all()
        by_email = {r.email: r for r in reversed(rows) if r.email}
        by_phone = {r.phone: r for r in reversed(rows) if r.phone}
        found = []
        for email, phone in people:
            row = (by_email.get(email) if email else None) or (by_phone.get(phone) if phone else None)
            found.append(row.im_user_id if row is not None else None)
        return found

    def save(
        self,
        platform: str,
        *,
        email: str | None,
        phone: str | None,
        name: str,
        im_user_id: str,
        method: str,
        now: datetime,
    ) -> None:
        """Insert or refresh the link of a person (matched by email, else by phone)."""
        self.save_many(
            platform, [NewLink(email=email, phone=phone, name=name, im_user_id=im_user_id, method=method)], now
        )

    def save_many(self, platform: str, links: list[NewLink], now: datetime) -> None:
        """Insert or refresh several links in one write transaction (Core: it runs for every room
        with new responders). A person is matched by email, else by phone, among the stored links
        and the batch's earlier ones."""
        if not links:
            return
        table = UserLinkRow.__table__
        emails = {li.email for li in links if li.email}
        phones = {li.phone for li in links if li.phone}
        with self.db.writing(read_modify_write=True) as conn:
            query = _matching_query(select(table), platform, emails, phones)
            stored = [dict(r) for r in conn.execute(query).mappings()]
            by_email = {r["email"]: r for r in reversed(stored) if r["email"]}
            by_phone = {r["phone"]: r for r in reversed(stored) if r["phone"]}
            new: list[dict] = []
            changed: dict[int, dict] = {}
            for link in links:
                row = (by_email.get(link.email) if link.email else None) or (
                    by_phone.get(link.phone) if link.phone else None
                )
                if row is None:
                    row = {"id": None, "platform": platform, "email": None, "phone": None, "name": ""}
                    new.append(row)
                elif row["id"] is not None:
                    changed[row["id"]] = row
                row.update(
                    email=link.email or row["email"],
                    phone=link.phone or row["phone"],
                    name=link.name or row["name"] or "",
                    im_user_id=link.im_user_id,
                    method=link.method,
                    linked_at=now,
                )
                # the next link of the batch may match this row
                if row["email"]:
                    by_email[row["email"]] = row
                if row["phone"]:
                    by_phone.setdefault(row["phone"], row)
            # refreshed links first, then new ones: the order the ORM's flush wrote them in
            if changed:
                set_ = {c: bindparam(f"new_{c}") for c in _REFRESHED}
                conn.execute(
                    update(table).where(table.c.id == bindparam("row_id")).values(set_),
                    [{"row_id": i, **{f"new_{c}": r[c] for c in _REFRESHED}} for i, r in changed.items()],
                )
            if new:
                conn.execute(insert(table), [{k: v for k, v in r.items() if k != "id"} for r in new])

    def list(self, platform: str | None = None) -> list[UserLink]:
        # NULLs sort first on SQLite and last on PostgreSQL by default: say it, so both agree
        q = select(UserLinkRow).order_by(
            UserLinkRow.platform, UserLinkRow.email.asc().nulls_last(), UserLinkRow.phone.asc().nulls_last()
        )
        if platform:
            q = q.where(UserLinkRow.platform == platform)
        with self.db.session() as s:
            return [
                UserLink(
                    platform=r.platform,
                    email=r.email,
                    phone=r.phone,
                    name=r.name,
                    im_user_id=r.im_user_id,
                    method=r.method,
                    linked_at=r.linked_at,
                )
                for r in s.scalars(q)
            ]


def _matching_query(q: Select, platform: str, emails: set[str], phones: set[str]) -> Select:
    """`q` narrowed to the links on `platform` with one of `emails` or `phones`, oldest first."""
    return q.where(
        UserLinkRow.platform == platform,
        or_(UserLinkRow.email.in_(sorted(emails)), UserLinkRow.phone.in_(sorted(phones))),
    ).order_by(UserLinkRow.id)
