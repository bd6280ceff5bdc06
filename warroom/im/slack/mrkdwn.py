"""Text we post to Slack, as Slack reads it: `&`, `<` and `>` escaped (Slack's own rule for
message text), so an incident title or a chat quote can never become `<!channel>`, a user
mention or a disguised link; the people a message addresses are added as real mentions."""

from __future__ import annotations

from collections.abc import Sequence


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(text: str, mention_ids: Sequence[str] = ()) -> str:
    return " ".join([*(f"<@{user}>" for user in mention_ids), escape(text)])
