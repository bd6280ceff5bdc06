"""Words that mark what a room message is: a cause or change, a firm decision, how things stand,
or something that is not a cause (a decision, an action item, a lesson). Shared by the offline
answers and the offline review, so both read a room the same way."""

from __future__ import annotations

import re

CHANGE = re.compile(  # a change or a failure: what a cause usually is
    r"\b(deploy\w*|chang\w*|config\w*|push\w*|rotat\w*|migrat\w*|terraform|upgrad\w*|release\w*|"
    r"removed|reindex|import|v\d[\w.]*|maintenance|planned|expired|lost|stale|oom\w*|not silenced|stuck|"
    r"poison|crash\w*|returns|4\d\d|5\d\d|reduced|no-store)\b|更新|变更|切换|改",
    re.I,
)

DECISION_FIRM = re.compile(r"\b(decided|decision|let'?s|we will|we'll)\b|决定", re.I)

STATE = re.compile(  # how things stand now
    r"\b(resolved|recovered|fixed|green|back to|down to|drained|draining|restored|stable|ok)\b|恢复|已恢复", re.I
)

NOT_CAUSE = re.compile(
    r"\b(decided|decision|let'?s|we will|we'll|going to|action items?|follow[- ]up|todo|lesson)\b|决定|后续", re.I
)
