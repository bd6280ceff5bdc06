"""An answer in Slack mrkdwn: every span's text escaped (`&`, `<`, `>`: nothing typed in a room can
become `<!channel>`, a mention or a disguised link), bold as `*…*`, code as `` `…` ``, our own links
as `<url|label>`; cut at Slack's comfortable message size with a link to the console."""

from __future__ import annotations

from warroom.im.rich import Rich, Span, join, render_lines
from warroom.im.slack.mrkdwn import escape

LIMIT = 3900  # Slack truncates message text past 40,000 characters; past ~4,000 it reads badly

TICK = "\u02cb"  # a backtick typed in the room: looks the same, opens no code span


def _plain(text: str) -> str:
    return escape(text).replace("*", "\u2217").replace("`", TICK).replace("_", "\u2009_") if text else ""


def span(s: Span) -> str:
    if s.link.startswith(("https://", "http://")):
        label = escape(s.text).replace("|", "¦")
        return f"<{s.link.replace('>', '%3E').replace('|', '%7C')}|{label}>"
    if s.code:
        return "`" + escape(s.text).replace("`", TICK) + "`"
    if s.bold:
        return f"*{_plain(s.text)}*"
    return escape(s.text)


def render(rich: Rich, limit: int = LIMIT) -> str:
    return join(
        render_lines(rich, span, limit=limit, cut=lambda url: f"… <{url}|the rest in the console>" if url else "…")
    )
