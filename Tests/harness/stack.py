#!/usr/bin/env python3
"""Run Tessera's real components (PostgreSQL+PostGIS, Redis, Varnish, nginx, the FastCGI APIs) in one
state directory, bound only to loopback and unix sockets.

Used three ways:
  * by pytest fixtures (Tests/e2e/conftest.py):  ``Stack(root).start_postgres()`` ...
  * by ``make run``:   python3 Tests/harness/stack.py run --state .stack --port 8080 --bin .build/release
  * by ``make test``:  python3 Tests/harness/stack.py exec -- swift test   (PostgreSQL + Redis around a command)
  * for config lint:   python3 Tests/harness/stack.py check-nginx   (and check-varnish)

Standard library only. Must run as root: PostgreSQL runs as the ``postgres`` system user (it refuses
root) and nginx's workers drop to ``nobody`` like they drop to www-data in production.

Every child process runs in its own session (so a terminal's Ctrl-C reaches only this script,
which then stops everything in order) and gets a parent-death signal, so that nothing outlives
this process even if it is SIGKILLed. Stacks still alive at interpreter exit or on
SIGTERM/SIGHUP are stopped by an atexit/signal hook. Caveat of the parent-death signal: it fires
when the *thread* that started the child exits, so start components from a long-lived thread
(pytest fixtures and the CLI use the main thread).
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import fcntl
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping

REPO = Path(__file__).resolve().parents[2]
NGINX_DIR = REPO / "nginx"
DEFAULT_WWW = REPO / "www"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_SHARE_EXT = Path("/usr/share/postgresql/15/extension")  # where tessera_h3.control lands (make build)
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
VARNISHD = shutil.which("varnishd") or "/usr/sbin/varnishd"
VCL_TEMPLATE = REPO / "packaging" / "varnish" / "tessera.vcl"
# varnishd parameters the VCL relies on (packaging's unit passes the same): request lines and
# header fields up to 16k like nginx (Varnish's default is 8k), with room in the workspace.
# nuke_limit: a big tile arriving into a storage full of small ones must evict as many as it needs (the
# default, 50, failed the fetch: a cut or 503 cold tile while maps-api logged 200; test_maps_cold_tiles.py).
VARNISH_PARAMS = ("http_req_hdr_len=16k", "http_req_size=96k", "workspace_client=192k", "nuke_limit=1000")
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

# Programs of this repo: name used for sockets/logs -> executable name.
API_PROGRAMS = {
    "workspace-api": "tessera-workspace-api",
    "maps-api": "tessera-maps-api",
    "import-api": "tessera-import-api",
    "lds-api": "tessera-lds-api",
}
# Queue workers (no socket): started by `run` and the e2e `stack` fixture when built.
WORKER_PROGRAMS = {
    "sql-worker": "tessera-sql-worker",
    "cdn-invalidator": "tessera-cdn-invalidator",
    "import-worker": "tessera-import-worker",
    "workspace-subscriber": "tessera-workspace-subscriber",
}

ADMIN_EMAIL = "admin@tessera.local"
SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


class StackError(RuntimeError):
    """A component failed to start/stop; the message carries the relevant log tail."""


# --------------------------------------------------------------------------------------------
# small helpers


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the kernel picks one; racy, but only by a hair)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:])


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _child_setup(death_signal: int) -> Callable[[], None]:
    """preexec_fn: runs after Popen's setsid/setgroups/setgid/setuid, so the death signal
    survives the credential change (the kernel clears it on setuid)."""

    def setup() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        if os.getppid() == 1:  # the parent already died between fork and prctl
            os.kill(os.getpid(), death_signal)

    return setup


def _wait_for(check: Callable[[], bool], timeout: float, what: str,
              proc: "_Proc | None" = None, logs: Iterable[Path] = (),
              interval: float = 0.05) -> None:
    """Poll `check` until true. Fails early (with the log tails) if `proc` exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if proc is not None and proc.popen.poll() is not None:
            raise StackError(f"{what}: process exited with code {proc.popen.returncode}\n" + _log_tails(logs))
        if time.monotonic() > deadline:
            raise StackError(f"{what}: not ready after {timeout:.0f}s\n" + _log_tails(logs))
        time.sleep(interval)


def _log_tails(logs: Iterable[Path], lines: int = 40) -> str:
    return "\n".join(f"--- {p} (last {lines} lines) ---\n{tail(p, lines)}" for p in logs)


def _unix_socket_accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        try:
            s.connect(str(path))
        except OSError:
            return False
        return True


def _check_sun_path(path: Path) -> None:
    if len(os.fsencode(str(path))) > SUN_PATH_MAX:
        raise StackError(f"unix socket path too long ({len(str(path))} > {SUN_PATH_MAX} bytes): {path}\n"
                         "use a shorter state directory (e.g. under /tmp)")


def _other_can_traverse(path: Path) -> Path | None:
    """First ancestor (or path itself) that a user other than owner/group cannot enter, else None."""
    p = path.resolve()
    for d in [p, *p.parents]:
        if d.exists() and d.is_dir() and not (d.stat().st_mode & stat.S_IXOTH):
            return d
    return None


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


# --------------------------------------------------------------------------------------------
# nginx config rendering (also usable by packaging)

PLACEHOLDERS = ("PREFIX", "LISTEN", "TLS_LISTEN", "TLS_CERT", "TLS_KEY", "WWW_ROOT", "RUN_DIR", "PLAIN_HTTP", "ACME_ROOT",
                "METRICS_LISTEN")
# What the plain-HTTP server serves: the whole site (development, tests) or the production redirect.
PLAIN_HTTP_SITE = "tessera-locations.conf"
PLAIN_HTTP_REDIRECT = "tessera-redirect.conf"
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_./:\[\]-]+$")


def render_nginx(out_dir: Path, values: Mapping[str, str], src_dir: Path = NGINX_DIR) -> Path:
    """Render nginx/tessera.conf.template, tessera-site.conf and tessera-locations.conf into
    out_dir (side by side, as their relative includes expect). Returns the main config path."""
    missing = [k for k in PLACEHOLDERS if k not in values]
    if missing:
        raise StackError(f"render_nginx: missing values for {missing}")
    for key, value in values.items():
        if not _SAFE_VALUE.match(str(value)):
            # nginx directives here are unquoted: spaces, quotes, ; { } or $ would break or inject.
            raise StackError(f"render_nginx: unsafe characters in {key}={value!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if values["PLAIN_HTTP"] not in (PLAIN_HTTP_SITE, PLAIN_HTTP_REDIRECT):
        raise StackError(f"render_nginx: PLAIN_HTTP must be {PLAIN_HTTP_SITE} or {PLAIN_HTTP_REDIRECT}")
    sources = [src_dir / "tessera.conf.template", src_dir / "tessera-site.conf", src_dir / "tessera-locations.conf",
               src_dir / "tessera-redirect.conf"]
    for src in sources:
        text = src.read_text()
        for key in PLACEHOLDERS:
            text = text.replace(f"@{key}@", str(values[key]))
        left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
        if left:
            raise StackError(f"render_nginx: {src.name} has unknown placeholders {left}")
        name = src.name[: -len(".template")] if src.name.endswith(".template") else src.name
        (out_dir / name).write_text(text)
    return out_dir / "tessera.conf"


VCL_PLACEHOLDERS = ("RUN_DIR",)


def render_vcl(out: Path, values: Mapping[str, str], src: Path = VCL_TEMPLATE) -> Path:
    """Render packaging/varnish/tessera.vcl (placeholders: @RUN_DIR@) into `out`."""
    missing = [k for k in VCL_PLACEHOLDERS if k not in values]
    if missing:
        raise StackError(f"render_vcl: missing values for {missing}")
    for key, value in values.items():
        if not _SAFE_VALUE.match(str(value)):
            raise StackError(f"render_vcl: unsafe characters in {key}={value!r}")
    text = src.read_text()
    for key in VCL_PLACEHOLDERS:
        text = text.replace(f"@{key}@", str(values[key]))
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise StackError(f"render_vcl: {src.name} has unknown placeholders {left}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    # The VCL includes the scale-out invalidators' ACL entries from next to itself: none here (the
    # package links it to what tessera-varnish-nodes generates).
    acl = out.parent / "tessera-invalidators.vcl"
    if not acl.exists():
        acl.write_text("# Invalidators besides loopback: none.\n")
    return out


def make_self_signed_cert(cert: Path, key: Path, log: Path | None = None) -> None:
    cert.parent.mkdir(parents=True, exist_ok=True)
    cmd = [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", str(key), "-out", str(cert), "-days", "825", "-subj", "/CN=localhost",
           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise StackError(f"openssl failed: {r.stderr.strip()}")
    os.chmod(key, 0o600)


# --------------------------------------------------------------------------------------------
# process bookkeeping shared by all stacks (atexit / signals)

_LIVE: set["Stack"] = set()
_LIVE_LOCK = threading.Lock()
_HOOKS_INSTALLED = False


def _stop_live_stacks() -> None:
    with _LIVE_LOCK:
        stacks = list(_LIVE)
    for s in stacks:
        try:
            s.stop_all()
        except Exception as e:  # never raise from atexit
            print(f"stack: cleanup of {s.root} failed: {e}", file=sys.stderr)


def _on_fatal_signal(signum, frame) -> None:
    _stop_live_stacks()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_hooks() -> None:
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(_stop_live_stacks)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_fatal_signal)


class _Proc:
    def __init__(self, name: str, popen: subprocess.Popen, logs: list[Path], stop_signal: int):
        self.name, self.popen, self.logs, self.stop_signal = name, popen, logs, stop_signal

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


# --------------------------------------------------------------------------------------------


class Stack:
    """One set of Tessera components under `root`.

    Layout:  root/pg/{data,run}  root/redis/  root/nginx/{conf,tls,tmp,logs->../logs/nginx}
             root/varnish/{tessera.vcl,work/}  root/run/ (FastCGI sockets, varnish.sock,
             maps-backend.sock)  root/logs/  root/secret.key  root/tessera.env
    """

    def __init__(self, root: Path | str, http_port: int | None = None, tls_port: int | None = None,
                 pg_port: int | None = None):
        if os.geteuid() != 0:
            raise StackError("the stack harness must run as root (PostgreSQL runs as the postgres user)")
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        # postgres (data dir) and nginx workers (statics, sockets) are other users: let them in.
        os.chmod(self.root, 0o755)
        blocked = _other_can_traverse(self.root)
        if blocked is not None:
            raise StackError(f"{blocked} is not traversable by other users (mode "
                             f"{oct(blocked.stat().st_mode & 0o777)}); postgres and nginx workers could not "
                             f"reach {self.root}. Use a state directory under /tmp or chmod o+x {blocked}.")

        self.logs_dir = self.root / "logs"
        self.logs_dir.mkdir(exist_ok=True)
        self.run_dir = self.root / "run"
        self.run_dir.mkdir(exist_ok=True)
        os.chmod(self.run_dir, 0o755)

        self.pg_root = self.root / "pg"
        self.pg_data = self.pg_root / "data"
        self.pg_socket_dir = self.pg_root / "run"
        self.redis_dir = self.root / "redis"
        self.redis_socket = self.redis_dir / "redis.sock"
        self.nginx_prefix = self.root / "nginx"
        self.varnish_dir = self.root / "varnish"
        self.tls_cert = self.nginx_prefix / "tls" / "cert.pem"
        self.tls_key = self.nginx_prefix / "tls" / "key.pem"
        self.secret_key_file = self.root / "secret.key"
        self.env_file = self.root / "tessera.env"
        self.www_root = DEFAULT_WWW

        # A state directory keeps its PostgreSQL port: the stored carto_dw connection points at it.
        port_file = self.root / "pg-port"
        if pg_port is None and port_file.is_file() and port_file.read_text().strip().isdigit():
            pg_port = int(port_file.read_text().strip())
        self.pg_port = pg_port or free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        port_file.write_text(f"{self.pg_port}\n")
        self.http_port = http_port or free_port()
        self.tls_port = tls_port or free_port()
        # nginx's loopback metrics server (GET /metrics/<program>).
        self.metrics_port = free_port()
        # Chosen up front (the cdn-invalidator's config names it), kept across restarts.
        self.varnish_purge_port: int | None = free_port()

        for p in (self.pg_socket_dir / f".s.PGSQL.{self.pg_port}.lock", self.redis_socket,
                  *(self.run_dir / f"{n}.sock" for n in (*API_PROGRAMS, "varnish", "maps-backend"))):
            _check_sun_path(p)

        self._lock_fd = os.open(self.root / ".stack.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise StackError(f"another stack is already running in {self.root}") from None

        self.procs: dict[str, _Proc] = {}
        self._stopped = False
        self._ensure_secret_key()
        self._pg_passwords = self._load_pg_passwords()
        self._write_env_file()
        with _LIVE_LOCK:
            _LIVE.add(self)
        _install_hooks()

    # ---- properties -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def tls_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def varnish_socket(self) -> Path:
        """Varnish's client endpoint (`web`), which nginx proxies maps-api GETs to."""
        return self.run_dir / "varnish.sock"

    @property
    def varnish_purge_url(self) -> str:
        """Varnish's invalidation endpoint (`purge`, loopback): PURGE/BAN as the cdn-invalidator does."""
        if self.varnish_purge_port is None:
            raise StackError("Varnish has not been started")
        return f"http://127.0.0.1:{self.varnish_purge_port}"

    @property
    def metadata_dsn(self) -> str:
        """libpq conninfo: database tessera as role tessera over the unix socket (trust auth)."""
        return self.dsn("tessera", "tessera")

    @property
    def warehouse_dsn(self) -> str:
        """libpq conninfo: database carto_dw as its own role carto_dw over TCP with its password
        (scram), the way the platform's carto_dw connection reaches it (TESSERA_WAREHOUSE_URL)."""
        return self.dsn("carto_dw", "carto_dw", tcp=True, password=True)

    @property
    def pg_passwords(self) -> dict[str, str]:
        """Passwords of the login roles (tessera, carto_dw): required over TCP (scram), where user
        connections could reach them; the unix socket (trust) is refused to user connections."""
        return dict(self._pg_passwords)

    def dsn(self, dbname: str, user: str = "postgres", tcp: bool = False, password: bool = False) -> str:
        """libpq conninfo for any db/role; tcp=True uses 127.0.0.1:pg_port (for pgbench, or a
        connection that must look remote); password=True includes the role's password."""
        host = "127.0.0.1" if tcp else str(self.pg_socket_dir)
        parts = [f"host={host}", f"port={self.pg_port}", f"dbname={dbname}", f"user={user}"]
        if password and user in self._pg_passwords:
            parts.append(f"password={self._pg_passwords[user]}")
        return " ".join(parts)

    @property
    def env(self) -> dict[str, str]:
        """TESSERA_* variables for the Swift programs (also written to root/tessera.env).
        Only keys the programs know: their config loader rejects unknown TESSERA_* keys."""
        values = {
            "TESSERA_DATABASE_URL": self.metadata_dsn,
            "TESSERA_REDIS_URL": f"unix:{self.redis_socket}",
            "TESSERA_SECRET_KEY_FILE": str(self.secret_key_file),
            "TESSERA_PUBLIC_URL": self.base_url,
            "TESSERA_WAREHOUSE_URL": self.warehouse_dsn,
            "TESSERA_SIGNUP": "invite",
            "TESSERA_VARNISH_PURGE_URL": f"http://127.0.0.1:{self.varnish_purge_port}",
            # varnishstat -n of this stack's Varnish (the cdn-invalidator exports its hit ratio).
            "TESSERA_VARNISH_WORKDIR": str(self.varnish_dir / "work"),
            # import-api and import-worker share it (uploads, work folders); per state directory.
            "TESSERA_IMPORT_DIR": str(self.root / "imports"),
            # User connections may reach this cluster over TCP only (as their own roles, with a password):
            # the loopback rule would otherwise refuse the only PostgreSQL a dev stack has.
            "TESSERA_CONNECTION_HOST_ALLOWLIST": f"127.0.0.1:{self.pg_port}",
        }
        values["TESSERA_CONFIG_FILE"] = str(self.env_file)
        return values

    # ---- files ------------------------------------------------------------------------------

    def _ensure_secret_key(self) -> None:
        if not self.secret_key_file.exists():
            _write_private(self.secret_key_file, secrets.token_bytes(32).hex())

    def _load_pg_passwords(self) -> dict[str, str]:
        path = self.root / "pg-passwords.json"
        if path.exists():
            return json.loads(path.read_text())
        pw = {"tessera": secrets.token_hex(16), "carto_dw": secrets.token_hex(16)}
        _write_private(path, json.dumps(pw))
        return pw

    def _write_env_file(self) -> None:
        env = self.env
        env.pop("TESSERA_CONFIG_FILE")
        lines = ["# Generated by Tests/harness/stack.py for this state directory. KEY=VALUE, unquoted."]
        lines += [f"{k}={v}" for k, v in env.items()]
        _write_private(self.env_file, "\n".join(lines) + "\n")

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def logs(self) -> list[Path]:
        """Every log file written so far (components, nginx access/error logs, tools)."""
        return sorted(p for p in self.logs_dir.rglob("*") if p.is_file())

    def log_report(self, lines: int = 30) -> str:
        """Tails of all logs, for a failing test's report."""
        return _log_tails(self.logs(), lines)

    # ---- generic process control ------------------------------------------------------------

    def _spawn(self, name: str, cmd: list[str], *, log: Path, stop_signal: int = signal.SIGTERM,
               user: str | None = None, env: Mapping[str, str] | None = None, cwd: Path | None = None,
               extra_logs: Iterable[Path] = ()) -> _Proc:
        if name in self.procs and self.procs[name].alive():
            raise StackError(f"{name} is already running (pid {self.procs[name].pid})")
        log.parent.mkdir(parents=True, exist_ok=True)
        logf = open(log, "ab")  # the child writes through this inherited fd, whoever it runs as
        logf.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
        logf.flush()
        kwargs = {}
        if user:
            kwargs.update(user=user, group=user, extra_groups=[])
        try:
            popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                     cwd=str(cwd or self.root), env=dict(env) if env is not None else None,
                                     start_new_session=True, preexec_fn=_child_setup(stop_signal), **kwargs)
        except OSError as e:
            raise StackError(f"{name}: cannot start {cmd[0]}: {e}") from e
        finally:
            logf.close()
        proc = _Proc(name, popen, [log, *extra_logs], stop_signal)
        self.procs[name] = proc
        return proc

    def _stop(self, name: str, sig: int | None = None, timeout: float = 30.0) -> int | None:
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.alive():
            try:
                os.kill(proc.pid, sig if sig is not None else proc.stop_signal)
            except ProcessLookupError:
                pass
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"stack: {name} (pid {proc.pid}) did not exit {timeout:.0f}s after signal "
                      f"{sig if sig is not None else proc.stop_signal}; killing its process group", file=sys.stderr)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.popen.wait(10)
        del self.procs[name]
        return proc.popen.returncode

    def pid(self, name: str) -> int | None:
        proc = self.procs.get(name)
        return proc.pid if proc and proc.alive() else None

    def check_alive(self) -> list[str]:
        """Names of started components that have exited on their own."""
        return [n for n, p in self.procs.items() if not p.alive()]

    # ---- PostgreSQL -------------------------------------------------------------------------

    def _pg_tool(self, tool: str) -> str:
        return str(PG_BIN / tool)

    def _run_as_postgres(self, cmd: list[str], what: str) -> None:
        r = subprocess.run(["runuser", "-u", "postgres", "--", *cmd], cwd=str(self.pg_root),
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise StackError(f"{what} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

    def _pg_initdb(self) -> None:
        self.pg_root.mkdir(exist_ok=True)
        shutil.chown(self.pg_root, "postgres", "postgres")
        os.chmod(self.pg_root, 0o755)
        self._run_as_postgres([self._pg_tool("initdb"), "-D", str(self.pg_data), "-U", "postgres", "-A", "trust",
                               "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"], "initdb")
        with open(self.pg_data / "postgresql.conf", "a") as f:
            f.write("\ninclude_if_exists = 'tessera-harness.conf'\n")

    # The harness itself and the services use the unix socket (trust; user connections may never use a
    # socket). Over TCP, where user connections arrive, every role needs its password (scram), so the
    # metadata role and carto_dw's role are only reachable with passwords only the services know.
    # Rewritten on every start so that state directories from before get the same rules.
    PG_HBA = ("# Tessera test cluster (written by Tests/harness/stack.py on every start).\n"
              "local all all trust\n"
              "host  all all 127.0.0.1/32 scram-sha-256\n"
              "host  all all ::1/128 scram-sha-256\n")

    def _pg_write_settings(self) -> None:
        hba = self.pg_data / "pg_hba.conf"
        if hba.read_text() != self.PG_HBA:
            hba.write_text(self.PG_HBA)
        conf = self.pg_data / "tessera-harness.conf"
        conf.write_text(
            "# Written by Tests/harness/stack.py on every start.\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.pg_port}\n"
            f"unix_socket_directories = '{self.pg_socket_dir}'\n"
            "unix_socket_permissions = 0777\n"
            "max_connections = 200\n"
            "shared_buffers = 32MB\n"
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
            "logging_collector = off\n"
            "log_line_prefix = '%m [%p] %q%u@%d '\n"
            "log_min_duration_statement = -1\n")
        shutil.chown(conf, "postgres", "postgres")
        self.pg_socket_dir.mkdir(exist_ok=True)
        shutil.chown(self.pg_socket_dir, "postgres", "postgres")
        os.chmod(self.pg_socket_dir, 0o755)

    def _pg_check_stale(self) -> None:
        pidfile = self.pg_data / "postmaster.pid"
        if not pidfile.exists():
            return
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            return  # stale: postgres removes it itself
        except PermissionError:
            pass
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"postgres" in cmdline.read_bytes():
            raise StackError(f"a PostgreSQL from an earlier run still uses {self.pg_data} (pid {pid}).\n"
                             f"Stop it with: runuser -u postgres -- {self._pg_tool('pg_ctl')} -D {self.pg_data} stop -m fast")

    def _pg_ready(self) -> bool:
        r = subprocess.run([self._pg_tool("pg_isready"), "-q", "-h", str(self.pg_socket_dir), "-p", str(self.pg_port),
                            "-d", "postgres", "-U", "postgres", "-t", "1"], capture_output=True)
        return r.returncode == 0

    def psql(self, sql: str, dbname: str = "postgres", user: str = "postgres", tcp: bool = False) -> str:
        """Run SQL through psql (ON_ERROR_STOP, unaligned tuples-only output); returns stdout."""
        r = subprocess.run([self._pg_tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-d", self.dsn(dbname, user, tcp=tcp, password=tcp), "-c", sql], capture_output=True, text=True)
        if r.returncode != 0:
            raise StackError(f"psql ({user}@{dbname}) failed: {r.stderr.strip()}")
        return r.stdout.strip()

    def _pg_bootstrap(self) -> None:
        pw = self._pg_passwords
        for role in ("tessera", "carto_dw"):
            self.psql(f"""DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{pw[role]}';
                ELSE
                    ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{pw[role]}';
                END IF; END $$;""")
        for db in ("tessera", "carto_dw"):
            if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'") != "1":
                self.psql(f"CREATE DATABASE {db} OWNER {db}")
        # The metadata database is the services' alone: no other role may even connect to it.
        self.psql("REVOKE CONNECT ON DATABASE tessera FROM PUBLIC")
        self.psql("CREATE EXTENSION IF NOT EXISTS postgis", dbname="carto_dw")
        # Not a trusted extension either: raster imports and rasterSource need it.
        self.psql("CREATE EXTENSION IF NOT EXISTS postgis_raster", dbname="carto_dw")
        # pgRouting is not a trusted extension: only a superuser can create it (local routing, lds-api).
        self.psql("CREATE EXTENSION IF NOT EXISTS pgrouting", dbname="carto_dw")
        self._pg_install_h3()

    def _pg_install_h3(self) -> None:
        """tessera_h3 (packaging/h3) into carto_dw, created by the database owner as tessera-setup
        does: it is a trusted extension. `make build` installs it into Debian's PostgreSQL; a
        machine where that has not happened builds it here (root only, as CI runs)."""
        if not (PG_SHARE_EXT / "tessera_h3.control").exists():
            build = REPO / "packaging" / "h3" / "build-ext"
            if os.geteuid() != 0 or subprocess.run([str(build), "--install"], capture_output=True).returncode != 0:
                print("stack: tessera_h3 is not installed (run `make build` as root): H3 functions unavailable",
                      file=sys.stderr)
                return
        self.psql("CREATE EXTENSION IF NOT EXISTS tessera_h3", dbname="carto_dw", user="carto_dw")

    def start_postgres(self, timeout: float = 60.0) -> None:
        """initdb on first use (reused afterwards), start the postmaster as user postgres on the
        unix socket dir and 127.0.0.1:pg_port, then create roles/databases/PostGIS if missing."""
        if not (self.pg_data / "PG_VERSION").exists():
            if self.pg_data.exists() and any(self.pg_data.iterdir()):
                raise StackError(f"{self.pg_data} exists but is not a PostgreSQL data directory")
            self._pg_initdb()
        self._pg_check_stale()
        if not port_is_free(self.pg_port):
            raise StackError(f"PostgreSQL port {self.pg_port} on 127.0.0.1 is already in use")
        self._pg_write_settings()
        log = self.log_path("postgres")
        proc = self._spawn("postgres", [self._pg_tool("postgres"), "-D", str(self.pg_data)], log=log,
                           stop_signal=signal.SIGINT, user="postgres", cwd=self.pg_root)
        _wait_for(self._pg_ready, timeout, "postgres", proc, [log])
        self._pg_bootstrap()

    def stop_postgres(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """mode: smart (SIGTERM), fast (SIGINT: roll back and disconnect), immediate (SIGQUIT: crash-like)."""
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        if mode == "immediate" and self.pid("postgres") is not None:
            # The harness runs with synchronous_commit=off: a crash-like stop would also drop the last
            # commits still in WAL buffers, which no real crash test means to simulate (the disk survives).
            try:
                self.psql("CHECKPOINT")
            except Exception:
                pass
        self._stop("postgres", sig, timeout)

    def restart_postgres(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """Stop with `mode` and start again on the same port and socket."""
        self.stop_postgres(mode)
        proc_log = self.log_path("postgres")
        proc = self._spawn("postgres", [self._pg_tool("postgres"), "-D", str(self.pg_data)], log=proc_log,
                           stop_signal=signal.SIGINT, user="postgres", cwd=self.pg_root)
        _wait_for(self._pg_ready, timeout, "postgres (restart)", proc, [proc_log])

    # ---- Redis ------------------------------------------------------------------------------

    def _redis_ping(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            s.connect(str(self.redis_socket))
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")

    def redis_command(self, *args: str) -> bytes:
        """Send one command (RESP) and return the raw reply's first chunk; enough for FLUSHALL/PING/DBSIZE."""
        payload = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.redis_socket))
            s.sendall(payload)
            return s.recv(65536)

    def start_redis(self, timeout: float = 20.0) -> None:
        """Redis on a unix socket only (port 0), no persistence."""
        self.redis_dir.mkdir(exist_ok=True)
        os.chmod(self.redis_dir, 0o755)
        if self.redis_socket.exists():
            self.redis_socket.unlink()
        conf = self.redis_dir / "redis.conf"
        conf.write_text(
            "port 0\n"
            f"unixsocket {self.redis_socket}\n"
            "unixsocketperm 770\n"
            "daemonize no\n"
            f"dir {self.redis_dir}\n"
            'save ""\n'
            "appendonly no\n"
            'logfile ""\n'
            "databases 16\n")
        log = self.log_path("redis")
        proc = self._spawn("redis", [REDIS_SERVER, str(conf)], log=log)
        _wait_for(self._redis_ping, timeout, "redis", proc, [log])

    def stop_redis(self, sig: int = signal.SIGTERM) -> None:
        self._stop("redis", sig)

    # ---- nginx ------------------------------------------------------------------------------

    def render_nginx(self, www_root: Path | None = None, run_dir: Path | None = None,
                     plain_http: str = PLAIN_HTTP_SITE) -> Path:
        """Render the config for this stack into root/nginx/conf and return the main file.
        plain_http=PLAIN_HTTP_REDIRECT renders the production plain-HTTP server (redirect to HTTPS)."""
        www = Path(www_root or self.www_root).resolve()
        run = Path(run_dir or self.run_dir).resolve()
        prefix = self.nginx_prefix
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        nginx_logs = self.logs_dir / "nginx"
        nginx_logs.mkdir(exist_ok=True)
        link = prefix / "logs"
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link)
            link.symlink_to(nginx_logs)
        if not (self.tls_cert.exists() and self.tls_key.exists()):
            make_self_signed_cert(self.tls_cert, self.tls_key)
        return render_nginx(prefix / "conf", {
            "PREFIX": str(prefix), "LISTEN": f"127.0.0.1:{self.http_port}",
            "TLS_LISTEN": f"127.0.0.1:{self.tls_port}", "TLS_CERT": str(self.tls_cert),
            "TLS_KEY": str(self.tls_key), "WWW_ROOT": str(www), "RUN_DIR": str(run),
            "PLAIN_HTTP": plain_http, "ACME_ROOT": str(self.root / "acme"),
            "METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}"})

    def _nginx_cmd(self, conf: Path) -> list[str]:
        return [NGINX, "-p", f"{self.nginx_prefix}/", "-c", str(conf)]

    def start_nginx(self, www_root: Path | str | None = None, run_dir: Path | str | None = None,
                    timeout: float = 20.0, varnish: bool = True, plain_http: str = PLAIN_HTTP_SITE) -> None:
        """Render the config, `nginx -t` it, run nginx in the foreground (daemon off) and wait
        until both the HTTP and the TLS port answer. Starts Varnish first unless it is already
        running or `varnish=False` (then maps-api GETs answer nginx's JSON 502)."""
        www = Path(www_root or self.www_root).resolve()
        for app in ("workspace", "accounts"):
            if not (www / app / "index.html").is_file():
                raise StackError(f"static root {www / app} has no index.html")
        blocked = _other_can_traverse(www / "workspace")
        if blocked is not None:
            raise StackError(f"{blocked} is not traversable by nginx workers (user nobody)")
        self.www_root = www
        if run_dir is not None:
            self.run_dir = Path(run_dir).resolve()
        for port in (self.http_port, self.tls_port):
            if not port_is_free(port):
                raise StackError(f"port {port} on 127.0.0.1 is already in use")
        if varnish and self.pid("varnish") is None:
            self.start_varnish()
        # nginx removes its unix sockets when it exits cleanly, not after SIGKILL; a stale one
        # would make bind() fail.
        backend_sock = self.run_dir / "maps-backend.sock"
        if backend_sock.exists() and not _unix_socket_accepts(backend_sock):
            backend_sock.unlink()
        conf = self.render_nginx(www, self.run_dir, plain_http=plain_http)
        t = subprocess.run([*self._nginx_cmd(conf), "-t", "-q"], capture_output=True, text=True)
        if t.returncode != 0:
            raise StackError(f"nginx -t failed for {conf}:\n{t.stdout}{t.stderr}")
        log = self.logs_dir / "nginx" / "stderr.log"
        err = self.logs_dir / "nginx" / "error.log"
        proc = self._spawn("nginx", [*self._nginx_cmd(conf), "-g", "daemon off;"], log=log,
                           stop_signal=signal.SIGTERM, extra_logs=[err])

        def ready() -> bool:
            c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=2)
            try:
                c.request("GET", "/")
                c.getresponse().read()
            finally:
                c.close()
            with socket.create_connection(("127.0.0.1", self.tls_port), timeout=2):
                pass
            return True

        _wait_for(ready, timeout, "nginx", proc, [log, err])
        self._write_env_file()

    def stop_nginx(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM = fast shutdown, SIGQUIT = graceful (finish in-flight requests)."""
        self._stop("nginx", sig)

    def reload_nginx(self) -> None:
        """Re-render, `nginx -t`, then SIGHUP (new workers, no dropped connections)."""
        conf = self.render_nginx()
        t = subprocess.run([*self._nginx_cmd(conf), "-t", "-q"], capture_output=True, text=True)
        if t.returncode != 0:
            raise StackError(f"nginx -t failed:\n{t.stderr}")
        os.kill(self.procs["nginx"].pid, signal.SIGHUP)

    # ---- Varnish (http-cache) ---------------------------------------------------------------

    def render_vcl(self, run_dir: Path | None = None) -> Path:
        """Render packaging/varnish/tessera.vcl for this stack into root/varnish/tessera.vcl."""
        run = Path(run_dir or self.run_dir).resolve()
        return render_vcl(self.varnish_dir / "tessera.vcl", {"RUN_DIR": str(run)})

    def _varnish_cmd(self, vcl: Path, storage: str) -> list[str]:
        # -j none: the harness runs as root and the workers need no other user here (Debian's
        # unit uses the default unix jail: varnish/vcache). -T none: no management port.
        cmd = [VARNISHD, "-F", "-j", "none", "-n", str(self.varnish_dir / "work"), "-f", str(vcl),
               "-a", f"web={self.varnish_socket},mode=0666",
               "-a", f"purge=127.0.0.1:{self.varnish_purge_port}",
               "-s", storage, "-T", "none"]
        for p in VARNISH_PARAMS:
            cmd += ["-p", p]
        return cmd

    def _varnish_ready(self) -> bool:
        # An answer from the VCL itself (400: PURGE without keys) proves the child is running.
        c = http.client.HTTPConnection("127.0.0.1", self.varnish_purge_port, timeout=2)
        try:
            c.request("PURGE", "/")
            r = c.getresponse()
            r.read()
            return r.status == 400
        finally:
            c.close()

    def start_varnish(self, storage: str = "malloc,64m", timeout: float = 30.0) -> None:
        """Render the VCL and run varnishd in the foreground: `web` on RUN_DIR/varnish.sock (for
        nginx), `purge` on 127.0.0.1:varnish_purge_port (for invalidation). Its backend is nginx's
        internal server, so requests answer 503 JSON until nginx runs."""
        if not os.access(VARNISHD, os.X_OK):
            raise StackError(f"varnishd not found at {VARNISHD} (apt-get install varnish varnish-modules)")
        sock = self.varnish_socket
        _check_sun_path(sock)
        if sock.exists() or sock.is_symlink():
            if _unix_socket_accepts(sock):
                raise StackError(f"varnish: something already listens on {sock}")
            sock.unlink()
        if self.varnish_purge_port is None:
            self.varnish_purge_port = free_port()
        elif not port_is_free(self.varnish_purge_port):
            raise StackError(f"varnish purge port {self.varnish_purge_port} on 127.0.0.1 is already in use")
        self.varnish_dir.mkdir(exist_ok=True)
        vcl = self.render_vcl()
        log = self.log_path("varnish")
        proc = self._spawn("varnish", self._varnish_cmd(vcl, storage), log=log, stop_signal=signal.SIGTERM)
        _wait_for(self._varnish_ready, timeout, "varnish", proc, [log])

    def stop_varnish(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Stop varnishd (manager and child). nginx keeps running: maps-api GETs then answer 502."""
        self._stop("varnish", sig, timeout)
        if self.varnish_socket.exists() and not _unix_socket_accepts(self.varnish_socket):
            self.varnish_socket.unlink()

    def varnish_request(self, method: str, path: str = "/", headers: Mapping[str, str] | None = None,
                        timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """One request to Varnish's purge endpoint (PURGE/BAN as the cdn-invalidator sends them)."""
        c = http.client.HTTPConnection("127.0.0.1", self.varnish_purge_port, timeout=timeout)
        try:
            c.request(method, path, headers=dict(headers or {}))
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    # ---- FastCGI APIs -----------------------------------------------------------------------

    def api_socket(self, name: str) -> Path:
        return self.run_dir / f"{name}.sock"

    def start_api(self, name: str, binary_path: Path | str, env: Mapping[str, str] | None = None,
                  args: Iterable[str] = (), timeout: float = 30.0) -> None:
        """Run `binary_path --socket RUN_DIR/<name>.sock [args]` with os.environ + self.env + env,
        and wait until the socket exists. `name` is e.g. "workspace-api" (the socket nginx uses)."""
        binary = Path(binary_path)
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            raise StackError(f"{name}: executable {binary} not found (build it: swift build -c release)")
        sock = self.api_socket(name)
        _check_sun_path(sock)
        if sock.exists() or sock.is_symlink():
            if _unix_socket_accepts(sock):
                raise StackError(f"{name}: something already listens on {sock}")
            sock.unlink()
        full_env = {**os.environ, **self.env, **(env or {})}
        log = self.log_path(name)
        proc = self._spawn(name, [str(binary), "--socket", str(sock), *args], log=log, env=full_env)

        def ready() -> bool:
            return sock.exists() and stat.S_ISSOCK(sock.stat().st_mode)

        _wait_for(ready, timeout, name, proc, [log])

    def stop_api(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Signal the API (SIGTERM: drain and exit; SIGKILL for crash tests) and wait; after
        `timeout` its process group is SIGKILLed. Returns the exit status (negative = signal)."""
        return self._stop(name, sig, timeout)

    def start_worker(self, name: str, binary_path: Path | str, env: Mapping[str, str] | None = None,
                     args: Iterable[str] = (), timeout: float = 30.0) -> None:
        """Run a queue worker (e.g. name "sql-worker", binary tessera-sql-worker) with os.environ +
        self.env + env, and wait until its log says it started. Stop it with stop_api(name)."""
        binary = Path(binary_path)
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            raise StackError(f"{name}: executable {binary} not found (build it: swift build -c release)")
        log = self.log_path(name)
        start = log.stat().st_size if log.exists() else 0
        # As systemd's RuntimeDirectory= does: the worker writes its metrics file there, nginx serves it.
        metrics_dir = self.run_dir / "metrics" / name
        metrics_dir.mkdir(parents=True, exist_ok=True)
        metrics_dir.chmod(0o755)
        (self.run_dir / "metrics").chmod(0o755)
        proc = self._spawn(name, [str(binary), *args], log=log,
                           env={**os.environ, **self.env, "RUNTIME_DIRECTORY": str(metrics_dir), **(env or {})})

        def ready() -> bool:
            with open(log, "rb") as f:
                f.seek(start)
                return b"event=worker_started" in f.read()

        _wait_for(ready, timeout, name, proc, [log])

    # ---- everything -------------------------------------------------------------------------

    def stop_all(self) -> None:
        """Stop APIs, nginx, Varnish, Redis, PostgreSQL (in that order). Idempotent; never raises
        for a component that is already gone."""
        if self._stopped:
            return
        errors = []
        last = ["nginx", "varnish", "redis", "postgres"]
        order = [n for n in self.procs if n not in last] + last
        for name in order:
            if name in self.procs:
                try:
                    self._stop(name, timeout=30.0)
                except Exception as e:
                    errors.append(f"{name}: {e}")
        self._stopped = True
        with _LIVE_LOCK:
            _LIVE.discard(self)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
        except OSError:
            pass
        if errors:
            raise StackError("stop_all: " + "; ".join(errors))

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()


# --------------------------------------------------------------------------------------------
# CLI


def _run_tool(stack: Stack, cmd: list[str], what: str, *, redact: Iterable[str] = (), log_output: bool = True,
              timeout: float = 600) -> str:
    """Run a one-shot command with the stack's env; append a redacted record to logs/tools.log."""
    shown = " ".join(cmd)
    for secret in redact:
        shown = shown.replace(secret, "***")
    env = {**os.environ, **stack.env}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=str(REPO))
    def scrub(text: str) -> str:
        for secret in redact:
            text = text.replace(secret, "***")
        return text

    with open(stack.log_path("tools"), "a") as f:
        f.write(f"\n=== {time.strftime('%H:%M:%S')} {shown} -> {r.returncode}\n")
        if log_output or r.returncode != 0:
            f.write(scrub(r.stdout))
        f.write(scrub(r.stderr))
    if r.returncode != 0:
        raise StackError(f"{what} failed (exit {r.returncode}): {shown}\n{scrub((r.stdout + r.stderr).strip())}")
    return r.stdout


def _ensure_admin(stack: Stack, tessera: Path, state: Path) -> str:
    pw_file = state / "admin-password"
    if pw_file.exists():
        return pw_file.read_text().strip()
    password = secrets.token_urlsafe(15)
    _run_tool(stack, [str(tessera), "create-admin", "--email", ADMIN_EMAIL, "--password", password],
              "tessera create-admin", redact=[password])
    _write_private(pw_file, password + "\n")
    return password


def _restart_functions(stack: Stack, bin_dir: Path, started: list[str]) -> dict[str, Callable[[], None]]:
    """How `run` starts each of the Tessera programs it started, again."""
    def api(name: str) -> Callable[[], None]:
        return lambda: stack.start_api(name, bin_dir / API_PROGRAMS[name])

    def worker(name: str) -> Callable[[], None]:
        return lambda: stack.start_worker(name, bin_dir / WORKER_PROGRAMS[name])

    return {name: api(name) if name in API_PROGRAMS else worker(name) for name in started}


def cmd_run(args: argparse.Namespace) -> int:
    state = Path(args.state).resolve()
    bin_dir = Path(args.bin).resolve()
    tessera = bin_dir / "tessera"
    required = [tessera] + [bin_dir / API_PROGRAMS[n] for n in ("workspace-api", "maps-api")]
    missing = [p for p in required if not p.is_file()]
    if missing and not bin_dir.is_dir():
        print(f"error: binary directory {bin_dir} does not exist. Build first: swift build -c release", file=sys.stderr)
        return 2
    if tessera in missing or (missing and not args.allow_missing):
        print("error: missing Swift executables:\n  " + "\n  ".join(map(str, missing)) +
              "\nBuild them with `swift build -c release` (or pass --bin DIR).", file=sys.stderr)
        return 2
    if not port_is_free(args.port):
        print(f"error: port {args.port} on 127.0.0.1 is already in use", file=sys.stderr)
        return 2

    # Ctrl-C must stop everything in order even when started from a shell that ignores SIGINT
    # for background jobs; SIGTERM/SIGHUP are handled by the stack's own hook.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stack = Stack(state, http_port=args.port, tls_port=args.tls_port)
    print(f"state: {state}   logs: {stack.logs_dir}")
    try:
        print("starting PostgreSQL ...", flush=True)
        stack.start_postgres()
        print("starting Redis ...", flush=True)
        stack.start_redis()
        print("migrating ...", flush=True)
        _run_tool(stack, [str(tessera), "migrate"], "tessera migrate")
        password = _ensure_admin(stack, tessera, state)
        # A state directory from before carto_dw had its own role over TCP gets the current credentials.
        _run_tool(stack, [str(tessera), "warehouse-register"], "tessera warehouse-register")
        demo = REPO / "Tests" / "harness" / "demo_data.py"
        if demo.exists() and not args.no_demo:
            print("loading demo data (first run takes a while) ...", flush=True)
            _run_tool(stack, [sys.executable, str(demo), "--dsn", stack.warehouse_dsn], "demo data", timeout=1800,
                      redact=[stack.pg_passwords["carto_dw"]])
            # The LDS gazetteer (carto_lds.places) from the same GeoNames data, for local geocoding.
            print("loading the geocoding gazetteer ...", flush=True)
            _run_tool(stack, [str(tessera), "lds", "load-places", "--if-missing"], "tessera lds load-places", timeout=1800)
        basemap = REPO / "Tests" / "harness" / "basemap_data.py"
        if basemap.exists() and not args.no_demo:
            print("loading the offline basemap (public.world_countries, schema basemap; the first run converts it) ...", flush=True)
            _run_tool(stack, [sys.executable, str(basemap), "--dsn", stack.warehouse_dsn, "--reference"], "basemap data", timeout=3600,
                      redact=[stack.pg_passwords["carto_dw"]])
        started = []
        for name, program in API_PROGRAMS.items():
            binary = bin_dir / program
            if binary.is_file():
                stack.start_api(name, binary)
                started.append(name)
            else:
                print(f"note: {program} not built; /api routes for {name} will answer 502")
        for name, program in WORKER_PROGRAMS.items():
            if (bin_dir / program).is_file():
                stack.start_worker(name, bin_dir / program)
                started.append(name)
        print("starting Varnish ...", flush=True)
        stack.start_varnish()
        print("starting nginx ...", flush=True)
        stack.start_nginx(www_root=args.www, run_dir=stack.run_dir)
        console_line = "not built"
        if (bin_dir / "tessera-admin").is_file():
            # The admin console; its privileged actions go through admin_dev (no systemd here).
            from admin_dev import AdminConsole
            pw_file = state / "console-password"
            if not pw_file.exists():
                _write_private(pw_file, "console-" + secrets.token_hex(8) + "\n")
            console = AdminConsole(stack, bin_dir, pw_file.read_text().strip(),
                                   port=8800 if port_is_free(8800) else None).start()
            console_line = f"{console.url}/   operator password in {pw_file}"
        token = _run_tool(stack, [str(tessera), "tokens", "create", "--email", ADMIN_EMAIL, "--connection", "carto_dw",
                                  "--source", "*", "--apis", "sql,maps,lds"], "tessera tokens create",
                          log_output=False).strip().splitlines()
        token = token[-1].strip() if token else ""
        if token:
            _write_private(state / "token", token + "\n")
        url = f"http://localhost:{stack.http_port}"
        q = "SELECT%20name%2C%20population%20FROM%20populated_places%20ORDER%20BY%20population%20DESC%20LIMIT%205"
        print(f"""
Tessera is running.
  Workspace   {url}/
  Accounts    {url}/acc/
  TLS         https://localhost:{stack.tls_port}/   (self-signed: {stack.tls_cert})
  http-cache  Varnish in front of maps-api GETs; invalidation at {stack.varnish_purge_url} (loopback)
  Admin       {ADMIN_EMAIL}  /  {password}   (saved in {state / 'admin-password'})
  Console     {console_line}
  APIs        {', '.join(started) or 'none'}
  API token   sql+maps+lds on carto_dw, saved in {state / 'token'}

  curl -H "Authorization: Bearer {token}" '{url}/api/v3/sql/carto_dw/query?q={q}'
  curl -H "Authorization: Bearer {token}" '{url}/api/v3/lds/geocoding/geocode?address=Zaragoza'

  Logs        {stack.logs_dir}/
Press Ctrl-C to stop.""", flush=True)
        # Tessera's programs are restarted when they crash (supervise.py); PostgreSQL, Redis, Varnish
        # or nginx exiting still stops the stack.
        from supervise import Restarter
        restarter = Restarter(_restart_functions(stack, bin_dir, started))
        while True:
            for name in stack.check_alive():
                if name in getattr(stack, "restarting", ()):
                    continue  # the admin console is restarting it (admin_dev)
                p = stack.procs[name]
                if not restarter.handles(name):
                    print(f"\nerror: {name} exited with code {p.popen.returncode}\n{_log_tails(p.logs)}", file=sys.stderr)
                    return 1
                restarter.exited(name, p.popen.returncode, _log_tails(p.logs, 20))
            restarter.tick()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    except StackError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 1
    finally:
        stack.stop_all()


def cmd_exec(args: argparse.Namespace) -> int:
    """PostgreSQL + Redis around one command (e.g. `swift test`). The command gets stack.env,
    PGHOST/PGPORT, and STACK_* variables (STACK_METADATA_DSN, STACK_WAREHOUSE_DSN,
    STACK_SUPERUSER_DSN, STACK_REDIS_SOCKET, STACK_ROOT). Test-only values deliberately do not
    use the TESSERA_ prefix: the Swift config loader rejects unknown TESSERA_* keys."""
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("error: exec needs a command after --", file=sys.stderr)
        return 2
    tmp = None
    if args.state:
        state = Path(args.state).resolve()
    else:
        tmp = tempfile.mkdtemp(prefix="tessera-exec-", dir="/tmp")
        state = Path(tmp)
    stack = Stack(state)
    try:
        stack.start_postgres()
        stack.start_redis()
        env = {**os.environ, **stack.env,
               "PGHOST": str(stack.pg_socket_dir), "PGPORT": str(stack.pg_port),
               "STACK_ROOT": str(stack.root),
               "STACK_METADATA_DSN": stack.metadata_dsn, "STACK_WAREHOUSE_DSN": stack.warehouse_dsn,
               "STACK_SUPERUSER_DSN": stack.dsn("postgres", "postgres"),
               "STACK_REDIS_SOCKET": str(stack.redis_socket)}
        return subprocess.call(command, env=env)
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        stack.stop_all()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def cmd_check_nginx(args: argparse.Namespace) -> int:
    """Render with throwaway values and run `nginx -t` (config lint, P7)."""
    with tempfile.TemporaryDirectory(prefix="tessera-nginx-check-") as tmp:
        t = Path(tmp)
        (t / "logs").mkdir()
        (t / "tmp").mkdir()
        (t / "run").mkdir()  # nginx -t binds (and removes) the internal server's unix socket
        make_self_signed_cert(t / "cert.pem", t / "key.pem")
        # Both plain-HTTP servers: the development site and the production redirect.
        for plain in (PLAIN_HTTP_SITE, PLAIN_HTTP_REDIRECT):
            conf = render_nginx(t / "conf", {
                "PREFIX": str(t), "LISTEN": "127.0.0.1:8080", "TLS_LISTEN": "127.0.0.1:8443",
                "TLS_CERT": str(t / "cert.pem"), "TLS_KEY": str(t / "key.pem"),
                "WWW_ROOT": str(DEFAULT_WWW), "RUN_DIR": str(t / "run"), "PLAIN_HTTP": plain, "ACME_ROOT": str(t),
                "METRICS_LISTEN": "127.0.0.1:9180"})
            r = subprocess.run([NGINX, "-p", f"{t}/", "-c", str(conf), "-t"], capture_output=True, text=True)
            sys.stdout.write(r.stdout + r.stderr)
            if r.returncode != 0:
                return r.returncode
        return 0


def cmd_check_varnish(args: argparse.Namespace) -> int:
    """Render the VCL with throwaway values and compile it (`varnishd -C`)."""
    with tempfile.TemporaryDirectory(prefix="tessera-varnish-check-") as tmp:
        t = Path(tmp)
        os.chmod(t, 0o755)  # the VCL compiler runs as Debian's unprivileged varnish user
        vcl = render_vcl(t / "tessera.vcl", {"RUN_DIR": "/run/tessera"})
        r = subprocess.run([VARNISHD, "-C", "-f", str(vcl), "-n", str(t / "work")], capture_output=True, text=True)
        if r.returncode != 0:
            sys.stdout.write(r.stderr)
        else:
            print(f"VCL {VCL_TEMPLATE.relative_to(REPO)} compiles")
        return r.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="stack.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="run the whole stack in the foreground until Ctrl-C")
    run.add_argument("--state", default=str(REPO / ".stack"), help="state directory (kept between runs)")
    run.add_argument("--port", type=int, default=8080, help="HTTP port on 127.0.0.1")
    run.add_argument("--tls-port", type=int, default=None, help="HTTPS port (default: a free one)")
    run.add_argument("--bin", default=str(REPO / ".build" / "release"), help="directory of the Swift executables")
    run.add_argument("--www", default=str(DEFAULT_WWW), help="static roots (workspace/, accounts/)")
    run.add_argument("--allow-missing", action="store_true",
                     help="start even if tessera-workspace-api or tessera-maps-api is not built")
    run.add_argument("--no-demo", action="store_true",
                     help="skip the demo data, gazetteer and basemap loads (a quick, empty stack)")
    run.set_defaults(func=cmd_run)

    ex = sub.add_parser("exec", help="run a command with PostgreSQL and Redis up (e.g. swift test)")
    ex.add_argument("--state", default=None, help="state directory (default: a fresh temporary one)")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    ex.set_defaults(func=cmd_exec)

    chk = sub.add_parser("check-nginx", help="render the nginx config and run nginx -t")
    chk.set_defaults(func=cmd_check_nginx)

    chv = sub.add_parser("check-varnish", help="render the VCL and compile it (varnishd -C)")
    chv.set_defaults(func=cmd_check_varnish)

    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
