"""Everything the assistant may know about one incident, loaded from the store.

The workflow passes its own view of the incident and the room (newer than the store's); the
timeline, the transcript, the runbooks and the other incidents come from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from warroom.ai import transcript
from warroom.ai.retrieval import Doc
from warroom.ai.runbooks import Runbook, knowledge_base, section_docs
from warroom.models import Incident, TimelineEntry, TimelineKind, WarRoom
from warroom.settings import Settings
from warroom.store import Store
from warroom.store.reviews import Citation
from warroom.store.transcript import TranscriptMessage

# Timeline kinds that are bookkeeping rather than events a person cares about.
NOISE = frozenset({TimelineKind.CARD_POSTED, TimelineKind.CARD_UPDATED, TimelineKind.MEMBER_INVITED})


@dataclass
class IncidentContext:
    incident: Incident
    room: WarRoom | None
    timeline: list[TimelineEntry]
    messages: list[TranscriptMessage]
    runbooks: list[Runbook]
    public_url: str
    names: dict[str, str] = field(default_factory=dict)
    others: list[Incident] = field(default_factory=list)  # other incidents, for similarity

    # ---- citable pieces
    def entry_text(self, e: TimelineEntry) -> str:
        outcome = "" if e.outcome.value == "ok" else f" [{e.outcome.value}]"
        detail = transcript.one_line(e.detail, 240)
        return f"{e.kind}{outcome} by {e.actor} ({e.source.value})" + (f": {detail}" if detail else "")

    def docs(self, *, with_runbooks: bool = True, bot_messages: bool = False) -> list[Doc]:
        docs = [
            Doc(id=f"T:{e.id}", text=self.entry_text(e), kind="timeline", meta={"at": e.at})
            for e in self.timeline
            if e.kind not in NOISE
        ]
        docs += [
            Doc(
                id=f"M:{m.message_id}",
                text=f"{transcript.who(m, self.names)}: {transcript.one_line(m.text)}",
                kind="message",
                meta={"at": m.at},
            )
            for m in self.messages
            if bot_messages or not m.from_bot
        ]
        if with_runbooks:
            docs += section_docs(self.runbooks)
        return docs

    def human_messages(self) -> list[TranscriptMessage]:
        return [m for m in self.messages if not m.from_bot]

    def citation(self, cid: str) -> Citation | None:
        kind, _, ident = cid.partition(":")
        if kind == "T":
            e = next((e for e in self.timeline if e.id == ident), None)
            if e:
                return Citation(id=cid, kind="timeline", at=e.at, actor=e.actor, text=self.entry_text(e))
        elif kind == "M":
            m = next((m for m in self.messages if m.message_id == ident), None)
            if m:
                return Citation(
                    id=cid,
                    kind="message",
                    at=m.at,
                    actor=transcript.who(m, self.names),
                    text=transcript.one_line(m.text, 300),
                )
        elif kind == "R":
            b = next((b for b in self.runbooks if b.name == ident), None)
            if b:
                return Citation(id=cid, kind="runbook", text=b.title, url=self.runbook_url(b))
        return None

    def runbook_url(self, b: Runbook) -> str:
        """Where to read it: the runbook's own page when it names one, and always our API."""
        api = f"{self.public_url.rstrip('/')}/api/v1/runbooks/{b.name}"
        return f"{b.url} · {api}" if b.url else api

    def console_url(self, anchor: str = "") -> str:
        """The incident's page in the web console (timeline entries are anchored `#t-<id>`)."""
        return f"{self.public_url.rstrip('/')}/incidents/{self.incident.id}{anchor}"

    def console_runbook_url(self, name: str) -> str:
        return f"{self.public_url.rstrip('/')}/runbooks/{name}"

    def incident_url(self) -> str:
        return f"{self.public_url.rstrip('/')}/api/v1/incidents/{self.incident.id}"


def load(
    store: Store,
    settings: Settings,
    incident: Incident,
    room: WarRoom | None,
    *,
    transcript_limit: int = 400,
    with_others: bool = False,
) -> IncidentContext:
    """Read what the assistant needs (synchronous SQL: call it in a thread from async code)."""
    others: list[Incident] = []
    if with_others and settings.ai_similar_incidents:
        others = [i for i in store.incidents.recent(limit=200) if i.id != incident.id]
    return IncidentContext(
        incident=incident,
        room=room,
        timeline=store.timeline.list(incident.id),
        messages=store.transcript.list(incident.id, limit=transcript_limit),
        runbooks=knowledge_base(settings.runbooks_dir, store.runbooks.all()),
        public_url=settings.public_url,
        names=transcript.people(room),
        others=others,
    )
