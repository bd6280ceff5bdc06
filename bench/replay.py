"""The fake model for the assistant bench: the OpenAI-compatible fake server (tests/fakes/openai_api.py)
answering each prompt with the output recorded for it in tests/assistant_set/model_replies.yaml.

A prompt is matched by what it carries: the question's message id (`[M:q-<case>-<n>]`, the bench's
ids) for answers, the incident id for an impact assessment or a review. `{key}` in a recorded
output becomes that event's citation id. Prompts with nothing recorded get the fake's default.
Chunks stream at a model's pace (CHUNK_DELAY per 16 characters) so the time to first text means
something.
"""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.openai_api import FakeOpenAI, Recorded

CHUNK_DELAY = 0.04  # ~100 tokens a second
_QUESTION = re.compile(r"\[M:q-([^\]\s]+)-(\d+)\]")
_INCIDENT = re.compile(r"^id: (\S+)$", re.M)


class ReplayModel:
    def __init__(self, ids: dict[str, dict[str, str]], replies: dict[str, Any]) -> None:
        """`ids`: per case, event key → citation id (bench.assistant.ids_of)."""
        self.replies = replies
        self.ids = ids
        self.fake = FakeOpenAI(answer=self.answer, chunk_delay=CHUNK_DELAY)
        self.replayed = 0

    def _fill(self, case: str, text: str) -> str:
        ids = self.ids.get(case, {})
        return re.sub(r"\{([\w-]+)\}", lambda m: ids.get(m.group(1), f"R:{m.group(1)}"), text)

    def answer(self, req: Recorded) -> str:
        recorded = ""
        case = ""
        if "post-incident review" in req.system or "impact assessment" in req.system:
            m = _INCIDENT.search(req.user)
            case = m.group(1) if m else ""
            field = "review" if "post-incident review" in req.system else "impact"
            recorded = (self.replies.get(case) or {}).get(field) or ""
        elif "why the runbook" not in req.system:
            m = _QUESTION.search(req.user.split("<question>")[-1])
            if m:
                case, n = m.group(1), int(m.group(2))
                answers = (self.replies.get(case) or {}).get("answers") or []
                recorded = answers[n - 1] if n <= len(answers) else ""
        if not recorded:
            return FakeOpenAI.default_answer(req)
        self.replayed += 1
        return self._fill(case, recorded)
