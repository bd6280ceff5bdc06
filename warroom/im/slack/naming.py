"""Channel names: a template rendered into what Slack accepts, deterministically.

Slack: "lowercase letters, numbers, hyphens, and underscores, and must be 80 characters or
less". The same incident must always yield the same name (creation is exactly-once through
`name_taken`), so nothing here reads a clock: the date is the incident's creation date.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

MAX_LEN = 80
DEFAULT_TEMPLATE = "inc-{date}-{id}-{slug}"
FIELDS = ("date", "id", "slug")
_INVALID = re.compile(r"[^a-z0-9_-]+")
_DASHES = re.compile(r"-{2,}")


def slugify(text: str) -> str:
    """ASCII, lowercase, words joined by single hyphens ("Checkout 5xx — EU!" → "checkout-5xx-eu")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _DASHES.sub("-", _INVALID.sub("-", ascii_text.lower())).strip("-_")


def clean(name: str, max_len: int = MAX_LEN) -> str:
    """Whatever a template produced, made valid: allowed characters only, ≤ `max_len`."""
    name = _DASHES.sub("-", _INVALID.sub("-", name.lower())).strip("-_")
    if len(name) > max_len:
        name = name[:max_len].rstrip("-_")
    return name


def check_template(template: str) -> None:
    """Raise ValueError when the template names a field we do not fill or has no `{id}`."""
    try:
        template.format(**dict.fromkeys(FIELDS, "x"))
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"bad channel name template {template!r}: use only {{{'}, {'.join(FIELDS)}}}") from e
    if "{id}" not in template:
        raise ValueError(f"channel name template {template!r} must contain {{id}} so names are unique per incident")


def channel_name(template: str, *, incident_id: str, title: str, created: datetime | None, severity: str = "") -> str:
    """Render the template. The slug is cut first when the name is too long, never the id."""
    date = created.strftime("%Y%m%d") if created else ""
    fixed = template.format(date=date, id=slugify(incident_id), slug="", severity=severity)
    room_for_slug = max(MAX_LEN - len(clean(fixed, 10**6)) - 1, 0)
    slug = slugify(title)[:room_for_slug].rstrip("-_")
    name = clean(template.format(date=date, id=slugify(incident_id), slug=slug, severity=severity))
    return name or clean(f"inc-{incident_id}") or "incident"


def candidates(name: str, count: int = 10) -> list[str]:
    """The name, then deterministic alternatives for when it is held by a channel not ours."""
    out = [name]
    for n in range(2, count + 1):
        suffix = f"-{n}"
        out.append(clean(name[: MAX_LEN - len(suffix)].rstrip("-_") + suffix))
    return out
