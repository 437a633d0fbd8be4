"""`make run` (Tests/harness/stack.py run) restarts a crashed program, as Restart=on-failure does on
a VM (issue 16, part 5): the restart policy itself (supervise.Restarter, with a fake clock) and a
real `stack.py run` whose worker is SIGKILLed and comes back while the stack keeps serving."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import BIN, REPO, wait_until
from stack import free_port
from supervise import Restarter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def restarter(**kw):
    clock, lines, starts = Clock(), [], []
    r = Restarter({"sql-worker": lambda: starts.append(clock.now)}, clock=clock, say=lines.append, **kw)
    return r, clock, lines, starts


def test_a_crash_is_restarted_after_a_doubling_backoff_and_says_so():
    r, clock, lines, starts = restarter()
    r.exited("sql-worker", -9)
    assert lines[-1].startswith("stack: sql-worker was killed by signal 9; restarting it in 1 s")
    r.tick()
    assert starts == []  # the backoff has not passed
    clock.now += 1
    r.tick()
    assert starts == [1001.0] and lines[-1] == "stack: sql-worker restarted"
    r.exited("sql-worker", 1)
    assert "exited with code 1; restarting it in 2 s (restart 2 of at most 5 per 60 s)" in lines[-1]
    clock.now += 2
    r.tick()
    assert starts == [1001.0, 1003.0]


def test_too_many_restarts_in_a_minute_give_up_and_a_clean_exit_is_not_restarted():
    r, clock, lines, starts = restarter(burst=3)
    for _ in range(3):
        r.exited("sql-worker", 1)
        clock.now += 8
        r.tick()
    assert len(starts) == 3
    r.exited("sql-worker", 1, "last log lines")
    assert "restarted 3 times in 60 s, giving up on it" in lines[-1] and "last log lines" in lines[-1]
    clock.now += 100
    r.tick()
    r.exited("sql-worker", 1)
    assert len(starts) == 3

    r, clock, lines, starts = restarter(burst=3)
    r.exited("sql-worker", 1)
    clock.now += 61 + 1
    r.tick()
    clock.now += 61  # outside the window the count starts again
    r.exited("sql-worker", 1)
    assert "restart 1 of at most 3" in lines[-1]

    r, clock, lines, starts = restarter()
    r.exited("sql-worker", 0)
    clock.now += 100
    r.tick()
    assert starts == [] and "clean exit): not restarted" in lines[-1]


def children(pid: int, program: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            exe = os.readlink(entry / "exe")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and Path(exe).name == program:
            found.append(int(entry.name))
    return found


def test_make_run_restarts_a_killed_worker_and_keeps_serving(request):
    if not (BIN / "tessera-sql-worker").is_file():
        pytest.skip("tessera-sql-worker not built")
    state = Path(tempfile.mkdtemp(prefix="tessera-run-", dir="/tmp"))
    out = state.parent / (state.name + ".out")
    port = free_port()
    with open(out, "wb") as f:
        run = subprocess.Popen([sys.executable, str(REPO / "Tests" / "harness" / "stack.py"), "run", "--state", str(state),
                                "--port", str(port), "--bin", str(BIN), "--no-demo"],
                               stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: "Tessera is running." in out.read_text() or run.poll() is not None, 300, 0.5)
        assert run.poll() is None, out.read_text()
        [old] = children(run.pid, "tessera-sql-worker")
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: "stack: sql-worker restarted" in out.read_text() or run.poll() is not None, 60, 0.2)
        text = out.read_text()
        assert "stack: sql-worker was killed by signal 9; restarting it in 1 s" in text, text
        assert "stack: sql-worker restarted" in text, text
        assert run.poll() is None, text
        [new] = children(run.pid, "tessera-sql-worker")
        assert new != old
        # The rest of the stack never stopped: nginx and workspace-api still answer.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v3/maps/health", timeout=10) as r:
            assert r.status == 200
    finally:
        if run.poll() is None:
            os.kill(run.pid, signal.SIGINT)
            try:
                run.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
        if not request.session.testsfailed:
            shutil.rmtree(state, ignore_errors=True)
            out.unlink(missing_ok=True)
    assert run.returncode == 0, out.read_text() if out.exists() else run.returncode
