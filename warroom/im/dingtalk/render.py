"""An answer as DingTalk robot markdown: every span's text made inert (`@` cannot mention, `](`
cannot hide a link, `<` cannot open HTML), bold as `**…**`, code as `` `…` ``, our own links as
`[label](url)`; cut under DingTalk's markdown size with a link to the console."""

from __future__ import annotations

from warroom.im.dingtalk.text import inert
from warroom.im.rich import Rich, Span, render_lines

LIMIT = 4500  # DingTalk's robot markdown text: 5,000 characters

TICK = "\u02cb"  # a backtick typed in the room: looks the same, opens no code span


def _text(text: str) -> str:
    return inert(text).replace("*", "\\*").replace("`", TICK).replace("#", "\\#")


def span(s: Span) -> str:
    if s.link.startswith(("https://", "http://")):
        return f"[{_text(s.text).replace(']', '')}]({s.link.replace(')', '%29')})"
    if s.code:
        return "`" + inert(s.text).replace("`", TICK) + "`"
    if s.bold:
        return f"**{_text(s.text)}**"
    return _text(s.text)


def render(rich: Rich, limit: int = LIMIT) -> str:
    # a blank line between lines: DingTalk's markdown joins single newlines
    lines = render_lines(rich, span, bullet="- ", limit=limit, cut=lambda url: f"… [the rest]({url})" if url else "…")
    return "\n\n".join(lines)
