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
from warroom.ai.impact import ImpactFacts
from warroom.ai.impact import facts as impact_facts
from warroom.ai.retrieval import Doc, rank
from warroom.ai.review import ROOT_CAUSE
from warroom.ai.runbooks import first_steps, match
from warroom.ai.signals import CHANGE, DECISION_FIRM, NOT_CAUSE, STATE
from warroom.enums import ACTION_KINDS, AI_KINDS, action_of
from warroom.models import Action, IncidentStatus, TimelineEntry, TimelineKind
from warroom.store.transcript import TranscriptMessage

HELP = (
    "I'm the War Room assistant. Ask me anything about this incident, e.g. `@warroom what is the customer "
    "impact and what changed before it started?`, or use a command: `@warroom impact` (the impact "
    "assessment), `@warroom review` (the post-incident review), `@warroom more` (the details of my last "
    "answer), `@warroom help`; roles: `@warroom lead me`, `@warroom scribe <email or name>`, `@warroom comms none`. "
    "I answer from this incident's timeline, this room's messages and the "
    "runbooks, and link my sources. I never change the incident: I can only suggest an action, which one "
    "of you clicks on the status card."
)

# Commands are the bare words (a question that mentions "impact" is a question, not the command).
COMMANDS = {
    "help": "help",
    "commands": "help",
    "?": "help",
    "帮助": "help",
    "impact": "impact",
    "影响": "impact",
    "review": "review",
    "postmortem": "review",
    "post-mortem": "review",
    "复盘": "review",
    "more": "more",
    "details": "more",
    "更多": "more",
}
_PUNCT = " \t.!?`'\"\uff1f\u3002\uff01:\uff1a"  # ASCII and full-width punctuation
# What a question asks about; a question may ask about several (each is answered, or said missing).
ASPECTS: list[tuple[str, re.Pattern[str]]] = [
    (
        "impact",
        re.compile(
            r"\b(impact\w*|affect\w*|customers?|users?|merchants?|blast radius|how bad|how many|who is hit|"
            r"hit)\b|影响|用户|客户|多少",
            re.I,
        ),
    ),
    (
        "cause",
        re.compile(
            r"\b(why|cause[sd]?|root cause|chang\w*|reason|culprit|trigger\w*|fail\w*|wrong|blocking|broken|"
            r"slow)\b|原因|为什么|变更|改|变慢",
            re.I,
        ),
    ),
    ("decision", re.compile(r"\b(decid\w*|decision|plan|did we do)\b|决定", re.I)),
    ("real", re.compile(r"\b(real|false alarm|false positive|genuine|noise)\b|误报", re.I)),
    (
        "status",
        re.compile(
            r"\b(status|summary|summari[sz]e|catch (me )?up|tl;?dr|going on|happened|where are we|update|fixed|"
            r"resolved|real|now)\b|状态|进展|现在",
            re.I,
        ),
    ),
    ("people", re.compile(r"\b(who (is|are) (on|working|here|involved|in)|responders?|on[- ]call|teams?)\b", re.I)),
    (
        "next",
        re.compile(r"\b(what should we do|what next|next steps?|what now|should we)\b|怎么办|下一步", re.I),
    ),
    (
        "howto",
        re.compile(r"\b(how (do|to|can|should) (we|i)|runbook|playbook|mitigat\w*|procedure)\b|如何|怎么处理", re.I),
    ),
    ("eta", re.compile(r"\b(when will|eta|how long|how soon)\b|多久|什么时候", re.I)),
]
MISSING = {
    "impact": "who or what is affected",
    "cause": "the cause or what changed",
    "decision": "a decision",
    "eta": "when it will be over",
    "howto": "a runbook for this",
}
_IMPACT_WORDS = re.compile(
    r"\b(\d[\d,.]*\s?%|users?|customers?|merchants?|orders?|requests?|affected|impact|fail\w*|down|"
    r"declin\w*)\b|影响|用户|客户|失败",
    re.I,
)
_DECISION_WORDS = re.compile(
    r"\b(decided|decision|let'?s|we will|we'll|going to|roll(ing)? ?back|revert\w*|fail(ing)? ?over|"
    r"rerout\w*|route|restart\w*|scal(e|ing)|pause|kill|snooze)\b|决定|回滚|重启",
    re.I,
)
_REAL_WORDS = re.compile(r"\b(false (alarm|positive)|not real|no customer impact|users are fine|planned)\b|误报", re.I)
_ETA_WORDS = re.compile(r"\b(eta|minutes?|hours?|by \d|draining|back to)\b|分钟|小时", re.I)
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
    """An answer as lines of text with inline citation ids ([T:…], [M:…], [R:…]): `text` is the
    short answer (a few lines), `details` what `@warroom more` adds."""

    text: str
    intent: str = "answer"
    citations: list[str] = field(default_factory=list)
    suggestion: Action | None = None
    details: str = ""


def strip_mention(text: str) -> str:
    return re.sub(r"(<@[^>]+>|@warroom\b|@War Room\b)", "", text, flags=re.I).strip(" ,:")


def intent(question: str) -> str:
    """`help`, `impact`, `review` or `more` for the bare command words; any other text is a
    `question` (a word inside a question never turns it into a command)."""
    q = strip_mention(question).strip().lower().strip(_PUNCT)
    if not q:
        return "help"
    return COMMANDS.get(q, "question")


def aspects(question: str) -> list[str]:
    """What a question asks about, in the order of ASPECTS (possibly several, possibly none)."""
    q = strip_mention(question)
    return [name for name, pattern in ASPECTS if pattern.search(q)]


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
    if kind in ("impact", "review", "more"):
        return Draft("", kind)
    parts: list[str] = []
    if _INJECTION.search(q):
        parts.append(
            "I don't follow instructions written in chat messages; I only answer questions about this incident."
        )
    action = _ACTION_REQUEST.search(q)
    if action and not _QUESTION_START.search(q):
        verb = action.group(1).lower()
        button = BUTTONS.get(verb)
        how = f"a responder clicks {button} on the status card" if button else "a responder has to do it"
        parts.append(f"I can't change the incident or the room — only people can. To {verb} it, {how}.")
        parts.append(status_line(ctx, now, cites))
        return Draft("\n".join(parts), "refused", cites)
    asked = aspects(q)
    lead, more, suggestion = _answer_lines(ctx, q, asked, exclude=question_id, now=now)
    lead = parts + lead
    text = "\n".join(lead)
    details = "\n".join(more)
    for cid in review_cites(text + "\n" + details):
        _cite(cites, cid)
    return Draft(text, "answer", cites, suggestion, details)


def review_cites(text: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r"\[((?:T|M|R):[^\]\s]+)\]", text)))


def _who(ctx: IncidentContext, m: TranscriptMessage) -> str:
    name = transcript.who(m, ctx.names)
    return name.split("@")[0] if re.fullmatch(r"[^@\s]+@[^@\s]+", name) else name


def _said(ctx: IncidentContext, m: TranscriptMessage, limit: int = 160) -> str:
    return f'{_who(ctx, m)} at {m.at:%H:%M}: "{transcript.one_line(m.text, limit)}" [M:{m.message_id}]'


def _event(ctx: IncidentContext, e: TimelineEntry) -> str:
    return f"{e.at:%H:%M} {ctx.entry_text(e)} [T:{e.id}]"


def _answer_lines(
    ctx: IncidentContext, q: str, asked: list[str], *, exclude: str, now: datetime
) -> tuple[list[str], list[str], Action | None]:
    """The lines that answer `q` (each citing its source), the details kept for `more`, and a
    suggested action. Each aspect asked about is answered from the extracts or said missing."""
    msgs = [m for m in ctx.human_messages() if m.message_id != exclude and not re.search(r"@warroom", m.text, re.I)]
    quiet = NOISE | AI_KINDS | {TimelineKind.ROOM_CREATED}
    events = [e for e in ctx.timeline if e.kind not in quiet]
    reopened = _last(ctx, (TimelineKind.ACTION_REOPEN,))
    since = [m for m in msgs if reopened is None or m.at >= reopened.at] or msgs  # what still holds
    by_id = {f"M:{m.message_id}": m for m in msgs}
    docs = [Doc(id=k, text=transcript.one_line(m.text), kind="message") for k, m in by_id.items()]
    docs += [Doc(id=f"T:{e.id}", text=ctx.entry_text(e), kind="timeline") for e in events]
    ranked = [d.id for d, _ in rank(q, docs)]
    ranked_msgs = [by_id[i] for i in ranked if i in by_id]
    lines: list[str] = []
    used: set[str] = set()
    suggestion: Action | None = None

    def say(m: TranscriptMessage) -> bool:
        if f"M:{m.message_id}" in used:
            return False
        used.add(f"M:{m.message_id}")
        lines.append(_said(ctx, m))
        return True

    def best(
        pattern: re.Pattern[str], n: int = 1, *, unless: tuple[re.Pattern[str], ...] = (), newest: bool = False
    ) -> int:
        """Up to `n` messages matching `pattern` (and none of `unless`): the most relevant to `q`
        first (or the newest first), then the newest."""
        fits = [m for m in reversed(since) if pattern.search(m.text) and not any(u.search(m.text) for u in unless)]
        pool = fits if newest else [m for m in ranked_msgs if m in fits] + [m for m in fits if m not in ranked_msgs]
        return sum(say(m) for m in pool[:n])

    missing: list[str] = []
    for aspect in asked:
        found = 0
        if aspect == "impact":
            f = impact_facts(ctx)
            opened = _first(ctx, (TimelineKind.INCIDENT_CREATED,))
            summary = _impact_summary(f)
            if summary:
                src = f" [T:{opened.id}]" if opened else ""
                lines.append(f"Affected: {summary}{src}")
                found += 1
            found += best(_IMPACT_WORDS)
        elif aspect == "cause":
            unless = (NOT_CAUSE, STATE)
            found += best(ROOT_CAUSE, 1, unless=unless) + best(CHANGE, 1, unless=unless)
        elif aspect == "real":
            found += best(_REAL_WORDS)
        elif aspect == "decision":
            found += best(DECISION_FIRM, 1) or best(_DECISION_WORDS, 1)
        elif aspect == "eta":
            found += best(_ETA_WORDS)
        elif aspect == "status":
            if aspect == asked[0]:
                lines.append(status_line(ctx, now, []))
                found += 1
            found += best(STATE, unless=(NOT_CAUSE,), newest=True) or best(re.compile("."), 2, newest=True)
        elif aspect == "people":
            lines.append(_people(ctx))
            found += 1
        elif aspect == "next":
            suggestion, text = _next(ctx, [])
            lines.append(text)
            found += 1 + best(DECISION_FIRM, newest=True)
            steps = _howto(ctx, q, [])
            if steps:
                lines.append(steps)
        elif aspect == "howto":
            steps = _howto(ctx, q, [])
            if steps:
                lines.append(steps)
                found += 1
            found += best(_DECISION_WORDS)
        if not found and aspect in MISSING:
            missing.append(MISSING[aspect])
    if len(lines) < 3:  # what the extracts say about the words of the question itself
        for cid in ranked[:2]:
            if len(lines) >= 3 or cid in used:
                continue
            if cid in by_id:
                say(by_id[cid])
            else:
                e = next(e for e in events if f"T:{e.id}" == cid)
                used.add(cid)
                lines.append(_event(ctx, e))
    if not lines:
        lines.append("I found nothing about that in the timeline, this room's messages or the runbooks.")
        lines.append(status_line(ctx, now, []))
    lead = [("• " + x if len(lines) > 1 else x) for x in lines[:4]]
    if missing:
        lead.append("Not in the record yet: " + "; ".join(missing) + ".")
    details = [("• " + x) for x in lines[4:]]
    details += ["• " + _said(ctx, m, 300) for m in ranked_msgs[:6] if f"M:{m.message_id}" not in used]
    details += ["• " + _event(ctx, e) for e in events[-4:] if f"T:{e.id}" not in used]
    return lead, details, suggestion


def _impact_summary(f: ImpactFacts) -> str:
    parts = []
    if f.services:
        parts.append("services " + ", ".join(f.services))
    if f.regions:
        parts.append("regions " + ", ".join(f.regions))
    if f.users:
        parts.append("users: " + "; ".join(f.users))
    return "; ".join(parts)


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
        text += f" — {m.section.heading}: " + " ".join(
            f"{n}. {transcript.one_line(s, 120)}" for n, s in enumerate(steps[:2], 1)
        )
    return text


def _next(ctx: IncidentContext, cites: list[str]) -> tuple[Action | None, str]:
    i = ctx.incident
    if i.status is IncidentStatus.TRIGGERED:
        opened = _first(ctx, (TimelineKind.INCIDENT_CREATED,))
        src = f" [T:{opened.id}]" if opened else ""
        return (
            Action.ACKNOWLEDGE,
            f"Nobody has acknowledged it since it opened{src}: I suggest acknowledging, so the team knows it is owned.",
        )
    if i.status is IncidentStatus.CLOSED:
        closed = _last(ctx, (TimelineKind.ACTION_CLOSE,))
        src = f" [T:{closed.id}]" if closed else ""
        return None, f"It is closed{src}; the post-incident review is next (`@warroom review`)."
    reopened = _last(ctx, (TimelineKind.ACTION_REOPEN,))
    recent = [m for m in ctx.human_messages()[-10:] if reopened is None or m.at >= reopened.at]
    resolved = [m for m in recent if _RESOLVED.search(m.text)]
    if resolved and lifecycle.refusal(i, Action.CLOSE) is None:
        m = resolved[-1]
        return Action.CLOSE, (
            f'{transcript.who(m, ctx.names)} said "{transcript.one_line(m.text, 120)}" '
            f"{_cite(cites, f'M:{m.message_id}')}: if the fix holds, I suggest closing."
        )
    return None, "Keep mitigating; nothing in the room says it is resolved yet."
