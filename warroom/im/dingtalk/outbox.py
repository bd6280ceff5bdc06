"""Robot messages sent once: DingTalk's `robot/groupMessages/send` has no dedup key and no
history to look a message up in, so War Room remembers what it sent, by its own key.

- a key already sent answers with the first send's result (no second call);
- a key whose send failed with an answer from DingTalk, or before reaching it, is sent again;
- a key whose send may have taken effect (timed out, or the connection dropped after the request
  went out) is not sent again: a duplicate war-room message is worse than one that may be
  missing, and DingTalk gives no way to tell. The log says so, once per key.

The outbox is per process and kept for a day (an activity's retries run within minutes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

log = logging.getLogger("warroom.im.dingtalk")
KEEP_SECONDS = 24 * 3600
MAX_ENTRIES = 100_000


@dataclass
class Entry:
    state: str  # "sending", "sent", "unknown"
    ref: str = ""
    at: float = 0.0


class Outbox:
    def __init__(self) -> None:
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def _trim(self, now: float) -> None:
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.at > now - KEEP_SECONDS and len(self._entries) < MAX_ENTRIES:
                break
            del self._entries[key]

    def claim(self, key: str) -> Entry | None:
        """None: send it now (the key is marked as sending); else the earlier entry."""
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            entry = self._entries.get(key)
            if entry is not None:
                return entry
            self._entries[key] = Entry("sending", at=now)
            return None

    def sent(self, key: str, ref: str) -> None:
        with self._lock:
            self._entries[key] = Entry("sent", ref, time.monotonic())

    def unknown(self, key: str) -> None:
        with self._lock:
            self._entries[key] = Entry("unknown", at=time.monotonic())
        log.warning("dingtalk message %s may or may not have been posted (timed out): it is not posted again", key)

    def failed(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
