"""Which of the workflow's changes a run takes, asked once per run for all of them.

The first `workflow.patched(id)` of a run records a marker and, from the SDK's core, an upsert of
the `TemporalChangeVersion` search attribute: two history events and a visibility write on the
server each time, for every change a run meets (a room's opening met three). A run started on this
code records one marker, `BUNDLE`, which stands for every change in `BUNDLED`; a run from before
it replays as it was recorded, asking for each change by its own id. Both paths decide once per
run: the first `patched` call of a run fixes the bundle's answer (true in a new run, false when
replaying a history without it), and each change asked for after is answered from it.

A change made after this one is asked for by its own id (`patched(id)` with an id not in
`BUNDLED`), until a later bundle gathers it.
"""

from __future__ import annotations

from temporalio import workflow

BUNDLE = "changes-to-2026-12"
BUNDLED = frozenset(
    {
        "reminders-replan",
        "source-timeline",
        "rules-in-snapshot",
        "source-refusals",
        "ai-answer-streamed",
        "roles-from-room",
        "ai-rich-answers",
        "ai-impact-on-card",
        "ai-rich-impact",
        "ai-rich-review-link",
        "several-rooms",
        "open-room-local",
        "search-from-start",
        "assistant-side-by-side",
        "search-creating-when-waiting",
    }
)


def patched(change_id: str) -> bool:
    """Whether this run takes the change `change_id` (as `workflow.patched`)."""
    if change_id in BUNDLED and workflow.patched(BUNDLE):
        return True
    return workflow.patched(change_id)
