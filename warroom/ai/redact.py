"""Optional redaction of emails, phone numbers and secrets before anything leaves for a model.

Each distinct value gets a stable placeholder (`[email-1]`, `[phone-2]`, `[secret-1]`), so the
model can still tell people apart; `restore()` puts emails and phones back into the model's
answer for the room (secrets are never put back).
"""

from __future__ import annotations

import re

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("secret", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)),
    ("secret", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),  # AWS access key id
    ("secret", re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}\b")),  # OpenAI/Stripe style keys
    ("secret", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),  # GitHub tokens
    ("secret", re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}\b")),  # Slack tokens
    ("secret", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\b")),  # JWT
    ("secret", re.compile(r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=\-]{16,}")),
    (
        "secret",
        re.compile(
            r"(?i)(?<![A-Za-z0-9])(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)"
            r"\s*[:=]\s*[\"']?[^\s\"',;]{4,}"
        ),
    ),
    ("secret", re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:[^\s@/]+@")),  # credentials in URLs
    ("email", re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")),
    ("phone", re.compile(r"(?<![\w.:/-])\+?\d[\d \-().]{7,}\d(?![\w.:/-])")),
]


class Redactor:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._by_value: dict[str, str] = {}
        self._by_token: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def _token(self, kind: str, value: str) -> str:
        if value not in self._by_value:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            token = f"[{kind}-{self._counts[kind]}]"
            self._by_value[value] = token
            self._by_token[token] = value if kind != "secret" else "[redacted secret]"
        return self._by_value[value]

    def __call__(self, text: str) -> str:
        if not self.enabled or not text:
            return text
        for kind, pattern in _PATTERNS:
            if kind == "phone":
                text = pattern.sub(lambda m: self._phone(m.group(0)), text)
            else:
                text = pattern.sub(lambda m, k=kind: self._token(k, m.group(0)), text)
        return text

    def _phone(self, value: str) -> str:
        digits = re.sub(r"\D", "", value)
        # dates, times, versions and ids look like numbers too: only 8-15 digit runs are phones
        if not 8 <= len(digits) <= 15 or re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            return value
        return self._token("phone", value)

    def restore(self, text: str) -> str:
        """Emails and phones back in place of their placeholders; secrets stay redacted."""
        if not self._by_token:
            return text
        return re.sub(r"\[(?:email|phone|secret)-\d+\]", lambda m: self._by_token.get(m.group(0), m.group(0)), text)

    @property
    def count(self) -> int:
        return len(self._by_value)


def hide_secrets(text: str) -> str:
    """Secrets replaced by `[redacted secret]` in text we post (an extract quoting the room, a
    runbook or an alert can carry a pasted key; the room must not get it back from us)."""
    for kind, pattern in _PATTERNS:
        if kind == "secret":
            text = pattern.sub("[redacted secret]", text)
    return text
