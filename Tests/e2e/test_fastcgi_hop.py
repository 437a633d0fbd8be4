"""The FastCGI hop (issue 15): maps-api accepts its connections itself and closes the ones whose input
was read to the end at once, keeping libfcgi's lingering close for the rest. Many concurrent requests,
more than maps-api has threads, all get their whole answer, and no connection is left open behind them."""
from __future__ import annotations

import http.client
import json
import os
import threading
import urllib.parse


def open_sockets(pid: int) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def test_concurrent_requests_get_whole_answers_and_leave_no_socket(stack):
    pid = stack.pid("maps-api")
    before = open_sockets(pid)
    url = urllib.parse.urlsplit(stack.base_url)
    failures: list[str] = []
    answered = [0]
    lock = threading.Lock()

    def client(k: int) -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:
            for i in range(25):
                # A distinct query string: every request is a miss in the http-cache and reaches maps-api.
                conn.request("GET", f"/api/v3/maps/health?hop={k}-{i}")
                r = conn.getresponse()
                body = r.read()
                if r.status != 200 or json.loads(body) != {"status": "ok"}:
                    with lock:
                        failures.append(f"{r.status} {body[:200]!r}")
                    return
                with lock:
                    answered[0] += 1
        except Exception as e:  # noqa: BLE001 - any failure of a client is the finding
            with lock:
                failures.append(repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures[:5]
    assert answered[0] == 48 * 25
    # Every connection nginx opened was closed by maps-api (a leak would grow by one socket per request).
    assert open_sockets(pid) <= before + 2


def test_upload_over_the_limit_still_gets_its_json_error(stack):
    """The body is not read (413 before reading): the lingering close lets nginx finish sending, so the
    client sees maps-api's JSON error rather than nginx's 502."""
    url = urllib.parse.urlsplit(stack.base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        body = b'{"q": "SELECT 1", "pad": "' + b"x" * (9 << 20) + b'"}'
        conn.request("POST", "/api/v3/sql/carto_dw/query", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        payload = r.read()
    finally:
        conn.close()
    assert r.status in (401, 413), (r.status, payload[:300])
    assert json.loads(payload)["status"] == r.status
