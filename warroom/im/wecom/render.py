"""An answer as WeCom markdown: every span's text made inert (`@` cannot ping, `<` cannot open
`<@user>` or `<font>`, `](` cannot hide a link), bold as `**…**`, code as `` `…` ``, our own links
as `[label](url)`; cut under WeCom's 4,096 bytes with a link to the console."""

from __future__ import annotations

from warroom.im.rich import Rich, Span, join, render_lines
from warroom.im.wecom.text import MAX_BYTES, inert

TICK = "\u02cb"  # a backtick typed in the room: looks the same, opens no code span


def _text(text: str) -> str:
    return inert(text).replace("*", "\\*").replace("`", TICK)


def span(s: Span) -> str:
    if s.link.startswith(("https://", "http://")):
        return f"[{_text(s.text).replace(']', '')}]({s.link.replace(')', '%29')})"
    if s.code:
        return "`" + inert(s.text).replace("`", TICK) + "`"
    if s.bold:
        return f"**{_text(s.text)}**"
    return _text(s.text)


def render(rich: Rich, limit: int = MAX_BYTES) -> str:
    return join(
        render_lines(
            rich,
            span,
            bullet="- ",
            limit=limit,
            cut=lambda url: f"… [the rest]({url})" if url else "…",
            size=lambda t: len(t.encode()),
        )
    )
