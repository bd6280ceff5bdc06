"""The rules file (WARROOM_RULES_FILE, YAML): which incidents get a room on their own, where, with
whom; and the generic webhooks with their mappings. Validated at start: an invalid file stops the
process naming the line at fault, so a typo never silently stops rooms from opening."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from warroom.models import Incident, IncidentStatus, Labels, Severity
from warroom.room_names import check_template
from warroom.sources.severity import RANK


class RulesFileError(Exception):
    """The rules file cannot be used; the message names the file and line."""


class Match(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str | None = None
    severity_at_least: Severity | None = None
    labels: Labels = Field(default_factory=dict)
    # The incident's service (its `service` label or an alert's service) is one of these.
    services: list[str] = Field(default_factory=list, max_length=100)


def checked_emails(v: list[str]) -> list[str]:
    for email in v:
        if "@" not in email or " " in email.strip():
            raise ValueError(f"not an email address: {email!r}")
    return [e.strip().lower() for e in v]


class RoomChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: str | None = None
    # Rooms on several platforms at once (a Slack room and a Feishu room): the first is the
    # incident's room (the assistant's), the others are kept beside it. Instead of `platform`.
    platforms: list[str] = Field(default_factory=list, max_length=9)
    # The room's name (warroom.room_names): e.g. "{severity} {id} {label:service}"; unset: "inc-{id} {title}".
    name: str | None = Field(None, min_length=1, max_length=200)
    invite: list[str] = Field(default_factory=list, max_length=100)  # in the room beside the responders
    invite_groups: list[str] = Field(default_factory=list, max_length=20)  # names from the file's `groups`
    # Who stops being a responder: `remove` takes them out of the room, `keep` leaves them in;
    # unset: WARROOM_REMOVE_DEPARTED_MEMBERS.
    members: Literal["keep", "remove"] | None = None

    @field_validator("invite")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        return checked_emails(v)

    @field_validator("name")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        return None if v is None else check_template(v)

    @field_validator("platforms")
    @classmethod
    def _once_each(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("each platform once")
        return v

    def model_post_init(self, _: Any) -> None:
        if self.platform and self.platforms:
            raise ValueError("`platform` or `platforms`, not both")

    def where(self, default: str) -> list[str]:
        """The platforms of the rule's rooms, the first room's first."""
        return self.platforms or [self.platform or default]


class Reminders(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unacknowledged_after_minutes: int | None = Field(None, ge=1)
    update_every_minutes: int | None = Field(None, ge=1)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    match: Match = Field(default_factory=Match)
    room: RoomChoice | None = None
    reminders: Reminders | None = None
    dismiss_after_close_minutes: int | None = Field(None, ge=0)

    def matches(self, source: str, incident: Incident) -> bool:
        m = self.match
        if m.source and m.source != source:
            return False
        if m.severity_at_least and RANK[incident.severity] < RANK[m.severity_at_least]:
            return False
        if m.services and not _services(incident) & set(m.services):
            return False
        return all(incident.labels.get(k) == v for k, v in m.labels.items())


def _services(incident: Incident) -> set[str]:
    found = {a.service for a in incident.alerts if a.service}
    if incident.labels.get("service"):
        found.add(incident.labels["service"])
    return found


class WebhookMapping(BaseModel):
    """JMESPath expressions into the delivered JSON."""

    model_config = ConfigDict(extra="forbid")
    id: str
    title: str
    severity: str | None = None
    status: str | None = None
    responders: str | None = None  # a list of emails, or of objects with `email`/`name`
    at: str | None = None  # the source's time of the delivery (RFC 3339): orders deliveries
    delivery_id: str | None = None  # the delivery's own id (else: the body's hash)
    description: str | None = None
    url: str | None = None


class Webhook(BaseModel):
    """A generic webhook: `token` (bearer/basic) or `hmac_secret` (hex HMAC-SHA256 of the body in
    `signature_header`, an optional `sha256=` prefix allowed)."""

    model_config = ConfigDict(extra="forbid")
    token: str | None = None
    hmac_secret: str | None = None
    signature_header: str = "X-Signature"
    mapping: WebhookMapping
    severity_map: dict[str, Severity] = Field(default_factory=dict)
    status_map: dict[str, IncidentStatus] = Field(default_factory=dict)

    @field_validator("mapping")
    @classmethod
    def _compiles(cls, v: WebhookMapping) -> WebhookMapping:
        import jmespath
        from jmespath.exceptions import JMESPathError

        for key, expr in v.model_dump().items():
            if expr is not None:
                try:
                    jmespath.compile(expr)
                except JMESPathError as e:
                    raise ValueError(f"{key}: not a JMESPath expression: {e}") from None
        return v

    def model_post_init(self, _: Any) -> None:
        if not self.token and not self.hmac_secret:
            raise ValueError("a webhook needs `token` or `hmac_secret`: an open webhook could open rooms for anyone")


class RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(default_factory=list)
    webhooks: dict[str, Webhook] = Field(default_factory=dict)
    # Responders of alert groups (Alertmanager, Grafana) by label: label → value → emails.
    responders: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    # People by group name, for rules' `room.invite_groups` (a team's leads, a comms rota).
    groups: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("groups")
    @classmethod
    def _group_emails(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        return {name: checked_emails(emails) for name, emails in v.items()}

    def unknown_groups(self) -> list[tuple[int, str]]:
        """(rule index, group) of every `invite_groups` entry that `groups` does not define."""
        return [
            (i, g) for i, r in enumerate(self.rules) for g in (r.room.invite_groups if r.room else [])
            if g not in self.groups
        ]  # fmt: skip

    def invitees(self, rule: Rule) -> list[str]:
        """The rule's extra people: its `invite`, then its groups' people, each once."""
        if rule.room is None:
            return []
        found = list(rule.room.invite)
        for group in rule.room.invite_groups:
            found += [e for e in self.groups.get(group, []) if e not in found]
        return found[:100]

    @field_validator("responders")
    @classmethod
    def _responder_emails(cls, v: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
        return {
            label: {value: checked_emails(emails) for value, emails in values.items()} for label, values in v.items()
        }

    def first_match(self, source: str, incident: Incident) -> Rule | None:
        return next((r for r in self.rules if r.matches(source, incident)), None)

    def responders_for(self, label_sets: list[dict[str, str]]) -> list[str]:
        """The emails the `responders` mapping gives alerts with these labels, each once, in the
        file's order."""
        found: list[str] = []
        for label, values in self.responders.items():
            for labels in label_sets:
                for email in values.get(labels.get(label, ""), []):
                    if email not in found:
                        found.append(email)
        return found


EMPTY = RulesFile()


def load_rules(path: str | Path | None) -> RulesFile:
    """The rules of `path` (none: no rules). Raises `RulesFileError` naming the line at fault."""
    if not path:
        return EMPTY
    p = Path(path)
    try:
        raw = p.read_text()
    except OSError as e:
        raise RulesFileError(f"{p}: cannot read the rules file: {e}") from None
    try:
        node = yaml.compose(raw)
        data = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise RulesFileError(f"{p}:{line}: not valid YAML: {getattr(e, 'problem', e)}") from None
    try:
        rules = RulesFile.model_validate(data or {})
    except ValidationError as e:
        err = e.errors()[0]
        loc = [x for x in err["loc"] if x != "__root__"]
        line = _line_of(node, loc)
        where = ".".join(str(x) for x in loc) or "top level"
        raise RulesFileError(f"{p}: line {line}: {where}: {err['msg']}") from None
    for i, group in rules.unknown_groups():
        line = _line_of(node, ["rules", i, "room", "invite_groups"])
        raise RulesFileError(f"{p}: line {line}: rules.{i}.room.invite_groups: no group {group!r} under `groups`")
    return rules


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int:
    """The line of the deepest YAML node on the path `loc` (1-based)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == str(key)), None)
            if found is None:
                break
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return line
