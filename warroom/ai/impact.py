"""Impact analysis: which services, regions and users are affected, read from the incident's
labels, its attached alerts/metrics and description, plus similar past incidents in the store.

The facts are deterministic and fingerprinted, so the workflow refreshes the room's impact
message only when they change (or on demand), never on every status change.
"""

from __future__ import annotations

import hashlib
import json
import re

from pydantic import BaseModel, Field

from warroom.ai.context import IncidentContext
from warroom.ai.redact import hide_secrets
from warroom.ai.retrieval import BM25, tokenize
from warroom.im.rich import Rich, Span, defuse
from warroom.models import Incident, TimelineKind

SERVICE_KEYS = ("service", "services", "component", "components", "app", "application", "system")
REGION_KEYS = ("region", "regions", "zone", "zones", "az", "datacenter", "dc", "location", "cluster")
USER_KEYS = ("users", "customers", "tenant", "tenants", "affected", "affected_users", "impact", "audience", "customer")
_USERS_RE = re.compile(
    r"(\d[\d,.]*\s?%?\s+(?:of\s+)?(?:all\s+)?(?:users|customers|orders|requests|checkouts|payments|logins|tenants|merchants)"
    r"[^.;\n]{0,60})",
    re.IGNORECASE,
)


class Similar(BaseModel):
    id: str
    title: str
    status: str
    severity: str
    shared: list[str] = Field(default_factory=list)


class ImpactFacts(BaseModel):
    severity: str
    services: dict[str, list[str]] = Field(default_factory=dict)  # name → where it was read
    regions: dict[str, list[str]] = Field(default_factory=dict)
    users: dict[str, list[str]] = Field(default_factory=dict)
    similar: list[Similar] = Field(default_factory=list)

    def fingerprint(self) -> str:
        body = self.model_dump(mode="json")
        body["similar"] = [s["id"] for s in body["similar"]]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def empty(self) -> bool:
        return not (self.services or self.regions or self.users or self.similar)


def number(v: float) -> str:
    """A metric's value as people write it: 3,200,000 rather than 3.2e+06."""
    return f"{int(v):,}" if float(v).is_integer() else f"{v:g}"


def _values(v: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,;/]| and ", v) if p.strip()]


def _add(d: dict[str, list[str]], key: str, source: str) -> None:
    key = key.strip()
    if key and source not in d.setdefault(key, []):
        d[key].append(source)


def facts(ctx: IncidentContext) -> ImpactFacts:
    i = ctx.incident
    f = ImpactFacts(severity=i.severity.value)
    for k, v in sorted(i.labels.items()):
        key = k.lower()
        if key in SERVICE_KEYS:
            for s in _values(v):
                _add(f.services, s, f"label {k}")
        elif key in REGION_KEYS:
            for r in _values(v):
                _add(f.regions, r, f"label {k}")
        elif key in USER_KEYS:
            _add(f.users, v, f"label {k}")
    for n, a in enumerate(i.alerts, 1):
        src = f"alert {a.id or n}: {a.title}"
        if a.service:
            _add(f.services, a.service, src)
        if a.region:
            _add(f.regions, a.region, src)
        for k, v in sorted(a.labels.items()):
            key = k.lower()
            if key in SERVICE_KEYS:
                _add(f.services, v, src)
            elif key in REGION_KEYS:
                _add(f.regions, v, src)
            elif key in USER_KEYS:
                _add(f.users, v, src)
        if a.metric and a.value is not None:
            _add(f.users, f"{a.metric} = {number(a.value)}" + (f" on {a.service}" if a.service else ""), src)
        for m in _USERS_RE.findall(f"{a.title}. {a.description}"):
            _add(f.users, m.strip(), src)
    for m in _USERS_RE.findall(f"{i.title}. {i.description}"):
        _add(f.users, m.strip(), "incident description")
    f.similar = similar(i, ctx.others)
    return f


def _incident_text(i: Incident) -> str:
    alerts = " ".join(f"{a.title} {a.service} {a.region} {a.metric}" for a in i.alerts)
    return f"{i.title} {i.description} {' '.join(i.labels.values())} {alerts}"


def similar(incident: Incident, others: list[Incident], *, k: int = 3, min_shared: int = 2) -> list[Similar]:
    """Past incidents that share enough distinctive terms with this one, most similar first."""
    if not others:
        return []
    q = tokenize(_incident_text(incident))
    docs = [tokenize(_incident_text(o)) for o in others]
    scores = BM25(docs).scores(q)
    qset = set(q)
    out = []
    for o, d, s in sorted(zip(others, docs, scores, strict=True), key=lambda x: -x[2]):
        shared = sorted(qset & set(d))
        if s <= 0 or len(shared) < min_shared:
            continue
        out.append(Similar(id=o.id, title=o.title, status=o.status.value, severity=o.severity.value, shared=shared[:6]))
        if len(out) >= k:
            break
    return out


def render(f: ImpactFacts, ctx: IncidentContext) -> str:
    """The impact message for the room (the offline assistant's wording)."""

    def fmt(d: dict[str, list[str]]) -> str:
        return "; ".join(f"{k} ({', '.join(v)})" for k, v in d.items())

    lines = [f"📊 Impact assessment — severity {f.severity}, {ctx.incident.status.value}"]
    lines.append(
        f"• Services: {fmt(f.services)}"
        if f.services
        else "• Services: not known yet (add a `service` label or an alert)"
    )
    lines.append(f"• Regions: {fmt(f.regions)}" if f.regions else "• Regions: not known yet")
    lines.append(f"• Users: {fmt(f.users)}" if f.users else "• Users: not known yet (no user-facing metric attached)")
    if f.similar:  # links, not titles: another incident's words stay in its own room
        base = ctx.public_url.rstrip("/")
        lines.append("• Similar past incidents: " + ", ".join(f"{base}/api/v1/incidents/{s.id}" for s in f.similar))
    lines.append("Sources: the incident's labels, alerts and description; refreshed when severity or status changes.")
    return "\n".join(lines)


def rich(f: ImpactFacts, ctx: IncidentContext) -> Rich:
    """The impact message formatted: the facts in a few bullets, each with a footnote linking the
    console's first timeline entry (where the labels and alerts it was read from are recorded);
    similar incidents as console links, never their titles."""
    opened = next((e for e in ctx.timeline if e.kind == TimelineKind.INCIDENT_CREATED), None)
    source = [Span(text=" "), Span(text="[1]", link=ctx.console_url(f"#t-{opened.id}"))] if opened else []

    def clean(values: list[str]) -> str:
        return defuse(hide_secrets(", ".join(values)))

    doc = Rich(more_url=ctx.console_url())
    doc.add(Span(text=f"📊 Impact — severity {f.severity}, {ctx.incident.status.value}"))
    rows = (
        ("Services", list(f.services), "not known yet (add a `service` label or an alert)"),
        ("Regions", list(f.regions), "not known yet"),
        ("Users", list(f.users), "not known yet (no user-facing metric attached)"),
    )
    for label, values, unknown in rows:
        if values:
            doc.add(Span(text=f"{label}: ", bold=True), clean(values), *source, bullet=True)
        else:
            doc.add(Span(text=f"{label}: ", bold=True), unknown, bullet=True)
    if f.similar:
        links: list[Span | str] = [Span(text="Similar past incidents: ", bold=True)]
        for n, s in enumerate(f.similar):
            links += [", "] if n else []
            links.append(Span(text=s.id, link=f"{ctx.public_url.rstrip('/')}/incidents/{s.id}"))
        doc.add(*links, bullet=True)
    return doc


def summary(f: ImpactFacts, limit: int = 200) -> str:
    """The facts in one line for the status card's impact section ("" when nothing is known):
    names only, where each was read is on the assessment's timeline entry."""
    similar = [s.id for s in f.similar]
    parts = [
        f"{label} {hide_secrets(', '.join(values))}"
        for label, values in (("Services", list(f.services)), ("Regions", list(f.regions)), ("Users", list(f.users)))
        if values
    ]
    if similar:
        parts.append(f"Similar {', '.join(similar)}")
    line = " · ".join(parts)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def facts_lines(f: ImpactFacts) -> list[str]:
    """The facts as data lines for a model prompt."""
    out = [f"severity: {f.severity}"]
    out += [f"service: {k} (from {', '.join(v)})" for k, v in f.services.items()]
    out += [f"region: {k} (from {', '.join(v)})" for k, v in f.regions.items()]
    out += [f"users: {k} (from {', '.join(v)})" for k, v in f.users.items()]
    out += [f'similar past incident {s.id}: "{s.title}" ({s.status}, {s.severity})' for s in f.similar]
    return out
