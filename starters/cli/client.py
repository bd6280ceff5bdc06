"""The HTTP client of the War Room API: one request, and every way it can fail as a `CliError`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starters.cli.config import DEFAULT_API_URL, client_settings
from starters.cli.errors import EXIT_API_ERROR, EXIT_UNREACHABLE, fail

if TYPE_CHECKING:
    import httpx


class Api:
    def __init__(self, base_url: str | None, *, actor: str | None = None, timeout: float = 60) -> None:
        import httpx  # here, not at start-up: `warroom --help` and the process commands never need it

        url, token = client_settings()
        self.base_url = (base_url or url or DEFAULT_API_URL).rstrip("/")
        headers = {"X-Warroom-Source": "cli", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if actor:
            headers["X-Warroom-Actor"] = actor
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        accept: tuple[int, ...] = (200, 201, 202),
    ) -> httpx.Response:
        import httpx

        try:
            r = self.http.request(
                method, path, json=json_body, params={k: v for k, v in (params or {}).items() if v is not None}
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            fail(
                f"cannot reach the War Room API at {self.base_url} ({e}).",
                EXIT_UNREACHABLE,
                "Start the local stack with `warroom dev`, or point --api-url (or WARROOM_PUBLIC_URL) "
                "at a running API.",
            )
        except httpx.TimeoutException:
            fail(f"the War Room API at {self.base_url} did not answer in time ({method} {path}).")
        except httpx.HTTPError as e:
            fail(f"request to the War Room API at {self.base_url} failed: {e}", EXIT_UNREACHABLE)
        if r.status_code in accept:
            return r
        fail(api_error_message(r), EXIT_API_ERROR, _hint_for(r))

    def json(self, method: str, path: str, **kw: Any) -> Any:
        r = self.call(method, path, **kw)
        try:
            return r.json()
        except ValueError:
            fail(f"the API answered {r.status_code} with something that is not JSON: {r.text[:200]!r}")


def api_error_message(r: httpx.Response) -> str:
    try:
        e = r.json()["error"]
        return f"{e['message']} (HTTP {r.status_code}, {e.get('code', 'error')})"
    except Exception:
        text = r.text.strip()[:300] or r.reason_phrase
        return f"the API answered HTTP {r.status_code}: {text}"


def _hint_for(r: httpx.Response) -> str:
    if r.status_code == 401:
        return "Set WARROOM_API_TOKEN to the API's token."
    if r.status_code == 404 and "/incidents/" in r.request.url.path:
        return "List incidents with `warroom incident list`."
    return ""


def segment(value: str) -> str:
    """`value` quoted as one path segment (an incident id may hold a slash)."""
    return quote(value, safe="")


def incident_path(incident_id: str) -> str:
    return f"/api/v1/incidents/{segment(incident_id)}"
