"""The search attributes operators find incidents by in Temporal UI (and `temporal workflow list`)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeKey

from workflows.incident.patches import patched

with workflow.unsafe.imports_passed_through():
    from warroom.messages import CarriedState

INCIDENT_ID = SearchAttributeKey.for_keyword("IncidentId")
INCIDENT_STATUS = SearchAttributeKey.for_keyword("IncidentStatus")
INCIDENT_SEVERITY = SearchAttributeKey.for_keyword("IncidentSeverity")
WAR_ROOM_STATE = SearchAttributeKey.for_keyword("WarRoomState")
IM_PLATFORM = SearchAttributeKey.for_keyword("ImPlatform")
SEARCH_ATTRIBUTES = [INCIDENT_ID, INCIDENT_STATUS, INCIDENT_SEVERITY, WAR_ROOM_STATE, IM_PLATFORM]


class SearchAttributes:
    """Keeps the run's search attributes equal to its incident and room. Only the values that
    changed are upserted, and nothing when none did: each upsert is a history event and a
    visibility write on the server. A run starts from the values it was started with (the API
    sets them, a continued run carries them), so its first pass upserts nothing they already say
    (patch `search-from-start`; before it, the first pass upserted all of them again)."""

    def __init__(self, state: CarriedState) -> None:
        self._s = state
        self._shown: dict[str, str] | None = None

    def upsert(self) -> None:
        if self._shown is None:
            self._shown = _started_with() if patched("search-from-start") else {}
        values = {
            INCIDENT_ID.name: self._s.incident.id,
            INCIDENT_STATUS.name: self._s.incident.status.value,
            INCIDENT_SEVERITY.name: self._s.incident.severity.value,
            WAR_ROOM_STATE.name: self._s.room.state.value,
            IM_PLATFORM.name: self._s.room.platform,
        }
        if values == self._shown:
            return
        keys = {k.name: k for k in SEARCH_ATTRIBUTES}
        workflow.upsert_search_attributes([keys[k].value_set(v) for k, v in values.items() if self._shown.get(k) != v])
        self._shown = values


def _started_with() -> dict[str, str]:
    started = workflow.info().typed_search_attributes
    return {k.name: v for k in SEARCH_ATTRIBUTES if isinstance(v := started.get(k), str)}
