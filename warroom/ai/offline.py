"""The offline assistant: deterministic, no model. Extractive answers from the timeline, the
transcript and the runbooks (BM25), each statement with its citation. The same inputs always give
the same output, so it is also the fallback when a model is down."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from warroom import lifecycle
from warroom.ai import transcript
from warroom.ai.context import NOISE, IncidentContext
from warroom.ai.retrieval import rank
from warroom.ai.runbooks import first_steps, match
from warroom.enums import ACTION_KINDS, AI_KINDS, action_of
from warroom.models import Action, IncidentStatus, TimelineEntry, TimelineKind

HELP = (
    "I'm the War Room assistant. Mention me with a question, e.g. `@warroom what is the status?`, "
    "`@warroom who is on this?`, `@warroom how do we mitigate?`, `@warroom impact` or `@warroom review`. "
    "I answer from this incident's timeline, this room's messages and the runbooks, and cite them. "
    "I never change the incident: I can only suggest an action, which one of you clicks on the status card."
)

INTENTS: list[tuple[str, re.Pattern[str]]] = [
    ("help", re.compile(r"^\W*(help|\?|what can you do|commands)\W*$", re.I)),
    ("impact", re.compile(r"\b(impact|affected|blast radius|who is affected|which (services|regions|users))\b", re.I)),
    ("review", re.compile(r"\b(review|post-?mortem|retro(spective)?|pir)\b", re.I)),
    (
        "next",
        re.compile(r"\b(what should we do|what next|next steps?|what now|should we (ack|close|snooze|reopen))", re.I),
    ),
    ("people", re.compile(r"\b(who (is|are)|responders?|on[- ]call|members?|people)\b", re.I)),
    ("howto", re.compile(r"\b(how (do|to|can|should)|runbook|playbook|mitigat\w*|fix|steps?|procedure)\b", re.I)),
    (
        "status",
        re.compile(
            r"\b(status|summary|summari[sz]e|catch (me )?up|tl;?dr|what'?s going on|what is going on|what happened|"
            r"where are we|update)\b",
            re.I,
        ),
    ),
]
_ACTION_REQUEST = re.compile(r"\b(close|resolve|ack(nowledge)?|snooze|reopen|page|invite|escalate|delete|kick)\b", re.I)
_INJECTION = re.compile(
    r"\b(ignore (all |any )?(the )?(previous|prior|above|earlier) (instructions|prompts?)|you are now|system prompt|"
    r"disregard|jailbreak|act as)\b",
    re.I,
)
_QUESTION_START = re.compile(r"^\s*(should|can|could|when|who|why|did|does|do|is|are|how|what|which)\b", re.I)
_RESOLVED = re.compile(r"\b(resolved|recovered|fixed|mitigated|back to normal|all green|stable now)\b", re.I)
BUTTONS = {
    "close": "Close",
    "resolve": "Close",
    "ack": "Acknowledge",
    "acknowledge": "Acknowledge",
    "snooze": "Snooze",
    "reopen": "Reopen",
}


@dataclass
class Draft:
    text: str
    intent: str = "answer"
    citations: list[str] = field(default_factory=list)
    suggestion: Action | None = None


def strip_mention(text: str) -> str:
    return re.sub(r"(<@[^>]+>|@warroom\b|@War Room\b)", "", text, flags=re.I).strip(" ,:")


def intent(question: str) -> str:
    q = strip_mention(question)
    for name, pattern in INTENTS:
        if pattern.search(q):
            return name
    return "answer"


def age(since: datetime, now: datetime) -> str:
    minutes = max(int((now - since).total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


def _cite(cites: list[str], cid: str) -> str:
    if cid not in cites:
        cites.append(cid)
    return f"[{cid}]"


def _first(ctx: IncidentContext, kinds: Collection[str]) -> TimelineEntry | None:
    return next((e for e in ctx.timeline if e.kind in kinds), None)


def _last(ctx: IncidentContext, kinds: Collection[str]) -> TimelineEntry | None:
    return next((e for e in reversed(ctx.timeline) if e.kind in kinds), None)


def status_line(ctx: IncidentContext, now: datetime, cites: list[str]) -> str:
    i = ctx.incident
    line = f'Incident {i.id} "{i.title}" is {i.status.value} (severity {i.severity.value})'
    line += f", open for {age(i.created_at, now)}"
    opened = _first(ctx, (TimelineKind.INCIDENT_CREATED,))
    if opened:
        line += " " + _cite(cites, f"T:{opened.id}")
    changed = _last(ctx, ACTION_KINDS)
    if changed:
        line += f"; last change: {action_of(changed.kind)} by {changed.actor} at {changed.at:%H:%M} UTC "
        line += _cite(cites, f"T:{changed.id}")
    return line + "."


def answer(ctx: IncidentContext, question: str, *, question_id: str, now: datetime) -> Draft:
    kind = intent(question)
    q = strip_mention(question)
    cites: list[str] = []
    if kind == "help":
        return Draft(HELP, "help")
    parts: list[str] = []
    if _INJECTION.search(q):
        parts.append(
            "I don't follow instructions written in chat messages; I only answer questions about this incident."
        )
    action = _ACTION_REQUEST.search(q)
    if action and not _QUESTION_START.search(q) and kind not in ("impact", "review"):
        verb = action.group(1).lower()
        button = BUTTONS.get(verb)
        how = f"a responder clicks **{button}** on the status card" if button else "a responder has to do it"
        parts.append(f"I can't change the incident or the room — only people can. To {verb} it, {how}.")
        parts.append(status_line(ctx, now, cites))
        return Draft("\n".join(parts), "refused", cites)
    if kind == "impact":
        return Draft("", "impact")
    if kind == "review":
        return Draft("", "review")
    parts.append(status_line(ctx, now, cites))
    suggestion = None
    if kind == "people":
        parts.append(_people(ctx))
    elif kind == "status":
        parts += _recent(ctx, cites, exclude=question_id)
    elif kind == "next":
        suggestion, text = _next(ctx, cites)
        parts.append(text)
        steps = _howto(ctx, q, cites)
        if steps:
            parts.append(steps)
    elif kind == "howto":
        parts.append(_howto(ctx, q, cites) or "No runbook matches this question; try naming the service or symptom.")
    else:
        parts += _search(ctx, q, cites, exclude=question_id)
    return Draft("\n".join(p for p in parts if p), kind, cites, suggestion)


def _people(ctx: IncidentContext) -> str:
    states = {m.responder_id: m.state.value for m in (ctx.room.members if ctx.room else [])}
    people = [f"{r.contact} ({states.get(r.id, 'not in the room')})" for r in ctx.incident.responders]
    return "Responders: " + (", ".join(people) if people else "none yet") + "."


def _recent(ctx: IncidentContext, cites: list[str], *, exclude: str) -> list[str]:
    out = []
    quiet = NOISE | AI_KINDS | {TimelineKind.ROOM_CREATED}
    entries = [e for e in ctx.timeline if e.kind not in quiet][-4:]
    if entries:
        out.append(
            "Recent events: "
            + "; ".join(f"{e.at:%H:%M} {ctx.entry_text(e)} {_cite(cites, f'T:{e.id}')}" for e in entries)
            + "."
        )
    msgs = [m for m in ctx.human_messages() if m.message_id != exclude and not re.search(r"@warroom", m.text, re.I)][
        -3:
    ]
    if msgs:
        out.append(
            "In the room: "
            + "; ".join(
                f'{transcript.who(m, ctx.names)}: "{transcript.one_line(m.text, 160)}" '
                + _cite(cites, f"M:{m.message_id}")
                for m in msgs
            )
            + "."
        )
    return out


def _howto(ctx: IncidentContext, q: str, cites: list[str]) -> str:
    i = ctx.incident
    found = match(ctx.runbooks, f"{q} {i.title} {i.description} {' '.join(i.labels.values())}", min_terms=1)
    if not found:
        return ""
    m = found[0]
    steps = first_steps(m.section)
    text = f"Runbook {m.runbook.title} {_cite(cites, f'R:{m.runbook.name}')}"
    if m.section is not None and steps:
        text += f" — {m.section.heading}: " + " ".join(f"{n}. {s}" for n, s in enumerate(steps, 1))
    return text + f" Read more: {ctx.runbook_url(m.runbook)}"


def _next(ctx: IncidentContext, cites: list[str]) -> tuple[Action | None, str]:
    i = ctx.incident
    if i.status is IncidentStatus.TRIGGERED:
        return (
            Action.ACKNOWLEDGE,
            "Nobody has acknowledged it yet: I suggest acknowledging, so the team knows it is owned.",
        )
    if i.status is IncidentStatus.CLOSED:
        return None, "It is closed; the post-incident review is next (`@warroom review`)."
    recent = ctx.human_messages()[-10:]
    resolved = [m for m in recent if _RESOLVED.search(m.text)]
    if resolved and lifecycle.refusal(i, Action.CLOSE) is None:
        m = resolved[-1]
        return Action.CLOSE, (
            f'{transcript.who(m, ctx.names)} said "{transcript.one_line(m.text, 120)}" '
            f"{_cite(cites, f'M:{m.message_id}')}: if the fix holds, I suggest closing."
        )
    return None, "Keep mitigating; nothing in the room says it is resolved yet."


def _search(ctx: IncidentContext, q: str, cites: list[str], *, exclude: str) -> list[str]:
    docs = [d for d in ctx.docs() if d.id != f"M:{exclude}"]
    hits = rank(q, docs, k=3)
    if not hits:
        return ["I found nothing about that in the timeline, this room's messages or the runbooks."]
    lines = ["What I found:"]
    for d, _ in hits:
        at = d.meta.get("at")
        when = f"{at:%H:%M} " if at else ""
        label = "runbook " if d.kind == "runbook" else ""
        lines.append(f"• {when}{label}{transcript.one_line(d.text, 220)} {_cite(cites, d.id)}")
    return lines
