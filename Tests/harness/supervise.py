"""What `stack.py run` does when one of Tessera's programs exits: what systemd's
`Restart=on-failure` + `RestartSec` + `StartLimitBurst`/`StartLimitIntervalSec` do on a VM.

A program that exits with a non-zero status or a signal is started again after a short backoff
(1 s, doubling per restart inside the window, at most 8 s); a program that restarted `burst` times
within `interval` seconds is given up on (left stopped, like a unit in the "failed" state) while
the rest of the stack keeps running. A clean exit (status 0) is not restarted, as on-failure does.
Every decision is printed as one line.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Mapping


class Restarter:
    def __init__(self, restart: Mapping[str, Callable[[], None]], *, burst: int = 5, interval: float = 60.0,
                 first_delay: float = 1.0, max_delay: float = 8.0, clock: Callable[[], float] = time.monotonic,
                 say: Callable[[str], None] = lambda line: print(line, flush=True)):
        self.restart, self.burst, self.interval = dict(restart), burst, interval
        self.first_delay, self.max_delay, self.clock, self.say = first_delay, max_delay, clock, say
        self.history: dict[str, list[float]] = {}
        self.due: dict[str, float] = {}
        self.given_up: set[str] = set()

    def handles(self, name: str) -> bool:
        return name in self.restart

    def exited(self, name: str, code: int | None, log_tail: str = "") -> None:
        """`name` was found dead with exit status `code` (negative: killed by that signal)."""
        if name in self.due or name in self.given_up:
            return
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        if code == 0:
            self.given_up.add(name)
            self.say(f"stack: {name} {how} (clean exit): not restarted, as Restart=on-failure does")
            return
        now = self.clock()
        recent = [t for t in self.history.get(name, []) if now - t < self.interval]
        self.history[name] = recent
        if len(recent) >= self.burst:
            self.given_up.add(name)
            self.say(f"stack: {name} {how}; it restarted {len(recent)} times in {self.interval:.0f} s, giving up on it "
                     f"(the rest keeps running)\n{log_tail}")
            return
        delay = min(self.first_delay * 2 ** len(recent), self.max_delay)
        self.due[name] = now + delay
        self.say(f"stack: {name} {how}; restarting it in {delay:.0f} s (restart {len(recent) + 1} of at most "
                 f"{self.burst} per {self.interval:.0f} s)")

    def tick(self) -> None:
        """Starts every program whose backoff has passed; a failed start counts as another exit."""
        now = self.clock()
        for name, when in sorted(self.due.items()):
            if when > now:
                continue
            del self.due[name]
            self.history.setdefault(name, []).append(now)
            try:
                self.restart[name]()
            except Exception as e:  # noqa: BLE001 - any start failure is reported and retried the same way
                print(f"stack: restarting {name} failed: {e}", file=sys.stderr, flush=True)
                self.exited(name, 1)
                continue
            self.say(f"stack: {name} restarted")
