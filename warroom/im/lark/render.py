"""An answer as a Lark/Feishu card: one `markdown` element, every span's text escaped with the HTML
character references Lark's card markdown takes (so `<at id=all>`, `[x](y)` or `**` typed in a room
stay characters), bold as `**…**`, code as `` `…` ``, our own links as `[label](url)`; cut well
under the card size limit with a link to the console."""

from __future__ import annotations

from typing import Any

from warroom.im.lark.card import escape_md
from warroom.im.rich import Rich, Span, join, render_lines

LIMIT = 8000  # characters of markdown; a card may be 30 KB, a screen is much less


def span(s: Span) -> str:
    if s.link.startswith(("https://", "http://")):
        return f"[{escape_md(s.text)}]({s.link.replace(')', '%29').replace(' ', '%20')})"
    if s.code:
        return f"`{escape_md(s.text)}`"
    if s.bold:
        return f"**{escape_md(s.text)}**"
    return escape_md(s.text)


def markdown(rich: Rich, limit: int = LIMIT) -> str:
    return join(
        render_lines(rich, span, bullet="- ", limit=limit, cut=lambda url: f"… [the rest]({url})" if url else "…")
    )


def card(rich: Rich, limit: int = LIMIT) -> dict[str, Any]:
    """An interactive message's card: the answer as markdown, nothing to click."""
    return {
        "config": {"wide_screen_mode": True, "update_multi": True},  # shared: a streamed answer is edited
        "elements": [{"tag": "markdown", "content": markdown(rich, limit)}],
    }
