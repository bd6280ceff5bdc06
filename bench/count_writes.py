"""Run the worker (`python -m bench.count_writes`) with every store write it makes counted.

A SQLAlchemy `before_cursor_execute` listener on every engine of this process counts INSERT,
UPDATE and DELETE statements per table, and writes the
counts as JSON to $WARROOM_BENCH_WRITES twice a second and at exit. bench.cost reads the file
before and after its run: the difference is what the worker wrote for those rooms. Counting in
the worker itself, not in the database, keeps the API's writes (bench.cost counts those in its
own process) and the sandbox IM's tables apart.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import runpy
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

WRITE = re.compile(r'^\s*(INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.IGNORECASE)


class WriteCounter:
    """Statements written, per (verb, table), by every engine in this process. A statement may
    write several rows (an executemany, or SQLAlchemy's batched "insertmanyvalues"); rows are
    not counted here because the hook cannot tell them apart reliably: bench.cost reads the
    timeline's rows from the table itself."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.lock = threading.Lock()

    def install(self) -> None:
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        m = WRITE.match(statement)
        if m is None:
            return
        key = f"{m.group(1).split()[0].upper()} {m.group(2)}"
        with self.lock:
            self.statements[key] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {"statements": dict(self.statements)}


def dump(counter: WriteCounter, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(counter.snapshot()))
    tmp.replace(path)


def main() -> None:
    path = Path(os.environ["WARROOM_BENCH_WRITES"])
    counter = WriteCounter()
    counter.install()
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.5):
            dump(counter, path)

    threading.Thread(target=loop, daemon=True).start()
    atexit.register(lambda: (stop.set(), dump(counter, path)))
    runpy.run_module("workers.main", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
