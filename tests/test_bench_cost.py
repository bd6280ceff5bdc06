"""bench.cost on the real stack with two rooms: the counts it reports come from real records.

Each room's life (open, acknowledge, one responder added, close, dismiss) must show up where the
benchmark reads it: one incident workflow per room, one room opened and one dismissed on the IM,
the worker's store writes seen by the counting hook in its process, the API's in this one.
A broken hook (no writes counted), a history reader that misses events, or a life that never
reaches dismissal fails here.
"""

from __future__ import annotations

from bench.cost import measure, report
from bench.run import running_stack


async def test_cost_counts_two_room_lives() -> None:
    async with running_stack("costtest", 5) as stack:
        m = await measure(stack, rooms=2, responders=2, concurrency=4)
    assert m["dismissed"] == 2
    assert m["history"]["workflows"]["IncidentWarRoom"] == 2
    acts = m["history"]["activities"]
    # each room tried first in a local activity (then as an activity only if that try failed)
    assert m["history"]["local_activities"]["im_open_room"] == 2 and acts["im_dismiss_room"] == 2
    assert m["history"]["workflow_tasks"] >= 2 * 5  # start, open, acknowledge, responders, close, dismiss
    fallbacks = acts.get("im_open_room", 0)  # a local try that ran out on a loaded machine asks again, by key
    assert m["im_calls"]["create_room"] == 2 + fallbacks and m["im_calls"]["dismiss_room"] == 2
    assert m["worker_writes"]["INSERT rooms"] == 2  # counted by bench.count_writes in the worker process
    assert m["api_writes"]["INSERT incidents"] == 2  # counted in this process
    assert m["timeline_rows"] >= m["worker_writes"]["INSERT timeline"] > 0
    assert m["worker_cpu_all"] > 0
    assert [row[0] for row in report(m)][:3] == ["workflows", "history events", "workflow tasks"]
