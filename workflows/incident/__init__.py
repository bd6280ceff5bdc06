"""The incident workflow, as a package: the workflow's handlers and story in `workflow`, each of
its parts in a module of its own. Starters, workers and tests import from here."""

from workflows.incident.options import IM_RETRY
from workflows.incident.search import (
    IM_PLATFORM,
    INCIDENT_ID,
    INCIDENT_SEVERITY,
    INCIDENT_STATUS,
    SEARCH_ATTRIBUTES,
    WAR_ROOM_STATE,
)
from workflows.incident.workflow import IncidentWarRoom

__all__ = [
    "IM_PLATFORM",
    "IM_RETRY",
    "INCIDENT_ID",
    "INCIDENT_SEVERITY",
    "INCIDENT_STATUS",
    "SEARCH_ATTRIBUTES",
    "WAR_ROOM_STATE",
    "IncidentWarRoom",
]
