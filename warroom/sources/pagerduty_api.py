"""PagerDuty's REST API, the way out: people's emails (assignees arrive as user references) and
actions taken in a room applied at PagerDuty, which stays the source of truth."""

from __future__ import annotations

import contextlib

import httpx

from warroom.models import IncidentStatus
from warroom.settings import Settings

ACCEPT = "application/vnd.pagerduty+json;version=2"


class PagerDutyRefused(Exception):
    """PagerDuty did not accept the change (its answer, or why it could not be asked)."""


class PagerDutyUnavailable(Exception):
    """PagerDuty could not answer now (unreachable, 5xx, 429): asking again later may work."""


def from_settings(settings: Settings) -> PagerDutyApi | None:
    token = settings.pagerduty_api_token.get_secret_value()
    return PagerDutyApi(settings.pagerduty_api_base_url, token) if token else None


class PagerDutyApi:
    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Token token={token}", "Accept": ACCEPT},
            timeout=timeout,
        )

    async def user_email(self, user_id: str) -> str | None:
        """The user's email; None when PagerDuty does not say (the person then stays a PagerDuty
        id, shown in the room's card, and is invited once PagerDuty answers a later delivery)."""
        try:
            r = await self._http.get(f"/users/{user_id}")
            if r.status_code != 200:
                return None
            email = (r.json().get("user") or {}).get("email")
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        return email if isinstance(email, str) else None

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
            raise PagerDutyUnavailable(f"PagerDuty could not be reached: {e}") from e
        if r.status_code >= 500 or r.status_code == 429:
            raise PagerDutyUnavailable(f"PagerDuty answered {r.status_code}; asking again")
        if r.status_code >= 300:
            message = r.text[:300]
            with contextlib.suppress(Exception):
                message = r.json()["error"]["message"]
            raise PagerDutyRefused(f"PagerDuty answered {r.status_code}: {message}")

    async def aclose(self) -> None:
        await self._http.aclose()
