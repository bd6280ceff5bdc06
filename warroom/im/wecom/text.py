"""Text War Room posts to WeCom, made inert: it never pings and never hides a link.

WeCom markdown turns `<@userid>` into a mention, `<font …>` into markup and `[text](url)` into
a link whose target the reader cannot see; plain text turns `@all` into a ping for everyone.
Text that comes from people (incident titles, names, AI answers quoting them) keeps its
characters but loses that power: a word joiner (U+2060) after every `@`, and a zero-width space
after every `<` and inside `](`. The people a message does address are put first, as real
mentions (valid userids only).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

WORD_JOINER = "\u2060"
ZWSP = "\u200b"
USERID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MAX_BYTES = 4096  # appchat/send markdown
_MARKUP = re.compile(r"@|\]\(|<")


def inert(text: str) -> str:
    def defuse(m: re.Match[str]) -> str:
        return {"@": "@" + WORD_JOINER, "](": "]" + ZWSP + "(", "<": "<" + ZWSP}[m.group(0)]

    return _MARKUP.sub(defuse, text)


def fit(text: str, limit: int = MAX_BYTES) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 4].decode("utf-8", "ignore") + "…"


def with_mentions(text: str, user_ids: Sequence[str]) -> str:
    """`<@userid>` for each addressed person, then the inert text, within WeCom's size."""
    mentions = [f"<@{u}>" for u in dict.fromkeys(user_ids) if USERID.fullmatch(u)]
    body = inert(text)
    return fit(" ".join([*mentions, body]) if mentions else body)
