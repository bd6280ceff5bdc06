"""The post-incident review: Markdown with fixed sections, every claim citing its sources.

`offline()` builds it from the timeline and the transcript alone; a model's draft goes through
`finalize()` too, which keeps only citations that exist, marks claims without a source, fills
in any section the model left out, and appends a Sources list a reader can follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from warroom.ai import transcript
from warroom.ai.context import NOISE, IncidentContext
from warroom.ai.impact import ImpactFacts
from warroom.ai.redact import hide_secrets
from warroom.ai.signals import CHANGE, NOT_CAUSE, STATE
from warroom.enums import action_of
from warroom.im.rich import defuse
from warroom.models import Action, TimelineEntry, TimelineKind
from warroom.store.reviews import Citation

SECTIONS = ("Summary", "Impact", "Timeline", "Root cause", "Key decisions", "Action items", "Lessons learned")
CITE = re.compile(r"\[((?:T|M|R):[^\]\s]+)\]")
UNCITED = " _(no source)_"

ROOT_CAUSE = re.compile(
    r"\b(root cause|caused by|because|due to|culprit|the (issue|problem|bug) (was|is)|turned out|trigger(ed)? by)\b",
    re.I,
)
DECISION = re.compile(
    r"\b(decided|decision|let'?s|we will|we'll|going to|roll(ing)? ?back|revert(ing)?|fail(ing)? ?over|disable|"
    r"scal(e|ing)|restart(ing)?|switch(ing)? to|drain(ing)?|reroute|route \w+ through|pause)\b|决定|回滚|重启",
    re.I,
)
ACTION_ITEM = re.compile(
    r"\b(action item|todo|to-do|follow[- ]up|we should|need to|needs to|must|ticket|jira|"
    r"add (an? )?(alert|test|monitor))\b",
    re.I,
)
LESSON = re.compile(r"\b(lesson|learned|next time|went well|went wrong|could have|should have|worked well)\b", re.I)


@dataclass
class Review:
    markdown: str
    citations: list[Citation] = field(default_factory=list)
    uncited: int = 0


def _dur(a: datetime, b: datetime) -> str:
    minutes = max(int((b - a).total_seconds() // 60), 0)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def _first(entries: list[TimelineEntry], kind: str) -> TimelineEntry | None:
    return next((e for e in entries if e.kind == kind and e.outcome.value == "ok"), None)


def offline(ctx: IncidentContext, facts: ImpactFacts, *, now: datetime) -> str:
    i = ctx.incident
    tl = ctx.timeline
    opened = _first(tl, TimelineKind.INCIDENT_CREATED) or (tl[0] if tl else None)
    acked = _first(tl, TimelineKind.ACTION_ACKNOWLEDGE)
    closed = next((e for e in reversed(tl) if e.kind == TimelineKind.ACTION_CLOSE and e.outcome.value == "ok"), None)
    msgs = [m for m in ctx.human_messages() if not re.search(r"@warroom", m.text, re.I)]
    t = lambda e: f"[T:{e.id}]"  # noqa: E731
    mref = lambda m: f"[M:{m.message_id}]"  # noqa: E731

    out: list[str] = ["## Summary", ""]
    start = opened.at if opened else i.created_at
    line = f'"{i.title}" (severity {i.severity.value}) was opened at {start:%Y-%m-%d %H:%M} UTC'
    line += f" {t(opened)}" if opened else ""
    if closed:
        line += f" and closed at {closed.at:%H:%M} UTC by {closed.actor} after {_dur(start, closed.at)} {t(closed)}"
    else:
        line += f"; it is {i.status.value} at the time of writing"
    out.append(line + ".")
    people = sorted({e.actor for e in tl if "@" in e.actor})
    if people or msgs:
        src = t(opened) if opened else ""
        out.append(
            f"{len(i.responders)} responder(s); {len(msgs)} message(s) in the war room; people who acted: "
            f"{', '.join(people) or 'none recorded'} {src}".rstrip()
            + "."
        )
    if i.description:
        out.append(f"Description: {transcript.one_line(i.description, 300)} {t(opened) if opened else ''}".rstrip())

    out += ["", "## Impact", ""]
    src = t(opened) if opened else ""
    for label, d in (("Services", facts.services), ("Regions", facts.regions), ("Users", facts.users)):
        if d:
            out.append(f"- {label}: " + "; ".join(f"{k} (from {', '.join(v)})" for k, v in d.items()) + f" {src}")
    if facts.similar:
        out.append(
            "- Similar past incidents: "
            + "; ".join(f"[{s.id}]({ctx.public_url.rstrip('/')}/api/v1/incidents/{s.id})" for s in facts.similar)
            + f" {src}"
        )
    if facts.empty:
        out.append(f"- Not recorded: the incident has no service/region labels or alerts attached {src}")

    out += ["", "## Timeline", ""]
    events: list[tuple[datetime, str]] = []
    for e in tl:
        if e.kind in NOISE or e.kind == TimelineKind.AI_ANSWER:
            continue
        events.append((e.at, f"- {e.at:%H:%M} — {ctx.entry_text(e)} {t(e)}"))
    for m in msgs:
        if ROOT_CAUSE.search(m.text) or DECISION.search(m.text) or _likely_cause(m.text):
            who = transcript.who(m, ctx.names)
            events.append((m.at, f'- {m.at:%H:%M} — {who}: "{transcript.one_line(m.text, 200)}" {mref(m)}'))
    events.sort(key=lambda x: x[0])
    out += [x[1] for x in events[-60:]] or ["- No events recorded."]

    out += ["", "## Root cause", ""]
    causes = [m for m in msgs if ROOT_CAUSE.search(m.text)]
    likely = [m for m in msgs if _likely_cause(m.text) and m not in causes]
    if causes or likely:
        out += [
            f'- {transcript.who(m, ctx.names)}: "{transcript.one_line(m.text, 300)}" {mref(m)}' for m in causes[-5:]
        ]
        out += [
            f'- Likely, from the room: {transcript.who(m, ctx.names)}: "{transcript.one_line(m.text, 300)}" {mref(m)}'
            for m in likely[-3:]
        ]
    else:
        out.append(
            "- Not established in the timeline or the room's messages: to be completed by the responders "
            + (t(closed) if closed else (t(opened) if opened else ""))
        )

    out += ["", "## Key decisions", ""]
    decisions = [
        f"- {e.at:%H:%M} {e.actor} chose to {action_of(e.kind)}" + (f" ({e.detail})" if e.detail else "") + f" {t(e)}"
        for e in tl
        if action_of(e.kind) not in (None, Action.UNSNOOZE) and e.outcome.value == "ok"
    ]
    decisions += [
        f'- {m.at:%H:%M} {transcript.who(m, ctx.names)}: "{transcript.one_line(m.text, 200)}" {mref(m)}'
        for m in msgs
        if DECISION.search(m.text)
    ]
    out += decisions or ["- No decisions recorded."]

    out += ["", "## Action items", ""]
    items = [f"- [ ] {transcript.one_line(m.text, 200)} {mref(m)}" for m in msgs if ACTION_ITEM.search(m.text)]
    if not causes:
        items.append(
            f"- [ ] Establish and record the root cause {t(closed) if closed else (t(opened) if opened else '')}"
        )
    if facts.empty and opened:
        items.append(
            f"- [ ] Attach alerts or service/region labels to incidents like this one, so impact is known {t(opened)}"
        )
    out += items

    out += ["", "## Lessons learned", ""]
    lessons = [
        f'- {transcript.who(m, ctx.names)}: "{transcript.one_line(m.text, 200)}" {mref(m)}'
        for m in msgs
        if LESSON.search(m.text)
    ]
    if acked and opened:
        lessons.append(f"- Time to acknowledge: {_dur(opened.at, acked.at)} {t(opened)} {t(acked)}")
    if closed and opened:
        lessons.append(f"- Time to close: {_dur(opened.at, closed.at)} {t(opened)} {t(closed)}")
    pushed = [e for e in tl if e.kind == TimelineKind.AI_KNOWLEDGE]
    if pushed:
        lessons.append("- Runbooks that matched: " + "; ".join(f"{e.detail} {t(e)}" for e in pushed))
    out += lessons or ["- None recorded yet."]
    return "\n".join(out)


def _likely_cause(text: str) -> bool:
    """A message that reports a change or a failure, not a decision, a fix or an action item."""
    return bool(CHANGE.search(text)) and not NOT_CAUSE.search(text) and not STATE.search(text)


def _section_spans(md: str) -> dict[str, str]:
    spans: dict[str, str] = {}
    heads = list(re.finditer(r"^##\s+(.+?)\s*$", md, re.M))
    for n, h in enumerate(heads):
        end = heads[n + 1].start() if n + 1 < len(heads) else len(md)
        name = h.group(1).strip().rstrip(":")
        for s in SECTIONS:
            if name.lower() == s.lower():
                spans[s] = md[h.end() : end].strip()
    return spans


def finalize(ctx: IncidentContext, draft: str, *, fallback: str, title: str) -> Review:
    """Sections in order (missing ones from `fallback`), unknown citations removed, uncited claims
    marked, and a Sources list with what each id points at."""
    spans = _section_spans(draft)
    backup = _section_spans(fallback)
    body = [f"# Post-incident review: {title}", ""]
    for s in SECTIONS:
        text = spans.get(s) or backup.get(s) or "_Nothing recorded._"
        body += [f"## {s}", "", text, ""]
    md = defuse(hide_secrets("\n".join(body)))
    known: dict[str, Citation] = {}

    def keep(m: re.Match[str]) -> str:
        cid = m.group(1)
        c = known.get(cid) or ctx.citation(cid)
        if c is None:
            return ""
        known[cid] = c
        return f"[{cid}]"

    md = CITE.sub(keep, md)
    uncited = 0
    lines = []
    in_claims = False
    for line in md.splitlines():
        if line.startswith("## "):
            in_claims = True
        claim = in_claims and line.strip() and not line.startswith("#") and line.strip() != "_Nothing recorded._"
        if claim and not CITE.search(line) and not line.rstrip().endswith(UNCITED.strip()):
            line = line.rstrip() + UNCITED
            uncited += 1
        lines.append(line)
    md = "\n".join(lines).rstrip()
    rank = {"timeline": 0, "message": 1, "runbook": 2}
    order = sorted(known.values(), key=lambda c: (rank.get(c.kind, 3), c.at.timestamp() if c.at else 0.0, c.id))
    if order:
        md += "\n\n## Sources\n\n"
        md += "\n".join(
            f"- [{c.id}] "
            + (f"{c.at:%Y-%m-%d %H:%M} UTC " if c.at else "")
            + (f"{c.actor}: " if c.actor else "")
            + transcript.one_line(c.text, 200)
            + (f" — {c.url}" if c.url else "")
            for c in order
        )
    return Review(markdown=md + "\n", citations=order, uncited=uncited)
