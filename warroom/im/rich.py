"""A message with formatting, independent of any platform: lines of spans (plain, bold, code, or a
link), as bullets or paragraphs. The assistant builds its answers as one of these; each platform's
`render.py` turns it into that platform's markup, escaping every span's text, so words quoted from
a room can never become markup, a mention or a disguised link there — only the links we put in
(`Span.link`) are links.

`plain()` is the fallback every platform can post as plain text: links shown as their address.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

# Text that pings a whole room somewhere (Slack's <!channel>, `@all` on DingTalk/WeCom/Lark...).
_MASS_PING = re.compile(r"<!(channel|here|everyone)\b|@(all|here|channel|everyone)\b|<\s*at\b", re.I)


def defuse(text: str) -> str:
    """Mass-ping syntax made visible but inert on every platform (a full-width at sign or angle quote is read the
    same by people and by no platform's parser); belt and braces under each renderer's escaping."""

    def swap(m: re.Match[str]) -> str:
        s = m.group(0)
        return "‹" + s[1:] if s.startswith("<") else "＠" + s[1:]  # noqa: RUF001

    return _MASS_PING.sub(swap, text)


class Span(BaseModel):
    text: str
    bold: bool = False
    code: bool = False
    link: str = ""  # an http(s) URL we built (console, runbook page), never one from the room


class Line(BaseModel):
    spans: list[Span] = Field(default_factory=list)
    bullet: bool = False


class Rich(BaseModel):
    lines: list[Line] = Field(default_factory=list)
    more_url: str = ""  # where the whole text is, when a platform must cut it short

    def add(self, *spans: Span | str, bullet: bool = False) -> Rich:
        self.lines.append(Line(spans=[s if isinstance(s, Span) else Span(text=s) for s in spans], bullet=bullet))
        return self

    def plain(self) -> str:
        """The message as plain text (links as `label <url>` where the label is not the URL)."""
        out = []
        for line in self.lines:
            text = "".join(_plain_span(s) for s in line.spans)
            out.append(("• " if line.bullet else "") + text)
        return "\n".join(out)


def _plain_span(s: Span) -> str:
    if s.link and s.link != s.text:
        return f"{s.text} {s.link}"
    return s.text


SpanRenderer = Callable[[Span], str]


def render_lines(
    rich: Rich, span: SpanRenderer, *, bullet: str = "• ", limit: int, cut: Callable[[str], str], size=len
) -> list[str]:
    """Each line rendered with `span`, as many whole lines as fit in `limit` (measured by
    `size`); when some must go, the last line kept is `cut(more_url)` (a link to the rest)."""
    rendered = [(bullet if ln.bullet else "") + "".join(span(s) for s in ln.spans) for ln in rich.lines]
    if size("\n".join(rendered)) <= limit:
        return rendered
    tail = cut(rich.more_url)
    kept: list[str] = []
    for r in rendered:
        if size("\n".join([*kept, r, tail])) > limit:
            break
        kept.append(r)
    if not kept and rendered:  # one huge line: cut it by characters
        first = rendered[0]
        while first and size(first + "…\n" + tail) > limit:
            first = first[: max(len(first) - max(len(first) // 10, 1), 0)]
        kept = [first + "…"] if first else []
    return [*kept, tail]


def join(parts: Sequence[str]) -> str:
    return "\n".join(parts)
