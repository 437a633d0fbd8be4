"""Scale-out (issue 16): the cdn-invalidator purges every cache node TESSERA_VARNISH_PURGE_URL lists.

A second Varnish runs next to the stack's with the same VCL and the same backend (nginx's internal
server), as a second app VM's would; the cdn-invalidator is restarted with both purge URLs. A data
change (a `data_changed` job, as an import queues) must empty both caches; a node that is down fails
the job (retried by the queue) without keeping the purge from the other node.
packaging/test-scaleout shows the same on two booted VMs.
"""
from __future__ import annotations

import http.client
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

import helpers as h
from stack import VARNISHD, VARNISH_PARAMS, free_port, render_vcl
from test_queue_faults import account_of, insert_job, wait_state

BIN = Path(os.environ.get("STACK_BIN", Path(__file__).resolve().parents[2] / ".build" / "release")).resolve()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class SecondVarnish:
    """varnishd with the stack's VCL: `web` on its own unix socket, `purge` on its own loopback port."""

    def __init__(self, stack, root: Path):
        self.stack = stack
        self.root = root
        self.socket = root / "v2.sock"
        self.purge_port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def purge_url(self) -> str:
        return f"http://127.0.0.1:{self.purge_port}"

    def start(self) -> None:
        vcl = render_vcl(self.root / "tessera.vcl", {"RUN_DIR": str(self.stack.run_dir.resolve())})
        cmd = [VARNISHD, "-F", "-j", "none", "-n", str(self.root / "work"), "-f", str(vcl),
               "-a", f"web={self.socket},mode=0666", "-a", f"purge=127.0.0.1:{self.purge_port}",
               "-s", "malloc,16m", "-T", "none"]
        for p in VARNISH_PARAMS:
            cmd += ["-p", p]
        self.proc = subprocess.Popen(cmd, stdout=open(self.root / "varnish2.log", "ab"), stderr=subprocess.STDOUT)
        h.wait_until(self._ready, 30, 0.2)

    def _ready(self) -> bool:
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.purge_port, timeout=2)
            c.request("PURGE", "/")
            ok = c.getresponse().status == 400
            c.close()
            return ok
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.proc = None

    def get(self, path: str, token: str) -> tuple[int, str | None]:
        """The request nginx would forward to this node's Varnish: (status, X-Cache)."""
        c = UnixHTTPConnection(str(self.socket))
        try:
            c.request("GET", path, headers={"Host": "localhost", "Authorization": f"Bearer {token}",
                                            "X-Request-Id": os.urandom(16).hex(), "X-Forwarded-Proto": "http"})
            r = c.getresponse()
            r.read()
            return r.status, r.getheader("X-Cache")
        finally:
            c.close()


def first_node(stack, path: str, token: str) -> tuple[int, str | None]:
    c = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=30)
    try:
        c.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        r = c.getresponse()
        r.read()
        return r.status, r.getheader("X-Cache")
    finally:
        c.close()


@pytest.fixture
def two_nodes(stack, tmp_path):
    second = SecondVarnish(stack, tmp_path)
    second.start()
    both = f"{stack.varnish_purge_url}, {second.purge_url}"
    stack.stop_api("cdn-invalidator")
    stack.start_worker("cdn-invalidator", BIN / "tessera-cdn-invalidator", env={"TESSERA_VARNISH_PURGE_URL": both})
    try:
        yield second
    finally:
        stack.stop_api("cdn-invalidator")
        stack.start_worker("cdn-invalidator", BIN / "tessera-cdn-invalidator")
        second.stop()


def cached_on_both(stack, second, path: str, token: str) -> None:
    for ask in (lambda: first_node(stack, path, token), lambda: second.get(path, token)):
        assert ask() == (200, "MISS")
        assert ask() == (200, "HIT")


def data_changed(stack) -> int:
    account = account_of(stack, stack.admin_email)  # the full_token's organisation
    return insert_job(stack, "cdn", "data_changed", {"account": account, "connection": "carto_dw", "table": "public.e2e_places"})


def places_path() -> str:
    return h.SQL_PATH.format(conn="carto_dw") + "?" + h.encode_query(
        {"q": f"SELECT cartodb_id FROM e2e_places /* {h.unique()} */"})


def test_a_data_change_purges_every_cache_node(stack, two_nodes, full_token, dw):
    path = places_path()
    cached_on_both(stack, two_nodes, path, full_token)
    row = wait_state(stack, data_changed(stack))
    assert row["state"] == "completed", row
    assert row["result"]["nodes"] == 2, row
    assert first_node(stack, path, full_token) == (200, "MISS")
    assert two_nodes.get(path, full_token) == (200, "MISS")


def test_a_node_that_is_down_fails_the_job_but_not_the_other_nodes_purge(stack, two_nodes, full_token, dw):
    path = places_path()
    cached_on_both(stack, two_nodes, path, full_token)
    two_nodes.stop()
    job = data_changed(stack)
    row = wait_state(stack, job, states=("retryable", "discarded"))
    assert row["state"] == "retryable", row
    assert f"127.0.0.1:{two_nodes.purge_port}" in str(row["errors"]), row
    assert "1 of 2 cache nodes" in str(row["errors"]), row
    assert first_node(stack, path, full_token) == (200, "MISS"), "the node that is up was purged"
    h.metadata(stack, f"UPDATE jobs SET state = 'cancelled', finished_at = now() WHERE id = {job}")
