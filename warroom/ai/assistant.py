"""The assistant's façade: what the activities call. A configured model writes the words; the
offline assistant decides what is asked (and refuses action requests deterministically), and
answers whenever no model is configured or the model keeps failing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

from warroom import lifecycle, roles
from warroom.ai import context, impact, offline, prompts, review
from warroom.ai.model import AiError, AiPermanent, ModelClient, OnText, configured
from warroom.ai.redact import Redactor, hide_secrets
from warroom.ai.retrieval import Doc
from warroom.ai.runbooks import first_steps, match
from warroom.errors import NotFound
from warroom.im.rich import Rich, Span, defuse
from warroom.messages import (
    AiAnswer,
    AiAnswerInput,
    AiImpact,
    AiImpactInput,
    AiKnowledgeInput,
    AiKnowledgePush,
    AiReviewInput,
    AiReviewResult,
)
from warroom.models import Action, Incident
from warroom.settings import Settings
from warroom.store import Store
from warroom.store.reviews import StoredReview

MAX_POST = 3500
# What a workflow from before roles-from-room posts for a role command (it applies none).
ROLE_ELSEWHERE = "Roles are given on the incident's console page (Roles) for now; nothing changed."
_SUGGEST = re.compile(r"^\s*SUGGEST:\s*([a-z]+)\s*\.?\s*$", re.I | re.M)
BUTTON = {Action.ACKNOWLEDGE: "Acknowledge", Action.SNOOZE: "Snooze", Action.CLOSE: "Close", Action.REOPEN: "Reopen"}


OnDraft = Callable[[Rich], Awaitable[None]]


def _clean(text: str) -> str:
    """Text bound for a room: no mass ping, no secret."""
    return defuse(hide_secrets(text))


def _short(person: str) -> str:
    return person.split("@")[0] if re.fullmatch(r"[^@\s]+@[^@\s]+", person) else person


class Assistant:
    _first_ms = 0.0

    def __init__(self, store: Store, settings: Settings, model: ModelClient | None = None) -> None:
        self.store = store
        self.settings = settings
        self.model = model or (ModelClient(settings) if configured(settings) else None)
        self.embed = self.model.embed if self.model and settings.ai_embedding_model else None

    async def aclose(self) -> None:
        if self.model is not None:
            await self.model.aclose()

    # ------------------------------------------------------------------ helpers
    async def _context(self, incident: Incident, room, **kw) -> context.IncidentContext:  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(context.load, self.store, self.settings, incident, room, **kw)

    def _fallback(self, e: AiError, last_attempt: bool) -> str:
        """Offline instead of the model: now (permanent error, last attempt) or after a retry."""
        if isinstance(e, AiPermanent) or last_attempt:
            return f"offline answer: the model failed ({e})"
        raise e

    def _budget(self, *fixed: str) -> int:
        used = sum(prompts.estimate_tokens(x) for x in (prompts.RULES, *fixed))
        return max(self.settings.ai_max_prompt_tokens - used - 50, 200)

    @staticmethod
    def _incident_lines(ctx: context.IncidentContext) -> list[str]:
        i = ctx.incident
        lines = [
            f"id: {i.id}",
            f"title: {i.title}",
            f"severity: {i.severity.value}",
            f"status: {i.status.value}",
            f"opened: {i.created_at:%Y-%m-%d %H:%M} UTC",
            f"responders: {', '.join(r.contact for r in i.responders) or 'none'}",
        ]
        if i.description:
            lines.append(f"description: {prompts.quote(' '.join(i.description.split()))[:1500]}")
        lines += [f"label {k}: {v}" for k, v in sorted(i.labels.items())]
        for n, a in enumerate(i.alerts, 1):
            metric = f", {a.metric}={a.value:g}" if a.metric and a.value is not None else ""
            lines.append(f"alert {a.id or n}: {a.title} (service {a.service or '?'}, region {a.region or '?'}{metric})")
        return lines

    @staticmethod
    def _render(d: Doc) -> str:
        at = d.meta.get("at")
        when = f" {at:%Y-%m-%d %H:%M}" if at else ""
        section = f" ({d.meta['section']})" if d.meta.get("section") else ""
        return f"[{d.id}]{when}{section} {d.text}"

    def _blocks(self, ctx: context.IncidentContext, query: str, budget: int, *, exclude: str = "") -> list[str]:
        docs = [d for d in ctx.docs() if d.id != exclude]
        kept = prompts.fit(docs, query, budget, render=self._render)
        by_kind = {k: [self._render(d) for d in kept if d.kind == k] for k in ("timeline", "message", "runbook")}
        return [
            prompts.block("incident", self._incident_lines(ctx)),
            prompts.block("timeline", by_kind["timeline"]),
            prompts.block("transcript", by_kind["message"]),
            prompts.block("runbooks", by_kind["runbook"][:6]),
        ]

    @staticmethod
    def _known_citations(ctx: context.IncidentContext, text: str) -> tuple[str, list[str]]:
        cites: list[str] = []

        def keep(m: re.Match[str]) -> str:
            if ctx.citation(m.group(1)) is None:
                return ""
            if m.group(1) not in cites:
                cites.append(m.group(1))
            return m.group(0)

        return re.sub(r" ?" + review.CITE.pattern, keep, text), cites

    @staticmethod
    def _link(ctx: context.IncidentContext, cid: str) -> str:
        """Where a citation leads: the console's timeline entry, the incident's console page for
        a message (the platforms' permalinks are not known to the store), the runbook's page."""
        kind, _, ident = cid.partition(":")
        if kind == "T":
            return ctx.console_url(f"#t-{ident}")
        if kind == "R":
            b = next((b for b in ctx.runbooks if b.name == ident), None)
            return (b.url or ctx.console_runbook_url(b.name)) if b else ""
        return ctx.console_url()

    def compose(self, ctx: context.IncidentContext, head: str, body: str, *, hint: bool) -> tuple[Rich, str, list[str]]:
        """The answer as rich text and as plain text: each line of `body` (bullets kept), inline
        citation ids replaced by footnote markers [1], [2] that link to their source; quoted text
        defused (no mass ping) and secrets hidden."""
        cites: list[str] = []
        doc = Rich(more_url=ctx.console_url())
        plain_lines: list[str] = []
        lines = [ln for ln in body.splitlines() if ln.strip()]
        if head and lines and lines[0].lstrip().startswith(("• ", "- ", "* ")):
            doc.add(Span(text=head))
            plain_lines.append(head)
            head = ""
        for n, raw in enumerate(lines):
            bullet = raw.lstrip().startswith(("• ", "- ", "* "))
            text = raw.lstrip()[2:] if bullet else raw
            spans: list[Span | str] = [Span(text=head)] if n == 0 and head else []
            out = (head + " ") if n == 0 and head else ""
            pos = 0
            for m in review.CITE.finditer(text):
                cid = m.group(1)
                piece = _clean(text[pos : m.start()])
                pos = m.end()
                if ctx.citation(cid) is None:
                    spans.append(piece)
                    out += piece
                    continue
                if cid not in cites:
                    cites.append(cid)
                marker = f"[{cites.index(cid) + 1}]"
                piece = piece.rstrip() + " " if piece.strip() else piece
                spans += [piece, Span(text=marker, link=self._link(ctx, cid))]
                out += piece + marker
            tail = _clean(text[pos:])
            spans.append(tail)
            out += tail
            if n == 0 and head:
                spans[1:1] = [" "]
            doc.add(*[s for s in spans if not isinstance(s, str) or s], bullet=bullet)
            plain_lines.append(("• " if bullet else "") + out)
        if cites:
            refs = []
            for k, cid in enumerate(cites, 1):
                c = ctx.citation(cid)
                when = f"{c.at:%H:%M} " if c and c.at else ""
                what = {"T": "timeline", "M": (c.actor or "message") if c else "message", "R": "runbook"}[cid[0]]
                refs.append(f"[{k}] {when}{what.split('@')[0]} {self._link(ctx, cid)}")
            plain_lines.append("Sources: " + " · ".join(refs))
        if hint:
            doc.add(
                Span(text="Details: "),
                Span(text="@warroom more", code=True),
                Span(text=" · "),
                Span(text="console", link=ctx.console_url()),
            )
            plain_lines.append("Details: @warroom more")
        return doc, "\n".join(plain_lines), cites

    # ------------------------------------------------------------------ Q&A
    async def answer(
        self, inp: AiAnswerInput, *, now: datetime, last_attempt: bool = True, on_draft: OnDraft | None = None
    ) -> AiAnswer:
        """The answer to one room message; with a model and `on_draft`, the answer so far is handed
        to `on_draft` (formatted) as it streams in."""
        ctx = await self._context(inp.incident, inp.room)
        room = inp.room
        msg = await asyncio.to_thread(self.store.transcript.get, room.platform, room.chat_id or "", inp.message_id)
        if msg is None:
            raise NotFound(f"message {inp.message_id} is not in the transcript")
        asker = ctx.names.get(inp.im_user_id, inp.im_user_id)
        command = roles.room_command(msg.text)
        if command is not None:  # `@warroom lead me`: the workflow applies it (and says so)
            return AiAnswer(text=ROLE_ELSEWHERE, intent="role", role=command)
        draft = offline.answer(ctx, msg.text, question_id=inp.message_id, now=now)
        if draft.intent in ("impact", "review"):
            return AiAnswer(text="", intent=draft.intent)
        if draft.intent == "more":
            return self._more(ctx, msg, asker, now)
        mode, note, usage = "offline", "", (0, 0, 0.0)
        text, suggestion = draft.text, draft.suggestion
        first_ms = 0.0
        if self.model is not None and draft.intent not in ("help", "refused"):
            try:
                head = f"🤖 (to {_short(asker)})"
                draft_to = None
                if on_draft is not None:
                    await on_draft(Rich().add(f"{head} thinking…"))

                    async def draft_to(partial: str) -> None:
                        body = _SUGGEST.sub("", partial).strip() or "…"
                        rich, _, _ = self.compose(ctx, head, body + " …", hint=False)
                        await on_draft(rich)

                text, _, suggestion, usage = await self._model_answer(
                    ctx, msg.text, asker, inp.message_id, on_text=draft_to
                )
                mode = f"model:{self.model.model}"
                first_ms = self._first_ms
            except AiError as e:
                note = self._fallback(e, last_attempt)
                text, suggestion = draft.text, draft.suggestion
        if suggestion is not None and lifecycle.refusal(inp.incident, suggestion, 60) is not None:
            suggestion = None
        if suggestion is not None:
            text += (
                f"\n💡 Suggested action: {suggestion.value}. I cannot do it myself — a responder decides, "
                f"by clicking {BUTTON[suggestion]} on the status card."
            )
        if note:
            text += f"\n({note.split(':')[0]})"
        hint = draft.intent not in ("help", "refused") and bool(draft.details or mode != "offline")
        rich, out, cites = self.compose(ctx, f"🤖 (to {_short(asker)})", text, hint=hint)
        if len(out) > MAX_POST:
            out = out[: MAX_POST - 1] + "…"
        return AiAnswer(
            text=out,
            intent=draft.intent,
            citations=cites,
            suggestion=suggestion,
            mode=mode,
            note=note,
            prompt_tokens=usage[0],
            completion_tokens=usage[1],
            latency_ms=usage[2],
            first_text_ms=first_ms,
            rich=rich,
        )

    def _more(self, ctx: context.IncidentContext, msg, asker: str, now: datetime) -> AiAnswer:  # type: ignore[no-untyped-def]
        """`@warroom more`: the previous question in this room, answered with every detail."""
        earlier = [
            m
            for m in ctx.messages
            if m.at <= msg.at
            and m.message_id != msg.message_id
            and not m.from_bot
            and re.search(r"@warroom|<@", m.text, re.I)
            and offline.intent(m.text) == "question"
        ]
        if not earlier:
            body = "There is no earlier question of mine to expand on; ask one, e.g. `@warroom what changed?`"
        else:
            q = earlier[-1]
            d = offline.answer(ctx, q.text, question_id=q.message_id, now=now)
            said = offline.transcript.one_line(offline.strip_mention(q.text), 120)
            body = f'More on "{said}":\n{d.text}\n{d.details}'.strip()
        rich, out, cites = self.compose(ctx, f"🤖 (to {_short(asker)})", body, hint=False)
        return AiAnswer(text=out[:MAX_POST], intent="more", citations=cites, rich=rich)

    async def _model_answer(
        self,
        ctx: context.IncidentContext,
        question: str,
        asker: str,
        message_id: str,
        on_text: OnText | None = None,
    ) -> tuple[str, list[str], Action | None, tuple[int, int, float]]:
        assert self.model is not None
        redact = Redactor(self.settings.ai_redact)
        q_block = prompts.block(
            "question", [f"[M:{message_id}] from {asker}: {offline.transcript.one_line(question, 2000)}"]
        )
        facts_block = prompts.block("impact_facts", impact.facts_lines(impact.facts(ctx)))
        blocks = self._blocks(
            ctx,
            offline.strip_mention(question),
            self._budget(prompts.ANSWER_TASK, q_block, facts_block),
            exclude=f"M:{message_id}",
        )
        blocks.insert(1, facts_block)
        msgs = prompts.messages(prompts.ANSWER_TASK, [redact(b) for b in blocks] + [redact(q_block)])
        c = await self.model.complete(msgs, on_text=on_text)
        self._first_ms = c.first_text_ms
        text = redact.restore(c.text)
        suggestion = None
        m = _SUGGEST.search(text)
        if m:
            try:
                suggestion = Action(m.group(1).lower())
            except ValueError:
                suggestion = None
            if suggestion is Action.UNSNOOZE:
                suggestion = None
            text = _SUGGEST.sub("", text).strip()
        text, cites = self._known_citations(ctx, text)
        return text, cites, suggestion, (c.prompt_tokens, c.completion_tokens, c.latency_ms)

    # ------------------------------------------------------------------ impact
    async def impact(self, inp: AiImpactInput, *, last_attempt: bool = True) -> AiImpact:
        ctx = await self._context(inp.incident, inp.room, with_others=True, transcript_limit=50)
        facts = impact.facts(ctx)
        text, mode = impact.render(facts, ctx), "offline"
        rich = impact.rich(facts, ctx)
        if self.model is not None and not inp.for_card and (inp.requested or not facts.empty):
            redact = Redactor(self.settings.ai_redact)
            blocks = [
                prompts.block("incident", self._incident_lines(ctx)),
                prompts.block("impact_facts", impact.facts_lines(facts)),
            ]
            try:
                c = await self.model.complete(prompts.messages(prompts.IMPACT_TASK, [redact(b) for b in blocks]))
                body, _ = self._known_citations(ctx, redact.restore(c.text))
                head = f"📊 Impact assessment — severity {facts.severity}, {ctx.incident.status.value}"
                text = f"{head}\n{body}"
                rich, _, _ = self.compose(ctx, "", f"{head}\n{body}", hint=False)
                mode = f"model:{self.model.model}"
            except AiError as e:
                self._fallback(e, last_attempt)
        return AiImpact(
            text=text[:MAX_POST],
            fingerprint=facts.fingerprint(),
            mode=mode,
            known=not facts.empty,
            rich=rich,
            summary=impact.summary(facts),
        )

    # ------------------------------------------------------------------ knowledge push
    async def knowledge(self, inp: AiKnowledgeInput, *, last_attempt: bool = True) -> list[AiKnowledgePush]:
        ctx = await self._context(inp.incident, inp.room, transcript_limit=60)
        i = ctx.incident
        chat = " ".join(m.text for m in ctx.human_messages()[-40:])
        alerts = " ".join(f"{a.title} {a.service} {a.description}" for a in i.alerts)
        text = f"{i.title} {i.description} {' '.join(i.labels.values())} {alerts} {chat}"
        matches = [
            m
            for m in match(ctx.runbooks, text, min_terms=self.settings.ai_knowledge_min_terms)
            if m.runbook.name not in inp.pushed
        ]
        if self.embed is not None and not matches:
            matches = await self._embedded_matches(ctx, text, inp.pushed)
        pushes = []
        for m in matches[:2]:
            b = m.runbook
            steps = first_steps(m.section)
            body = f"{b.summary}"
            if steps and m.section is not None:
                body += f" First steps ({m.section.heading}): " + " ".join(f"{n}. {s}" for n, s in enumerate(steps, 1))
            if self.model is not None:
                redact = Redactor(self.settings.ai_redact)
                blocks = [
                    prompts.block("incident", self._incident_lines(ctx)),
                    prompts.block(
                        "runbooks",
                        [
                            f"[R:{b.name}] {b.title}: {b.summary} "
                            + " ".join(f"{s.heading}: {s.text}" for s in b.sections)
                        ],
                    ),
                ]
                try:
                    c = await self.model.complete(
                        prompts.messages(prompts.KNOWLEDGE_TASK.format(name=b.name), [redact(x) for x in blocks]),
                        max_tokens=300,
                    )
                    body, _ = self._known_citations(ctx, redact.restore(c.text))
                except AiError as e:
                    self._fallback(e, last_attempt)
            matched = f" (matched: {', '.join(m.terms[:6])})" if m.terms else ""
            post = f"📘 Runbook that may help: {b.title} [R:{b.name}]\n{body}\nRead more: {ctx.runbook_url(b)}{matched}"
            pushes.append(AiKnowledgePush(runbook=b.name, title=b.title, text=post[:MAX_POST], terms=m.terms))
        return pushes

    async def _embedded_matches(self, ctx: context.IncidentContext, text: str, pushed: list[str]):  # type: ignore[no-untyped-def]
        """With an embeddings endpoint: a runbook whose meaning is close enough, words aside."""
        from warroom.ai.retrieval import cosine
        from warroom.ai.runbooks import Match

        books = [b for b in ctx.runbooks if b.name not in pushed]
        if not books or self.embed is None:
            return []
        try:
            vectors = await self.embed(
                [text[:4000]] + [f"{b.title}. {b.summary} {' '.join(b.keywords)}" for b in books]
            )
        except AiError:
            return []
        scored = sorted(
            ((cosine(vectors[0], v), b) for v, b in zip(vectors[1:], books, strict=True)), key=lambda x: -x[0]
        )
        return [
            Match(runbook=b, score=s, terms=[f"similarity {s:.2f}"], section=b.sections[0] if b.sections else None)
            for s, b in scored
            if s >= 0.8
        ][:1]

    # ------------------------------------------------------------------ review
    async def review(self, inp: AiReviewInput, *, now: datetime, last_attempt: bool = True) -> AiReviewResult:
        existing = await asyncio.to_thread(self.store.reviews.by_key, inp.key)
        if existing is None:
            ctx = await self._context(inp.incident, inp.room, with_others=True, transcript_limit=2000)
            facts = impact.facts(ctx)
            fallback = review.offline(ctx, facts, now=now)
            draft, generator = fallback, "offline"
            if self.model is not None:
                try:
                    draft = await self._model_review(ctx, facts)
                    generator = f"model:{self.model.model}"
                except AiError as e:
                    generator = self._fallback(e, last_attempt).replace("offline answer", "offline")
            r = review.finalize(ctx, draft, fallback=fallback, title=f"{inp.incident.title} ({inp.incident.id})")
            stored = StoredReview(
                incident_id=inp.incident.id,
                version=0,
                markdown=r.markdown,
                citations=r.citations,
                generator=generator,
                requested_by=inp.requested_by,
                generated_at=now,
            )
            existing = await asyncio.to_thread(self.store.reviews.save, inp.key, stored)
        uncited = existing.markdown.count(review.UNCITED.strip())
        return AiReviewResult(
            version=existing.version,
            generated_at=existing.generated_at,
            url=f"{self.settings.public_url.rstrip('/')}/api/v1/incidents/{inp.incident.id}/review",
            generator=existing.generator,
            citations=len(existing.citations),
            uncited=uncited,
        )

    async def _model_review(self, ctx: context.IncidentContext, facts: impact.ImpactFacts) -> str:
        assert self.model is not None
        redact = Redactor(self.settings.ai_redact)
        head = [
            prompts.block("incident", self._incident_lines(ctx)),
            prompts.block("impact_facts", impact.facts_lines(facts)),
        ]
        budget = self._budget(prompts.REVIEW_TASK, *head)
        docs = ctx.docs(with_runbooks=False)
        kept = prompts.fit(
            docs, "root cause caused because decided rollback action item follow up lesson", budget, render=self._render
        )
        blocks = [
            *head,
            prompts.block("timeline", [self._render(d) for d in kept if d.kind == "timeline"]),
            prompts.block("transcript", [self._render(d) for d in kept if d.kind == "message"]),
        ]
        c = await self.model.complete(
            prompts.messages(prompts.REVIEW_TASK, [redact(b) for b in blocks]),
            max_tokens=max(1500, self.settings.ai_max_answer_tokens),
        )
        return redact.restore(c.text)
