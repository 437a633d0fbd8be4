"""A tiny FastCGI responder on a unix socket, for testing the nginx config without the Swift APIs.

Every request is answered with a JSON echo of what nginx passed:
    {"backend": NAME, "params": {...FastCGI params...}, "stdin_bytes": N}
Query parameters steer the answer:
    status=NNN   respond with that status (body still the echo)
    header=K:V   add a response header (repeatable; used to test header de-duplication)
    content_type=T  send that Content-Type instead of application/json
Standard library only; one thread per connection. Not a general FastCGI implementation:
it handles what nginx sends (requests one after another on a connection; with FCGI_KEEP_CONN the
connection stays open for the next one, as nginx's fastcgi_keep_conn asks).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
from pathlib import Path
from urllib.parse import parse_qsl

FCGI_BEGIN_REQUEST = 1
FCGI_ABORT_REQUEST = 2
FCGI_END_REQUEST = 3
FCGI_PARAMS = 4
FCGI_STDIN = 5
FCGI_STDOUT = 6
FCGI_KEEP_CONN = 1
_HEADER = struct.Struct("!BBHHBx")


def _read_exact(conn: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _read_record(conn: socket.socket) -> tuple[int, int, bytes]:
    _version, rtype, request_id, length, padding = _HEADER.unpack(_read_exact(conn, _HEADER.size))
    content = _read_exact(conn, length) if length else b""
    if padding:
        _read_exact(conn, padding)
    return rtype, request_id, content


def _parse_params(data: bytes) -> dict[str, str]:
    params, i = {}, 0

    def length() -> int:
        nonlocal i
        if data[i] < 0x80:
            i += 1
            return data[i - 1]
        n = struct.unpack("!I", data[i:i + 4])[0] & 0x7FFFFFFF
        i += 4
        return n

    while i < len(data):
        nlen = length()
        vlen = length()
        name = data[i:i + nlen].decode("latin-1")
        i += nlen
        params[name] = data[i:i + vlen].decode("latin-1")
        i += vlen
    return params


def _record(rtype: int, request_id: int, content: bytes) -> bytes:
    return _HEADER.pack(1, rtype, request_id, len(content), 0) + content


class FakeFastCGI:
    def __init__(self, path: Path | str, name: str):
        self.path = Path(path)
        self.name = name
        self.requests: list[dict] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> "FakeFastCGI":
        if self.path.exists():
            self.path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(self.path))
        os.chmod(self.path, 0o666)  # nginx workers run as another user
        self._sock.listen(64)
        self._thread = threading.Thread(target=self._accept_loop, name=f"fake-fcgi-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing = True
        if self._sock is not None:
            self._sock.close()
        # As a process that exits: the connections nginx keeps are closed too.
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.path.exists():
            self.path.unlink()

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)
        with conn:
            while not self._closing and self._serve_one(conn):
                pass
        with self._lock:
            self._conns.discard(conn)

    def _serve_one(self, conn: socket.socket) -> bool:
        """Answers one request; True when nginx keeps the connection for another."""
        try:
            params_raw = bytearray()
            stdin_bytes = 0
            request_id = 1
            keep = False
            while True:
                rtype, request_id, content = _read_record(conn)
                if rtype == FCGI_BEGIN_REQUEST:
                    keep = bool(content[2] & FCGI_KEEP_CONN)
                elif rtype == FCGI_PARAMS:
                    params_raw += content
                elif rtype == FCGI_STDIN:
                    if not content:
                        break
                    stdin_bytes += len(content)
                elif rtype == FCGI_ABORT_REQUEST:
                    return False
            params = _parse_params(bytes(params_raw))
            self.requests.append(params)
            query = parse_qsl(params.get("QUERY_STRING", ""), keep_blank_values=True)
            status = next((v for k, v in query if k == "status"), "200")
            extra = [v.split(":", 1) for k, v in query if k == "header" and ":" in v]
            ctype = next((v for k, v in query if k == "content_type"), "application/json")
            body = json.dumps({"backend": self.name, "params": params, "stdin_bytes": stdin_bytes}).encode()
            head = [f"Status: {status}", f"Content-Type: {ctype}",
                    f"X-Request-Id: {params.get('REQUEST_ID', '')}", "Access-Control-Allow-Origin: *"]
            head += [f"{k.strip()}: {v.strip()}" for k, v in extra]
            payload = ("\r\n".join(head) + "\r\n\r\n").encode() + body
            out = bytearray()
            for i in range(0, len(payload), 65535):
                out += _record(FCGI_STDOUT, request_id, payload[i:i + 65535])
            out += _record(FCGI_STDOUT, request_id, b"")
            out += _record(FCGI_END_REQUEST, request_id, struct.pack("!IB3x", 0, 0))
            conn.sendall(out)
            return keep
        except (EOFError, OSError):
            return False
