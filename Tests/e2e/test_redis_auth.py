"""TESSERA_REDIS_URL with a password (scaled out, Redis runs on the database VM with `requirepass`):
with the right password the APIs cache in that Redis; with a wrong one they log `redis_auth_failed`
(never the password) and keep answering from the database. Leaves the session stack as it found it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import API_PROGRAMS, BIN, assert_ok, wait_until

PLACES_Q = "SELECT cartodb_id, name FROM e2e_places ORDER BY cartodb_id"
PASSWORD = "e2e-pw-" + os.urandom(6).hex()
APIS = ("workspace-api", "maps-api")


def redis_replies(path: str, *commands: tuple[str, ...]) -> bytes:
    """Several commands on one connection (so AUTH applies to the ones after it); the raw replies."""
    payload = b"".join(f"*{len(c)}\r\n".encode() + b"".join(f"${len(a)}\r\n{a}\r\n".encode() for a in c) for c in commands)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(payload)
        data = b""
        while data.count(b"\r\n") < len(commands):
            data += s.recv(65536)
        return data


@pytest.fixture
def locked_redis():
    root = Path(tempfile.mkdtemp(prefix="tessera-redis-auth-", dir="/tmp"))
    sock = root / "redis.sock"
    (root / "redis.conf").write_text(f'port 0\nunixsocket {sock}\ndaemonize no\ndir {root}\nsave ""\nappendonly no\n'
                                     f"requirepass {PASSWORD}\n")
    proc = subprocess.Popen([shutil.which("redis-server") or "/usr/bin/redis-server", str(root / "redis.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(sock.exists, 20, 0.05)
        yield str(sock)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def restart_apis(stack, redis_url: str | None) -> dict[str, int]:
    """Restarts both APIs with `redis_url` (None: the session's); returns where each log stood before."""
    marks = {}
    for name in APIS:
        marks[name] = stack.log_path(name).stat().st_size
        stack.stop_api(name)
        stack.start_api(name, BIN / API_PROGRAMS[name], env={"TESSERA_REDIS_URL": redis_url} if redis_url else None)
    return marks


def logged_since(stack, marks: dict[str, int]) -> str:
    return "".join(stack.log_path(n).read_bytes()[m:].decode(errors="replace") for n, m in marks.items())


def exercise(api, admin, token):
    for _ in range(3):
        assert_ok(api.sql(PLACES_Q, token))
        assert_ok(api.get("/api/v3/me", token=admin.token))


def test_wrong_redis_password_is_logged_and_the_apis_still_serve(api, stack, admin, full_token, dw, locked_redis):
    try:
        marks = restart_apis(stack, f"unix:{locked_redis}?password=wrong-{PASSWORD}")
        exercise(api, admin, full_token)
        log = logged_since(stack, marks)
        assert "event=redis_auth_failed" in log and "WRONGPASS" in log, log[-2000:]
        assert PASSWORD not in log
        assert redis_replies(locked_redis, ("AUTH", PASSWORD), ("DBSIZE",)) == b"+OK\r\n:0\r\n"  # nothing written

        marks = restart_apis(stack, f"unix:{locked_redis}?password={PASSWORD}")
        exercise(api, admin, full_token)
        log = logged_since(stack, marks)
        assert "redis_auth_failed" not in log and "redis_unavailable" not in log, log[-2000:]
        assert PASSWORD not in log
        keys = redis_replies(locked_redis, ("AUTH", PASSWORD), ("KEYS", "tessera:*"))
        assert keys.startswith(b"+OK\r\n*") and not keys.startswith(b"+OK\r\n*0\r\n"), keys  # the lookups were cached there
    finally:
        restart_apis(stack, None)
    exercise(api, admin, full_token)
    assert stack.check_alive() == []
