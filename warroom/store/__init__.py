"""The SQL store: one `Store` per process and database URL."""

from __future__ import annotations

from warroom.store.accounts import AccountStore
from warroom.store.callbacks import CallbackClaims
from warroom.store.db import Database
from warroom.store.incidents import IncidentStore
from warroom.store.links import LinkStore, UserLink
from warroom.store.migrate import migrate
from warroom.store.progress import StepProgress
from warroom.store.reviews import ReviewStore, RunbookStore
from warroom.store.rooms import RoomStore
from warroom.store.sources import SourceStore
from warroom.store.timeline import TimelineStore
from warroom.store.transcript import TranscriptStore


class Store:
    """Everything the SQL database holds, grouped by what it is for."""

    def __init__(self, url: str, *, create_schema: bool = True) -> None:
        if create_schema:
            migrate(url)
        self.db = Database(url)
        self.incidents = IncidentStore(self.db)
        self.rooms = RoomStore(self.db)
        self.links = LinkStore(self.db)
        self.timeline = TimelineStore(self.db)
        self.transcript = TranscriptStore(self.db)
        self.reviews = ReviewStore(self.db)
        self.runbooks = RunbookStore(self.db)
        self.callback_claims = CallbackClaims(self.db)
        self.step_progress = StepProgress(self.db)
        self.accounts = AccountStore(self.db)
        self.sources = SourceStore(self.db)

    def close(self) -> None:
        self.db.dispose()


__all__ = ["Database", "Store", "UserLink", "migrate"]
