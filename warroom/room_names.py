"""Room names from a rule's template: `{id}`, `{title}`, `{severity}`, `{date}` (the incident's
creation day, YYYYMMDD) and `{label:NAME}` (one of its labels), nothing else.

The template is checked when the rules file is loaded and filled in the incident's workflow when
its room is opened (a pure function of the incident, so the workflow stays deterministic), from
the incident as it is then. Only named placeholders: no attribute or index access, so a template
cannot reach into anything but these fields.
"""

from __future__ import annotations

import re

from warroom.models import Incident

PLACEHOLDER = re.compile(r"\{([a-z]+)(?::([A-Za-z0-9_.\-/]{1,100}))?\}")
FIELDS = ("id", "title", "severity", "date", "label")
NAME_MAX = 80  # what the room names of every platform fit in before their own limits


def check_template(template: str) -> str:
    """The template, or ValueError naming what is wrong with it."""
    if "{id}" not in template:
        raise ValueError("a room name template needs {id}: names must tell incidents apart")
    for m in PLACEHOLDER.finditer(template):
        field, arg = m.group(1), m.group(2)
        if field not in FIELDS:
            raise ValueError(f"unknown placeholder {m.group(0)}: use {', '.join('{' + f + '}' for f in FIELDS)}")
        if (field == "label") != (arg is not None):
            raise ValueError(f"{m.group(0)}: only {{label:NAME}} takes a name")
    rest = PLACEHOLDER.sub("", template)
    if "{" in rest or "}" in rest:
        raise ValueError("a brace outside a placeholder: use {id}, {title}, {severity}, {date} or {label:NAME}")
    return template


def room_name(template: str, incident: Incident) -> str:
    """The template filled from `incident`, on one line, within NAME_MAX characters."""

    def value(m: re.Match[str]) -> str:
        field, arg = m.group(1), m.group(2)
        if field == "label":
            return incident.labels.get(arg or "", "")
        return {
            "id": incident.id,
            "title": incident.title,
            "severity": incident.severity.value,
            "date": incident.created_at.strftime("%Y%m%d"),
        }.get(field, "")

    name = " ".join(PLACEHOLDER.sub(value, template).split())[:NAME_MAX]
    return name if incident.id in name else f"{incident.id} {name}"[:NAME_MAX]  # a long title cut it off
