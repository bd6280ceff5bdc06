"""Fuzz the HTTP API from its own OpenAPI document: whatever the body, path or query, it answers
with a 2xx or a helpful 4xx — never a 500. Real stack: dev server, a worker process, SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from starters.api.app import create_app
from warroom.settings import Settings

pytestmark = pytest.mark.timeout(600)
EXAMPLES = int(os.environ.get("WARROOM_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def fuzz_settings(dev_env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    s = Settings(
        WARROOM_TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        WARROOM_DATABASE_URL=f"sqlite:///{tmp / 'fuzz.db'}",
        WARROOM_TASK_QUEUE="fuzz",
        WARROOM_SANDBOX_SIGNING_SECRET="fuzz",
        _env_file=None,
    )
    env = {
        **os.environ,
        "WARROOM_TEMPORAL_ADDRESS": s.temporal_address,
        "WARROOM_DATABASE_URL": s.database_url,
        "WARROOM_TASK_QUEUE": s.task_queue,
        "WARROOM_SANDBOX_SIGNING_SECRET": "fuzz",
    }
    from warroom.store import Store

    Store(s.database_url).close()  # migrate before the worker and the API start
    worker = subprocess.Popen([sys.executable, "-m", "workers.main"], env=env, stderr=subprocess.DEVNULL)
    yield s
    worker.terminate()
    worker.wait(30)


def test_no_server_errors(fuzz_settings: Settings) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(fuzz_settings, answer_within=2))
    failures: list[str] = []
    seen: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call()
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")
            elif response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
                error = response.json().get("error") if isinstance(response.json(), dict) else None
                if not (error and error.get("code") and error.get("message")):
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code} bare {response.text}")

        fuzz()
    assert not failures, "\n".join(failures[:20])
    # the fuzzer reached the handlers, not only the validation in front of them
    assert sum(n for code, n in seen.items() if code < 300) >= 10 and seen.get(422, 0) >= 5, seen
