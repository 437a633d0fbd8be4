"""A stand-in for a Nominatim server on loopback, for the LDS e2e tests.

Speaks the part of Nominatim's HTTP protocol Tessera uses: ``GET /search?q=&format=jsonv2&addressdetails=1
&limit=&countrycodes=`` and ``GET /reverse?lat=&lon=&format=jsonv2``. Answers come from a tiny table;
special queries trigger failure modes: ``q=slow`` sleeps past any sensible timeout, ``q=boom`` answers 500,
``q=garbage`` answers non-JSON. Every request is recorded (path + query) for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PLACES = {
    "zaragoza": {"lat": "41.6563497", "lon": "-0.8765603", "importance": 0.72, "display_name": "Zaragoza, Aragón, España",
                 "address": {"city": "Zaragoza", "state": "Aragón", "country": "España", "country_code": "es",
                             "road": "Plaza del Pilar", "house_number": "1", "postcode": "50003"}},
    "paris": {"lat": "48.8588897", "lon": "2.3200410", "importance": 0.88, "display_name": "Paris, Île-de-France, France",
              "address": {"city": "Paris", "state": "Île-de-France", "country": "France", "country_code": "fr"}},
}


class StandIn:
    def __init__(self, slow_seconds: float = 5.0):
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.slow_seconds = slow_seconds
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                outer.requests.append((url.path, query))
                q = (query.get("q") or [""])[0].lower()
                if url.path == "/search":
                    if q == "slow":
                        time.sleep(outer.slow_seconds)
                    if q == "boom":
                        return self.reply(500, b'{"error":"internal"}')
                    if q == "garbage":
                        return self.reply(200, b"<html>not json</html>", "text/html")
                    hits = [p for name, p in PLACES.items() if name in q]
                    cc = (query.get("countrycodes") or [""])[0]
                    if cc:
                        hits = [p for p in hits if p["address"]["country_code"] == cc]
                    limit = int((query.get("limit") or ["10"])[0])
                    return self.reply(200, json.dumps(hits[:limit]).encode())
                if url.path == "/reverse":
                    lat = float((query.get("lat") or ["0"])[0])
                    if abs(lat) < 1:  # the open sea at 0,0: Nominatim answers 200 with an error object
                        return self.reply(200, b'{"error":"Unable to geocode"}')
                    return self.reply(200, json.dumps(PLACES["zaragoza"]).encode())
                self.reply(404, b'{"error":"not found"}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "StandIn":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
