"""`TimelineKind` names every kind the code writes or matches.

The workflow still writes kinds as string literals (its members compare equal to them), so this
test reads the source: a literal shaped like a kind that the enum lacks is a kind nobody can match
against without going back to literals.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from warroom.enums import ACTION_KINDS, AI_KINDS, TimelineKind, action_of
from warroom.models import Action

ROOT = Path(__file__).resolve().parent.parent
KIND = re.compile(r"^(incident|room|member|card|action|reminder|source|role|ai)\.[a-z_]+$")
# CONTRACT.md: "Timeline kinds include at least: ..."
CONTRACT_KINDS = (
    "incident.updated",
    "room.created",
    "room.failed",
    "room.dismissed",
    "member.invited",
    "member.unlinked",
    "member.removed",
    "card.posted",
    "card.updated",
    "action.acknowledge",
    "action.snooze",
    "action.close",
    "action.reopen",
    "action.refused",
    "ai.answer",
    "ai.review",
)


def kind_literals() -> dict[str, str]:
    found = {}
    for package in ("warroom", "workflows", "activities", "workers", "starters"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and KIND.match(node.value):
                    found.setdefault(node.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_kind_in_the_source_is_a_member():
    literals = kind_literals()
    assert "room.created" in literals  # the scan sees the workflow's literals
    missing = {kind: where for kind, where in literals.items() if kind not in set(TimelineKind)}
    assert not missing, f"add these to TimelineKind: {missing}"


def test_the_contract_kinds_are_members():
    assert set(CONTRACT_KINDS) <= set(TimelineKind)


def test_members_equal_their_strings():
    assert TimelineKind.AI_ANSWER == "ai.answer"
    assert "card.posted" in frozenset({TimelineKind.CARD_POSTED})
    assert f"{TimelineKind.ROOM_CREATED}" == "room.created"


def test_action_kinds():
    assert {TimelineKind.for_action(a) for a in Action} == ACTION_KINDS  # `f"action.{action}"` in the workflow
    assert action_of("action.snooze") is Action.SNOOZE
    assert action_of("action.refused") is None
    assert action_of("room.created") is None
    assert action_of("action.someday") is None  # written by a newer worker: not an action this reader knows
    assert {
        TimelineKind.AI_ANSWER,
        TimelineKind.AI_IMPACT,
        TimelineKind.AI_KNOWLEDGE,
        TimelineKind.AI_REVIEW,
    } == AI_KINDS


def test_every_incident_source_has_its_timeline_kind():
    from warroom.enums import SOURCE_KINDS
    from warroom.sources.alertmanager import AlertmanagerSource
    from warroom.sources.grafana import GrafanaSource
    from warroom.sources.pagerduty import PagerDutySource
    from warroom.sources.webhook import WebhookSource

    names = {s.name for s in (AlertmanagerSource, GrafanaSource, PagerDutySource, WebhookSource)}
    assert names == SOURCE_KINDS
    assert {TimelineKind.for_source(n) for n in names} == {k for k in TimelineKind if k.startswith("source.")}
