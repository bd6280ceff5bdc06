"""PagerDuty's REST API, the way out: people's emails (assignees arrive as user references) and
actions taken in a room applied at PagerDuty, which stays the source of truth."""

from __future__ import annotations

import contextlib

import httpx

from warroom.models import IncidentStatus

ACCEPT = "application/vnd.pagerduty+json;version=2"


class PagerDutyRefused(Exception):
    """PagerDuty did not accept the change (its answer, or why it could not be asked)."""


class PagerDutyApi:
    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Token token={token}", "Accept": ACCEPT},
            timeout=timeout,
        )

    async def user_email(self, user_id: str) -> str | None:
        r = await self._http.get(f"/users/{user_id}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return (r.json().get("user") or {}).get("email")

    async def set_status(self, incident_id: str, status: IncidentStatus, from_email: str) -> None:
        """`PUT /incidents/{id}` as `From` the acting person; raises unless PagerDuty accepts it."""
        wanted = {IncidentStatus.ACKNOWLEDGED: "acknowledged", IncidentStatus.CLOSED: "resolved"}.get(status)
        if wanted is None:
            raise PagerDutyRefused(f"PagerDuty has no {status.value!r} status to set")
        try:
            r = await self._http.put(
                f"/incidents/{incident_id}",
                headers={"From": from_email, "Content-Type": "application/json"},
                json={"incident": {"type": "incident_reference", "status": wanted}},
            )
        except httpx.HTTPError as e:
            raise PagerDutyRefused(f"PagerDuty could not be reached: {e}") from e
        if r.status_code >= 300:
            message = r.text[:300]
            with contextlib.suppress(Exception):
                message = r.json()["error"]["message"]
            raise PagerDutyRefused(f"PagerDuty answered {r.status_code}: {message}")

    async def aclose(self) -> None:
        await self._http.aclose()
