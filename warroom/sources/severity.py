"""Severity from a `severity` label (CONTRACT.md's mapping), shared by the alerting sources."""

from __future__ import annotations

from warroom.models import Severity

_BY_LABEL = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "error": Severity.HIGH,
    "page": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "info": Severity.LOW,
}
RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


def from_label(value: str | None) -> Severity:
    return _BY_LABEL.get((value or "").strip().lower(), Severity.MEDIUM)


def highest(values: list[Severity]) -> Severity:
    return max(values, key=RANK.__getitem__, default=Severity.MEDIUM)
