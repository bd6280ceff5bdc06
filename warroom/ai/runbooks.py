"""The knowledge base: Markdown runbooks from a configurable folder, plus those added through
the API (which override a folder runbook of the same name).

A runbook matches an incident when enough of its signature terms (front-matter `keywords` and
title words) appear in what is known about the incident: title, description, labels, alerts and
the room's discussion. BM25 then ranks the matches and picks the most relevant section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from warroom.ai.retrieval import BM25, Doc, tokenize

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.MULTILINE)


class Section(BaseModel):
    heading: str
    text: str


class Runbook(BaseModel):
    name: str
    title: str
    keywords: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    url: str = ""
    summary: str = ""
    sections: list[Section] = Field(default_factory=list)
    markdown: str = ""
    source: str = "folder"  # folder | api

    def signature(self) -> list[list[str]]:
        """Terms that identify this runbook: each keyword phrase and each title word (tokenized)."""
        terms = [tokenize(k) for k in self.keywords]
        terms += [[t] for t in tokenize(self.title)]
        terms += [tokenize(s) for s in self.services]
        seen: set[tuple[str, ...]] = set()
        out = []
        for t in terms:
            if t and tuple(t) not in seen:
                seen.add(tuple(t))
                out.append(t)
        return out


def _split_list(v: str) -> list[str]:
    v = v.strip().strip("[]")
    return [p.strip().strip("'\"") for p in v.split(",") if p.strip().strip("'\"")]


def parse(name: str, markdown: str, *, source: str = "folder") -> Runbook:
    meta: dict[str, str] = {}
    body = markdown
    m = _FRONT.match(markdown)
    if m:
        body = markdown[m.end() :]
        for line in m.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip()
    headings = list(_HEADING.finditer(body))
    title = meta.get("title", "")
    if not title and headings and len(headings[0].group(1)) == 1:
        title = headings[0].group(2).strip()
    title = title or name.replace("-", " ").replace("_", " ")
    sections: list[Section] = []
    intro_end = headings[0].start() if headings else len(body)
    intro = body[:intro_end].strip()
    for i, h in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(body)
        text = body[h.end() : end].strip()
        if len(h.group(1)) == 1 and i == 0:
            intro = (intro + "\n\n" + text).strip() if text else intro
            continue
        sections.append(Section(heading=h.group(2).strip(), text=text))
    summary = meta.get("summary", "") or _first_paragraph(intro) or (sections[0].text if sections else "")
    return Runbook(
        name=name,
        title=title,
        keywords=_split_list(meta.get("keywords", "")),
        services=_split_list(meta.get("services", "")),
        url=meta.get("url", ""),
        summary=_clip(summary, 400),
        sections=sections,
        markdown=markdown,
        source=source,
    )


def _first_paragraph(text: str) -> str:
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        if para and not para.startswith("#"):
            return para
    return ""


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rsplit(" ", 1)[0] + "…"


_cache: dict[str, tuple[tuple, list[Runbook]]] = {}


def load_folder(folder: str | Path) -> list[Runbook]:
    """Every `*.md` in the folder (README.md excepted), re-read when a file changes."""
    path = Path(folder)
    if not path.is_dir():
        return []
    files = sorted(p for p in path.glob("*.md") if p.name.lower() != "readme.md" and NAME.match(p.stem.lower()))
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    cached = _cache.get(str(path.resolve()))
    if cached and cached[0] == stamp:
        return cached[1]
    books = [parse(p.stem.lower(), p.read_text(encoding="utf-8")) for p in files]
    _cache[str(path.resolve())] = (stamp, books)
    return books


def knowledge_base(folder: str | Path, api_runbooks: dict[str, str]) -> list[Runbook]:
    books = {b.name: b for b in load_folder(folder)}
    for name, md in api_runbooks.items():
        books[name] = parse(name, md, source="api")
    return [books[k] for k in sorted(books)]


def section_docs(books: list[Runbook]) -> list[Doc]:
    """One retrievable doc per runbook section, cited as `R:<name>`."""
    docs = []
    for b in books:
        docs.append(
            Doc(
                id=f"R:{b.name}",
                text=f"{b.title}. {b.summary} {' '.join(b.keywords)}",
                kind="runbook",
                meta={"runbook": b.name, "section": ""},
            )
        )
        for s in b.sections:
            docs.append(
                Doc(
                    id=f"R:{b.name}",
                    text=f"{b.title} — {s.heading}: {s.text}",
                    kind="runbook",
                    meta={"runbook": b.name, "section": s.heading},
                )
            )
    return docs


@dataclass
class Match:
    runbook: Runbook
    score: float
    terms: list[str]  # the signature terms found, as written in the runbook
    section: Section | None


def match(books: list[Runbook], context: str, *, min_terms: int = 2) -> list[Match]:
    """Runbooks that match `context` well enough, best first."""
    if not books:
        return []
    ctx = tokenize(context)
    have = set(ctx)
    scores = BM25([tokenize(b.markdown or b.title) for b in books]).scores(ctx)
    out = []
    for b, score in zip(books, scores, strict=True):
        found = [" ".join(t) for t in b.signature() if all(x in have for x in t)]
        if len(found) < min_terms:
            continue
        out.append(Match(runbook=b, score=score + len(found), terms=found, section=best_section(b, ctx)))
    out.sort(key=lambda m: (-m.score, m.runbook.name))
    return out


_ACT = re.compile(r"mitigat|fix|resolv|remed|steps|recover|workaround", re.I)


def best_section(b: Runbook, ctx: list[str]) -> Section | None:
    """The section to quote: the most relevant one that has steps; on a tie, the mitigation."""
    with_steps = [s for s in b.sections if first_steps(s)] or b.sections
    if not with_steps:
        return None
    scores = BM25([tokenize(s.heading + " " + s.text) for s in with_steps]).scores(ctx)
    best = max(
        range(len(with_steps)), key=lambda i: (round(scores[i], 1), bool(_ACT.search(with_steps[i].heading)), -i)
    )
    return with_steps[best]


def first_steps(section: Section | None, n: int = 3) -> list[str]:
    """The first `n` numbered or bulleted steps of a section (for a short push)."""
    if section is None:
        return []
    steps = []
    for line in section.text.splitlines():
        m = re.match(r"^\s*(?:\d+[.)]|[-*])\s+(.*)", line)
        if m:
            steps.append(m.group(1).strip())
        elif steps and line.startswith("   ") and line.strip():
            steps[-1] += " " + line.strip()
        if len(steps) >= n:
            break
    return steps
