"""Counting the statements (database round trips) a request costs, from PostgreSQL's own log.

``with statement_log(stack) as log: ...`` turns on ``log_statement = 'all'`` for the stack's cluster,
and ``log.statements()`` afterwards lists what every backend ran inside the block as
``(pid, user, database, statement)``. Extended-protocol statements log as
``execute <name>: ...`` (one per Bind/Execute), simple ones as ``statement: ...``: each line is one round trip.
Standard library only."""
from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

LINE = re.compile(r"\[(\d+)\] (\S*)@(\S*) LOG:  (?:statement|execute [^:]*): (.*)")
ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")  # log_line_prefix starts with %m


class StatementLog:
    def __init__(self, path: Path, start: int):
        self.path, self.start, self.end = path, start, None

    def statements(self) -> list[tuple[int, str, str, str]]:
        """(pid, user, database, statement text); a multi-line statement's later lines carry no prefix."""
        with open(self.path, "rb") as f:
            f.seek(self.start)
            text = f.read((self.end or 1 << 40) - self.start).decode("utf-8", "replace")
        found: list[list] = []
        current = None
        for line in text.splitlines():
            if ENTRY.match(line):
                m = LINE.search(line)
                current = [int(m[1]), m[2], m[3], m[4]] if m else None
                if current:
                    found.append(current)
            elif current is not None:
                current[3] += "\n" + line
        return [tuple(s) for s in found]

    def of_backends_running(self, needle: str) -> list[tuple[int, str, str, str]]:
        """Every statement of the backends that ran a statement containing `needle` (so the statements
        of other services sharing the cluster are left out)."""
        all_ = self.statements()
        pids = {pid for pid, _, _, text in all_ if needle in text}
        return [s for s in all_ if s[0] in pids]


@contextlib.contextmanager
def statement_log(stack):
    path = stack.log_path("postgres")
    _set(stack, "ALTER SYSTEM SET log_statement = 'all'", "all")
    log = StatementLog(path, path.stat().st_size)
    try:
        yield log
    finally:
        log.end = path.stat().st_size
        _set(stack, "ALTER SYSTEM RESET log_statement", "none")


def _set(stack, sql: str, expect: str) -> None:
    """The postmaster signals every backend as it reloads, and a backend applies the new setting before
    its next command; a new session seeing the value means the postmaster has done both."""
    stack.psql(sql)
    stack.psql("SELECT pg_reload_conf()")
    for _ in range(200):
        if stack.psql("SHOW log_statement").strip() == expect:
            return
        time.sleep(0.05)
    raise RuntimeError(f"log_statement did not become {expect}")
