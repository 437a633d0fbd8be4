"""What the bench scripts share: a throwaway stack (Tests/harness/stack.py), the admin CLI, and
per-process CPU and peak memory from /proc."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "harness"))
from stack import Stack  # noqa: E402

DEFAULT_BIN = str(REPO / ".build" / "release")


@contextlib.contextmanager
def throwaway_stack(bin_dir: Path, *, redis: bool = False):
    """PostgreSQL (and Redis) in a temp dir with the metadata schema migrated; removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="tessera-bench-", dir="/tmp"))
    stack = Stack(root)
    try:
        stack.start_postgres()
        if redis:
            stack.start_redis()
        tool(bin_dir, stack, "migrate")
        yield stack
    finally:
        stack.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def require(program: str, package: str) -> None:
    if not shutil.which(program):
        raise SystemExit(f"{program} is required (apt-get install {package})")


def tool(bin_dir: Path, stack: Stack, *args: str) -> str:
    """Runs the `tessera` admin CLI against the stack; returns its last output line."""
    out = subprocess.run([str(bin_dir / "tessera"), *args], env={**os.environ, **stack.env},
                         check=True, capture_output=True, text=True).stdout.strip()
    return out.splitlines()[-1].strip() if out else ""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vmhwm_kib(pid: int) -> int:
    """Peak resident memory of a live process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def tree_cpu_seconds(pid: int | None) -> float:
    """CPU seconds of `pid` and its direct children, live or already reaped (cutime/cstime): a postmaster and its
    backends, including those that exited meanwhile (pgbench's, a psql's), nginx and its workers.

    The read is taken again while the parent's cutime/cstime moves during it: a child reaped between the read of the
    parent and the scan of /proc is in neither, and its CPU showed up whole in the next read -- a psql session's
    backend exiting as a bench's idle baseline began put 1.4 s/s of "idle" PostgreSQL into it, more than a light
    tile run used, and every figure it was subtracted from read 0."""
    if not pid:
        return 0.0

    def fields(p: int) -> list[str]:
        return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()

    for _ in range(10):
        try:
            before = fields(pid)
        except (FileNotFoundError, ProcessLookupError):
            return 0.0
        ticks = sum(int(x) for x in before[11:15])
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                c = fields(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(c[1]) == pid:
                ticks += sum(int(x) for x in c[11:15])
        try:
            if fields(pid)[13:15] == before[13:15]:
                break
        except (FileNotFoundError, ProcessLookupError):
            return 0.0
    return ticks / os.sysconf("SC_CLK_TCK")
