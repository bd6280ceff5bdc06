"""Console accounts and personal API tokens (issue 18)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from functools import cache

from pydantic import BaseModel
from sqlalchemy import delete, func, select

from warroom.passwords import hash_password, verify_password
from warroom.store.db import Database
from warroom.store.tables import AccountRow, ApiTokenRow

TOKEN_PREFIX = "wrp_"  # personal tokens are recognisable in a leaked-secret scan


class Account(BaseModel):
    email: str
    name: str
    admin: bool
    has_password: bool
    created_at: datetime


class PersonalToken(BaseModel):
    id: str
    email: str
    label: str
    created_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccountStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def any(self) -> bool:
        """Is anyone configured? While not, the API token (or an open console) is the way in."""
        with self.db.session() as s:
            return bool(s.scalar(select(func.count()).select_from(AccountRow)))

    def put(self, email: str, *, name: str = "", password: str | None, admin: bool, now: datetime) -> bool:
        """Create or update a local account; True when created. `password=None` keeps the old one."""
        email = email.strip().lower()
        with self.db.session(write=True) as s:
            row = s.get(AccountRow, email, with_for_update=True)
            created = row is None
            if row is None:
                row = AccountRow(email=email, name=name, admin=admin, created_at=now)
                s.add(row)
            row.name, row.admin = name or row.name, admin
            if password is not None:
                row.password_hash = hash_password(password)
            return created

    def ensure(self, email: str, *, name: str, now: datetime) -> Account:
        """The account of someone signed in through OIDC, created on first sign-in (not admin)."""
        email = email.strip().lower()
        with self.db.session(write=True) as s:
            row = s.get(AccountRow, email, with_for_update=True)
            if row is None:
                row = AccountRow(email=email, name=name, admin=False, created_at=now)
                s.add(row)
                s.flush()
            return _account(row)

    def get(self, email: str) -> Account | None:
        with self.db.session() as s:
            row = s.get(AccountRow, email.strip().lower())
            return _account(row) if row else None

    def check(self, email: str, password: str) -> Account | None:
        """The account when the password matches, else None (unknown email: same cost, same answer)."""
        with self.db.session() as s:
            row = s.get(AccountRow, email.strip().lower())
            stored = row.password_hash if row else None
            account = _account(row) if row else None
        if not verify_password(password, stored or _dummy_hash()):
            return None
        return account if stored else None

    def list(self) -> list[Account]:
        with self.db.session() as s:
            return [_account(r) for r in s.scalars(select(AccountRow).order_by(AccountRow.email))]

    def delete(self, email: str) -> bool:
        with self.db.session() as s:
            return bool(s.execute(delete(AccountRow).where(AccountRow.email == email.strip().lower())).rowcount)

    # personal API tokens

    def new_token(self, email: str, label: str, now: datetime) -> tuple[PersonalToken, str]:
        """A new token for `email`: its record and the secret, shown once."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiTokenRow(
            id=secrets.token_hex(8), digest=_digest(secret), email=email.lower(), label=label, created_at=now
        )
        with self.db.session() as s:
            s.add(row)
            s.flush()
            return _token(row), secret

    def tokens(self, email: str) -> list[PersonalToken]:
        with self.db.session() as s:
            rows = s.scalars(select(ApiTokenRow).where(ApiTokenRow.email == email.lower()).order_by(ApiTokenRow.id))
            return [_token(r) for r in rows]

    def revoke(self, email: str, token_id: str) -> bool:
        with self.db.session() as s:
            q = delete(ApiTokenRow).where(ApiTokenRow.id == token_id, ApiTokenRow.email == email.lower())
            return bool(s.execute(q).rowcount)

    def by_token(self, secret: str) -> Account | None:
        """Whose personal token this is, or None."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        with self.db.session() as s:
            row = s.scalar(select(ApiTokenRow).where(ApiTokenRow.digest == _digest(secret)))
            if row is None:
                return None
            account = s.get(AccountRow, row.email)
            return _account(account) if account else None


@cache
def _dummy_hash() -> str:
    """What an unknown email is checked against, so it costs one scrypt too."""
    return hash_password(secrets.token_hex(8))


def _account(r: AccountRow) -> Account:
    return Account(
        email=r.email,
        name=r.name or "",
        admin=bool(r.admin),
        has_password=bool(r.password_hash),
        created_at=r.created_at,
    )


def _token(r: ApiTokenRow) -> PersonalToken:
    return PersonalToken(id=r.id, email=r.email, label=r.label, created_at=r.created_at)
