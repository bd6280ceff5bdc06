"""Text War Room posts to DingTalk, made inert: it never pings and never hides a link.

DingTalk's robot markdown turns `@<userid>` and `@all` into mentions, `[text](url)` into a link
whose target the reader cannot see, and `![](url)` into an image fetched from anywhere. Text that
comes from people (incident titles, names, AI answers quoting them) keeps its characters but loses
that power: a word joiner (U+2060) after every `@`, and a zero-width space inside `](` and `<` so
neither link, image nor HTML syntax forms. The people a message does address are put first, by
userid, as real mentions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

WORD_JOINER = "\u2060"
ZWSP = "\u200b"
USERID = re.compile(r"[A-Za-z0-9_$.-]{1,64}")
_MARKUP = re.compile(r"@|\]\(|!\[|<")


def inert(text: str) -> str:
    def defuse(m: re.Match[str]) -> str:
        s = m.group(0)
        return {"@": "@" + WORD_JOINER, "](": "]" + ZWSP + "(", "![": "!" + ZWSP + "[", "<": "<" + ZWSP}[s]

    return _MARKUP.sub(defuse, text)


def with_mentions(text: str, user_ids: Sequence[str]) -> str:
    """`@userid` for each addressed person (valid ids only), then the inert text."""
    mentions = [f"@{u}" for u in dict.fromkeys(user_ids) if USERID.fullmatch(u)]
    body = inert(text)
    return " ".join([*mentions, body]) if mentions else body


def title_of(text: str, limit: int = 40) -> str:
    """The notification title of a markdown message: its first line, inert, short."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "War Room")
    first = inert(first)
    return first if len(first) <= limit else first[: limit - 1] + "…"
