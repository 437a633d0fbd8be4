"""Shared helpers for the e2e suite: a small HTTP client over http.client (raw paths and bodies are
sent exactly as given, which `requests` would normalise), error-contract assertions, token minting
for JWT edge cases, and a booter for extra stacks whose configuration differs from the main one.

Standard library only (plus the harness in Tests/harness)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "harness"))

from stack import ADMIN_EMAIL, API_PROGRAMS, Stack, StackError  # noqa: E402

BIN = Path(os.environ.get("STACK_BIN", REPO / ".build" / "release")).resolve()
SESSION_COOKIE = "__Host-tessera_session"
SQL_PATH = "/api/v3/sql/{conn}/query"


# --------------------------------------------------------------------------------------------
# HTTP


@dataclass
class Resp:
    status: int
    headers: Message
    body: bytes
    elapsed: float = 0.0

    def header(self, name: str) -> str | None:
        """The single value of a header; fails if it was sent more than once."""
        values = self.headers.get_all(name) or []
        assert len(values) <= 1, f"header {name} sent {len(values)} times: {values}"
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return self.headers.get_all(name) or []

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:  # shows up in assertion messages
        return f"<Resp {self.status} {self.text[:400]!r}>"


def encode_query(params: Mapping[str, Any] | None) -> str:
    if not params:
        return ""
    items = []
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, (dict, list)):
            v = json.dumps(v)
        elif isinstance(v, bool):
            v = "true" if v else "false"
        items.append((k, str(v)))
    return urllib.parse.urlencode(items, quote_via=urllib.parse.quote)


class Api:
    """HTTP/1.1 to one stack's nginx. Paths are sent verbatim (no normalisation)."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.host = "127.0.0.1"
        self.port = stack.http_port

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json_body: Any = None, data: bytes | str | None = None, headers: Mapping[str, str] | None = None,
                token: str | None = None, session: "Session | None" = None, csrf: bool = True,
                timeout: float = 60.0) -> Resp:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs.setdefault("Authorization", f"Bearer {token}")
        if session is not None:
            hdrs.setdefault("Cookie", f"{SESSION_COOKIE}={session.cookie}")
            # Every cookie request carries the CSRF proof, reads included (issue 11, case 4).
            if csrf:
                hdrs.setdefault("X-CSRF-Token", session.csrf)
        body: bytes | None = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif data is not None:
            body = data.encode() if isinstance(data, str) else data
        qs = encode_query(params)
        if qs:
            path = path + ("&" if "?" in path else "?") + qs
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        started = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            payload = r.read()
            return Resp(r.status, r.msg, payload, time.monotonic() - started)
        finally:
            conn.close()

    def get(self, path: str, **kw) -> Resp:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> Resp:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw) -> Resp:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw) -> Resp:
        return self.request("DELETE", path, **kw)

    def sql(self, q: str | None, token: str | None = None, *, method: str = "GET", conn: str = "carto_dw",
            fmt: str | None = None, query_parameters: Any = None, extra: Mapping[str, Any] | None = None,
            headers: Mapping[str, str] | None = None, session: "Session | None" = None, timeout: float = 60.0) -> Resp:
        """The SQL API the way CARTO clients call it: GET with JSON-stringified objects in the query
        string, POST with a JSON body holding real JSON values."""
        path = SQL_PATH.format(conn=conn)
        fields: dict[str, Any] = {}
        if q is not None:
            fields["q"] = q
        if fmt is not None:
            fields["format"] = fmt
        if query_parameters is not None:
            fields["queryParameters"] = query_parameters
        fields.update(extra or {})
        if method == "GET":
            return self.get(path, params=fields, token=token, headers=headers, session=session, timeout=timeout)
        return self.post(path, json_body=fields, token=token, headers=headers, session=session, timeout=timeout)


def raw_http(stack: Stack, request: bytes, timeout: float = 30.0) -> bytes:
    """Send bytes as they are (for request lines http.client would refuse) and read the reply."""
    import socket

    with socket.create_connection(("127.0.0.1", stack.http_port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


# --------------------------------------------------------------------------------------------
# assertions

REQUEST_ID = re.compile(r"^[0-9A-Za-z-]{8,64}$")


def assert_error(r: Resp, status: int, code: str | None = None, *, from_app: bool = True) -> dict:
    """The error contract: JSON {error, status, code, request_id}, CORS on errors too, X-Request-Id."""
    assert r.status == status, f"expected {status}, got {r!r}"
    ctype = r.header("Content-Type") or ""
    assert ctype.startswith("application/json"), f"error is not JSON ({ctype}): {r!r}"
    doc = r.json()
    assert isinstance(doc, dict), doc
    assert isinstance(doc.get("error"), str) and doc["error"], doc
    assert doc.get("status") == status, doc
    assert isinstance(doc.get("code"), str) and doc["code"], doc
    if code is not None:
        assert doc["code"] == code, f"expected code {code}, got {doc}"
    assert r.header("Access-Control-Allow-Origin") == "*", r.headers
    rid = r.header("X-Request-Id")
    assert rid and REQUEST_ID.match(rid), r.headers
    if from_app:
        assert doc.get("request_id") == rid, (doc, rid)
    for optional in ("hint", "details"):
        if optional in doc:
            assert isinstance(doc[optional], str), doc
    return doc


def assert_ok(r: Resp, status: int = 200) -> Any:
    assert r.status == status, f"expected {status}, got {r!r}"
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert r.header("X-Request-Id")
    return r.json() if r.body else None


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> float:
    """Polls until check() is true; returns the seconds it took, or raises AssertionError."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def unique(prefix: str = "e2e") -> str:
    return f"{prefix}_{os.urandom(4).hex()}"


# --------------------------------------------------------------------------------------------
# accounts


@dataclass
class Session:
    cookie: str
    csrf: str
    user: dict
    set_cookie: str = ""


@dataclass
class User:
    email: str
    password: str
    session: Session | None = None
    token: str | None = None           # an OAuth (client_credentials) access token acting as this user
    client_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.session.user["id"] if self.session else ""


def login(api: Api, email: str, password: str) -> Session:
    r = api.post("/api/v3/auth/login", json_body={"email": email, "password": password})
    assert r.status == 200, f"login {email}: {r!r}"
    set_cookie = r.header("Set-Cookie") or ""
    m = re.match(rf"{SESSION_COOKIE}=([^;]+);", set_cookie)
    assert m, set_cookie
    doc = r.json()
    return Session(cookie=m.group(1), csrf=doc["csrf_token"], user=doc["user"], set_cookie=set_cookie)


def oauth_token(api: Api, session: Session, name: str = "e2e") -> tuple[str, str, str]:
    """Creates an OAuth client with the session and exchanges it for an access token.
    Returns (access_token, client_id, client_secret)."""
    r = api.post("/api/v3/oauth-clients", json_body={"name": name}, session=session)
    assert r.status == 201, r
    client = r.json()
    r = api.post("/api/oauth/token", data=urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": client["client_id"],
        "client_secret": client["client_secret"], "audience": "carto-cloud-native-api"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r
    return r.json()["access_token"], client["client_id"], client["client_secret"]


def signed_in_user(api: Api, email: str, password: str, client_name: str = "e2e") -> User:
    session = login(api, email, password)
    user = User(email=email, password=password, session=session)
    if session.user["role"] in ("admin", "editor"):
        user.token, user.client_id, _ = oauth_token(api, session, client_name)
    return user


# --------------------------------------------------------------------------------------------
# JWTs (white-box: the signing key is derived from the stack's secret.key as the programs do)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_claims(token: str) -> dict:
    return json.loads(b64url_decode(token.split(".")[1]))


def jwt_header(token: str) -> dict:
    return json.loads(b64url_decode(token.split(".")[0]))


def signing_key(stack: Stack) -> bytes:
    master = bytes.fromhex(stack.secret_key_file.read_text().strip())
    return hmac.new(master, b"tessera/jwt-hs256", hashlib.sha256).digest()


def mint_jwt(key: bytes | None, claims: dict, header: dict | None = None) -> str:
    header = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    if key is None:
        return signing_input + "."
    return signing_input + "." + b64url(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


# --------------------------------------------------------------------------------------------
# process / database helpers


def tessera(stack: Stack, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(BIN / "tessera"), *args], capture_output=True, text=True,
                       env={**os.environ, **stack.env}, timeout=300)
    if check and r.returncode != 0:
        raise StackError(f"tessera {' '.join(args[:1])} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def kib(value: str) -> int:
    return int(value.split()[0])


def active_queries(stack: Stack, like: str) -> int:
    """Active statements (other than ours) whose text contains `like`, seen by the superuser."""
    like_sql = like.replace("'", "''")
    return int(stack.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
        f"AND query LIKE '%{like_sql}%' AND query NOT LIKE '%pg_stat_activity%'"))


def warehouse(stack: Stack, sql: str) -> str:
    """SQL in the carto_dw warehouse as its owner role."""
    return stack.psql(sql, dbname="carto_dw", user="carto_dw")


def metadata(stack: Stack, sql: str) -> str:
    return stack.psql(sql, dbname="tessera", user="tessera")


# --------------------------------------------------------------------------------------------
# extra stacks (configuration that differs from the session stack)


def boot_stack(tag: str, api_env: Mapping[str, str] | None = None,
               apis: Iterable[str] = ("workspace-api", "maps-api")) -> Stack:
    """Postgres + Redis + migrate + admin + APIs (with `api_env` on top of stack.env) + nginx,
    mirroring conftest's `stack` fixture. The caller stops it (`finish_stack`)."""
    root = Path(tempfile.mkdtemp(prefix=f"tessera-{tag}-", dir="/tmp"))
    s = Stack(root)
    try:
        s.start_postgres()
        s.start_redis()
        tessera(s, "migrate")
        password = "e2e-" + os.urandom(12).hex()
        tessera(s, "create-admin", "--email", ADMIN_EMAIL, "--password", password)
        s.admin_email = ADMIN_EMAIL
        s.admin_password = password
        for name in apis:
            s.start_api(name, BIN / API_PROGRAMS[name], env=dict(api_env or {}))
        s.start_nginx()
    except BaseException:
        s.stop_all()
        raise
    return s


def finish_stack(s: Stack, keep: bool) -> None:
    try:
        s.stop_all()
    finally:
        if keep or os.environ.get("STACK_KEEP") == "1":
            print(f"\n[e2e] state and logs kept in {s.root}", file=sys.stderr)
        else:
            shutil.rmtree(s.root, ignore_errors=True)


def cell_tile(maps, tj: dict, index: str) -> dict:
    """One JSON tile of a spatial-index source ({i} = the tile's own cell): {cell id: (n, total)}; {} on 204."""
    r = maps.api.get(maps.local(tj["tiles"][0]).replace("{i}", index), token=maps.star)
    if r.status == 204:
        return {}
    body = assert_ok(r)
    assert r.header("Content-Type") == "application/json"
    return {c["id"]: (c["properties"]["n"], c["properties"]["total"]) for c in body}


# A point per row `i` (over generate_series), clustered as dense point layers are: three of four rows near
# Paris, Berlin or Rome (Madrid's centre is never picked: 1 + i % 3), the rest spread over Europe. Seeded by
# the caller's setseed, so a table built with it is the same in every run.
CLUSTERED_EUROPE_POINT = """ST_SetSRID(ST_MakePoint(
    CASE WHEN i % 4 = 0 THEN -10 + 40 * random() ELSE (ARRAY[2.35, 13.4, 12.5, -3.7])[1 + i % 3] + 4 * (random() - 0.5) END,
    CASE WHEN i % 4 = 0 THEN 36 + 24 * random() ELSE (ARRAY[48.85, 52.5, 41.9, 40.4])[1 + i % 3] + 4 * (random() - 0.5) END), 4326)"""
