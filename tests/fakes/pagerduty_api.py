"""A protocol-faithful fake of PagerDuty's REST API (the parts War Room calls) and a V3 webhook
sender with PagerDuty's real signature scheme.

REST (https://developer.pagerduty.com/api-reference/), strictly:
- every request needs `Authorization: Token token=<token>` (else 401) and
  `Accept: application/vnd.pagerduty+json;version=2`;
- `GET /users/{id}` → `{"user": {id, type: "user", name, email, summary}}`, 404 for unknown ids;
- `PUT /incidents/{id}` needs `From: <email of a user of the account>` (400 otherwise), a JSON
  body `{"incident": {"type": "incident_reference"|"incident", "status": "acknowledged"|"resolved"}}`
  (400 otherwise); a resolved incident cannot be acknowledged (400). Accepted changes are kept with
  who made them (`acknowledgements`, `resolved_by`).
Faults are queued per operation (`fail("PUT /incidents", 500)`): the next such call answers that status.

Webhooks (V3): `event(...)` builds `{"event": {id, event_type, resource_type, occurred_at, agent,
data}}` and `signed(body, *secrets)` its `X-PagerDuty-Signature`: `v1=<hex HMAC-SHA256 of the
body>` per secret, comma-separated (PagerDuty's documented scheme; written from its description).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ACCEPT = "application/vnd.pagerduty+json;version=2"


@dataclass
class FakeIncident:
    id: str
    title: str
    status: str = "triggered"
    assignees: list[str] = field(default_factory=list)  # user ids
    acknowledged_by: list[str] = field(default_factory=list)  # emails, from `From`
    resolved_by: str | None = None


class FakePagerDuty:
    def __init__(self, token: str = "pd-token") -> None:
        self.token = token
        self.users: dict[str, dict[str, str]] = {}
        self.incidents: dict[str, FakeIncident] = {}
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        self._faults: dict[str, list[int]] = {}
        self.app = self._build()

    # ---- setup
    def add_user(self, user_id: str, name: str, email: str) -> None:
        self.users[user_id] = {"id": user_id, "type": "user", "name": name, "summary": name, "email": email}

    def add_incident(self, incident_id: str, title: str, assignees: list[str]) -> FakeIncident:
        self.incidents[incident_id] = FakeIncident(incident_id, title, assignees=list(assignees))
        return self.incidents[incident_id]

    def fail(self, op: str, *statuses: int) -> None:
        self._faults.setdefault(op, []).extend(statuses)

    # ---- webhooks
    def event(
        self, event_type: str, incident_id: str, *, at: datetime | None = None, agent: str | None = None, **data: Any
    ) -> bytes:
        """A V3 webhook body; `agent` is the user id of who acted (None: PagerDuty itself)."""
        inc = self.incidents[incident_id]
        payload: dict[str, Any] = {
            "id": incident_id,
            "type": "incident",
            "self": f"https://api.pagerduty.com/incidents/{incident_id}",
            "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
            "number": 1,
            "status": inc.status,
            "incident_key": uuid.uuid4().hex,
            "title": inc.title,
            "service": {"id": "PSVC001", "type": "service_reference", "summary": "checkout"},
            "assignees": [{"id": u, "type": "user_reference", "summary": self.users[u]["name"]} for u in inc.assignees],
            "urgency": "high",
            "priority": None,
        }
        payload.update(data)
        event = {
            "event": {
                "id": uuid.uuid4().hex.upper()[:26],
                "event_type": event_type,
                "resource_type": "incident",
                "occurred_at": (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
                "agent": {"id": agent, "type": "user_reference", "summary": self.users[agent]["name"]}
                if agent
                else None,
                "client": None,
                "data": payload,
            }
        }
        return json.dumps(event).encode()

    @staticmethod
    def signed(body: bytes, *secrets: str) -> dict[str, str]:
        sigs = ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets)
        return {"X-PagerDuty-Signature": sigs, "Content-Type": "application/json"}

    # ---- the REST API
    def _build(self) -> FastAPI:
        app = FastAPI()

        def refused(status: int, message: str) -> JSONResponse:
            return JSONResponse({"error": {"code": 2001, "message": message}}, status_code=status)

        def checked(request: Request, op: str) -> JSONResponse | None:
            self.calls.append((request.method, request.url.path, dict(request.headers)))
            if request.headers.get("authorization") != f"Token token={self.token}":
                return refused(401, "Invalid Token")
            if request.headers.get("accept") != ACCEPT:
                return refused(406, "Not Acceptable")
            faults = self._faults.get(op)
            if faults:
                return refused(faults.pop(0), "injected fault")
            return None

        @app.get("/users/{user_id}")
        async def get_user(user_id: str, request: Request) -> JSONResponse:
            if (bad := checked(request, "GET /users")) is not None:
                return bad
            if user_id not in self.users:
                return refused(404, "Not Found")
            return JSONResponse({"user": self.users[user_id]})

        @app.put("/incidents/{incident_id}")
        async def put_incident(incident_id: str, request: Request) -> JSONResponse:
            if (bad := checked(request, "PUT /incidents")) is not None:
                return bad
            inc = self.incidents.get(incident_id)
            if inc is None:
                return refused(404, "Not Found")
            sender = request.headers.get("from", "")
            if sender not in {u["email"] for u in self.users.values()}:
                return refused(400, "A valid From header is required: the email of a user of this account")
            try:
                body = json.loads(await request.body())
                change = body["incident"]
                assert change["type"] in ("incident", "incident_reference")
                status = change["status"]
            except Exception:
                return refused(400, "Invalid Input Provided")
            if status == "acknowledged":
                if inc.status == "resolved":
                    return refused(400, "Incident Already Resolved")
                inc.status = "acknowledged"
                inc.acknowledged_by.append(sender)
            elif status == "resolved":
                inc.status, inc.resolved_by = "resolved", sender
            else:
                return refused(400, f"Invalid status {status!r}")
            return JSONResponse({"incident": {"id": inc.id, "type": "incident", "status": inc.status}})

        return app
