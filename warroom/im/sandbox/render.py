r"""An answer in the sandbox page's own markup (starters/static/sandbox.js reads it in the bot's
messages that end with MARK): `[label](https://…)` a link, `**…**` bold, `` `…` `` code, and a backslash before any
of `\ [ ] * `` ` `` typed in a room, so quoted text stays characters; `<` is broken up as in the
adapter's plain messages. Cut with a link to the console."""

from __future__ import annotations

import re

from warroom.im.rich import Rich, Span, join, render_lines

LIMIT = 4000
MARK = "\u2063"  # ends a formatted message (invisible): the page reads markup only in those
_SPECIAL = re.compile(r"([\\\[\]*`])")


def _text(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", text).replace("<", "<\u200b")


def span(s: Span) -> str:
    if s.link.startswith(("https://", "http://")):
        return f"[{_text(s.text)}]({s.link.replace(')', '%29').replace(' ', '%20')})"
    if s.code:
        return f"`{_text(s.text)}`"
    if s.bold:
        return f"**{_text(s.text)}**"
    return _text(s.text)


def render(rich: Rich, limit: int = LIMIT) -> str:
    return join(render_lines(rich, span, limit=limit, cut=lambda url: f"… [the rest]({url})" if url else "…")) + MARK
