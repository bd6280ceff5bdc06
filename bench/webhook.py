"""From an alert to a ready room: an Alertmanager webhook, a rule that opens a room, against the
floor and against a room asked for through the API, in the same run.

    .venv/bin/python -m bench.webhook                      # L = 25 ms, 10 samples
    .venv/bin/python -m bench.webhook --latency-ms 100 --samples 20

The real stack as `bench.run` has it (a dev server, the worker as its own process, the API in
this process, the sandbox IM holding every call L). Each sample posts a new alert group to
`/sources/alertmanager`; the rules file's rule opens a sandbox room with five people linked since
the warm-up. Room ready is read from the sandbox's own records (room, members, card), as in
`bench.run`. Floor = 2 L: the room is created, then the invites and the card go out together.
The reference is the same room asked for with `POST /war-room` right after its incident was
created (`bench.run`'s room ready, linked responders), which a webhook adds its intake to.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from rich.table import Table

from bench.run import SETTLE, Figure, Stack, _ms, _pct, _room_ready_at, _until, console, room_ready, running_stack

TOKEN = "bench-alertmanager"
PEOPLE = [f"r{n}@roster.bench.example" for n in range(5)]  # bench.run's linked roster


def rules_file() -> Path:
    path = Path(tempfile.mkdtemp(prefix="warroom-bench-rules-")) / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - name: critical alerts get a room\n"
        "    match: {source: alertmanager, severity_at_least: high}\n"
        f"    room: {{platform: sandbox, invite: [{', '.join(PEOPLE)}]}}\n"
    )
    return path


def alert_group() -> dict:
    tag = uuid.uuid4().hex[:12]
    labels = {"alertname": f"Bench{tag}", "service": "checkout", "severity": "critical"}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="Bench{tag}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "warroom",
        "groupLabels": {"alertname": labels["alertname"]},
        "commonLabels": labels,
        "commonAnnotations": {"summary": f"bench {tag}"},
        "externalURL": "http://alertmanager.bench.example:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"bench {tag}"},
                "startsAt": "2026-12-04T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.bench.example:9090/graph",
                "fingerprint": tag,
            }
        ],
    }


async def webhook_room_ready(stack: Stack, samples: int) -> list[float]:
    times = []
    for n in range(samples + 1):  # the first one warms up (and links the roster)
        await asyncio.sleep(SETTLE)
        t0 = time.time()
        r = await stack.api.post(
            "/sources/alertmanager", json=alert_group(), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        r.raise_for_status()
        [taken] = r.json()["incidents"]
        assert taken["room"] == "sandbox", taken
        ready = await _until(lambda i=taken["id"]: _room_ready_at(stack, i, len(PEOPLE)))
        if n:
            times.append(ready - t0)
    return times


async def main(args: argparse.Namespace) -> None:
    async with running_stack(
        "bench-webhook",
        args.latency_ms,
        WARROOM_ALERTMANAGER_TOKEN=TOKEN,
        WARROOM_RULES_FILE=str(rules_file()),
    ) as stack:
        floor = 2 * args.latency_ms / 1000
        times = await webhook_room_ready(stack, args.samples)
        await room_ready(stack, args.samples, len(PEOPLE), roster=True)
        p50 = statistics.median(times)
        stack.figures.append(
            Figure(
                "alert → room ready (Alertmanager webhook, rule, 5 linked people)",
                f"p50 {_ms(p50)}, p99 {_ms(_pct(times, 99))}",
                _ms(floor),
                p50 / floor,
                "≤ 1.25x at p50",
                p50 <= 1.25 * floor,
            )
        )
        table = Table(title=f"From an alert to a ready room — L = {args.latency_ms:g} ms, {args.samples} samples")
        for col in ("figure", "measured", "floor", "ratio", "target", "note"):
            table.add_column(col)
        for f in stack.figures:
            ok = "" if f.ok is None else (" [green]met[/]" if f.ok else " [red]missed[/]")
            table.add_row(
                f.name, f.measured, f.floor, "" if f.ratio is None else f"{f.ratio:.2f}x", f.target + ok, f.note
            )
        console.print(table)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=25.0)
    parser.add_argument("--samples", type=int, default=10)
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
