"""The admin console under `make run` and the e2e stack, where there is no systemd.

Production starts fixed units for the console's privileged actions (tessera-admin-apply.service,
tessera-backup.service, tessera-admin-restore@.service) and reads unit states from systemctl. Here the
console runs with `--dev-actions DIR` and this module is the other end, explicitly and nothing more:
  - every 0.2 s it writes DIR/units.json (each program: active/failed, restarts, pid),
  - it answers DIR/<id>.request files with DIR/<id>.done:
      {"action": "restart", "units": ["tessera-maps-api", ...]}  stop + start those programs
      {"action": "backup"}                                       `tessera backup` (TESSERA_BACKUP_DIR)
      {"action": "restore", "archive": NAME}                     stop the programs, `tessera restore`, start them
      {"action": "tls"}                                          DIR/staged-tls.{crt,key} become nginx's certificate
It also renders nginx's console server (nginx/tessera-admin-site.conf) on its own TLS port.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

from stack import API_PROGRAMS, NGINX_DIR, WORKER_PROGRAMS, Stack, StackError, free_port

PROGRAMS = {**{v: k for k, v in API_PROGRAMS.items()}, **{v: k for k, v in WORKER_PROGRAMS.items()}}


class AdminConsole:
    def __init__(self, stack: Stack, bin_dir: Path, password: str, port: int | None = None):
        self.stack, self.bin = stack, Path(bin_dir)
        self.dir = stack.root / "admin"
        self.actions = self.dir / "actions"
        self.actions.mkdir(parents=True, exist_ok=True)
        self.password_file = self.dir / "admin-password"
        self.port = port or free_port()
        self.restarts: dict[str, int] = {}
        self.handled: list[dict] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.password = password

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> "AdminConsole":
        pw = self.dir / "password.txt"
        pw.write_text(self.password + "\n")
        os.chmod(pw, 0o600)
        self._tessera("admin-password", "--file", str(self.password_file), "--password-file", str(pw))
        pw.unlink()
        self.stack.start_api("admin", self.bin / "tessera-admin", args=[
            "--password-file", str(self.password_file), "--dev-actions", str(self.actions),
            "--dev-logs", str(self.stack.logs_dir), "--tls-cert", str(self.stack.tls_cert), "--access-log", str(self.stack.logs_dir / "nginx" / "access.log"),
            "--metrics-dir", str(self.stack.run_dir / "metrics")])
        self._write_units()
        self._thread = threading.Thread(target=self._loop, name="admin-dev-actions", daemon=True)
        self._thread.start()
        self.render_site()
        return self

    def render_site(self) -> None:
        text = (NGINX_DIR / "tessera-admin-site.conf").read_text()
        for key, value in {"ADMIN_LISTEN": f"127.0.0.1:{self.port}", "ADMIN_CERT": str(self.stack.tls_cert),
                           "ADMIN_KEY": str(self.stack.tls_key), "WWW_ROOT": str(self.stack.www_root),
                           "RUN_DIR": str(self.stack.run_dir),
                           "ACCESS_LOG": str(self.stack.logs_dir / "nginx" / "admin-access.log")}.items():
            text = text.replace(f"@{key}@", value)
        (self.stack.nginx_prefix / "conf" / "tessera-admin-site.conf").write_text(text)
        self.stack.reload_nginx()
        deadline = time.monotonic() + 20
        import socket
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise StackError(f"nginx does not listen on the console port {self.port}")
                time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self.stack.stop_api("admin")
        site = self.stack.nginx_prefix / "conf" / "tessera-admin-site.conf"
        if site.exists():
            site.unlink()

    # ---- the dev-mode end of PrivilegedActions ------------------------------------------------

    def _tessera(self, *args: str) -> str:
        r = subprocess.run([str(self.bin / "tessera"), *args], capture_output=True, text=True,
                           env={**os.environ, **self.stack.env}, timeout=900)
        if r.returncode != 0:
            raise StackError(f"tessera {args[0]} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r.stdout

    def _restart(self, unit: str) -> None:
        name = PROGRAMS.get(unit)
        if name is None:
            return  # nginx, the backup timer: nothing to restart under the harness
        if name not in self.stack.procs:
            return  # not part of this stack (try-restart leaves a stopped unit alone too)
        # `stack.py run` watches for dead programs: this stop is not a crash.
        self.stack.restarting = getattr(self.stack, "restarting", set()) | {name}
        try:
            self.stack.stop_api(name)
            binary = self.bin / unit
            if name in API_PROGRAMS:
                self.stack.start_api(name, binary)
            else:
                self.stack.start_worker(name, binary)
        finally:
            self.stack.restarting = self.stack.restarting - {name}
        self.restarts[name] = self.restarts.get(name, 0) + 1

    def _handle(self, request: dict) -> dict:
        action = request.get("action")
        if action == "restart":
            for unit in request.get("units", []):
                self._restart(unit)
            return {"ok": True}
        if action == "backup":
            # The stack's stand-in for /etc/tessera: its env file.
            etc = self.dir / "etc"
            etc.mkdir(exist_ok=True)
            (etc / "tessera.env").write_bytes(self.stack.env_file.read_bytes())
            return {"ok": True, "output": self._tessera("backup", "--config-dir", str(etc))}
        if action == "tls":
            # What tessera-admin-tls.service does: the checked pair replaces nginx's certificate, reload.
            self.stack.tls_cert.write_bytes((self.actions / "staged-tls.crt").read_bytes())
            self.stack.tls_key.write_bytes((self.actions / "staged-tls.key").read_bytes())
            os.chmod(self.stack.tls_key, 0o600)
            for f in ("staged-tls.crt", "staged-tls.key"):
                (self.actions / f).unlink()
            self.stack.reload_nginx()
            return {"ok": True}
        if action == "restore":
            running = [PROGRAM for PROGRAM in PROGRAMS if PROGRAMS[PROGRAM] in self.stack.procs]
            backup_dir = self._backup_dir()
            self.stack.restarting = getattr(self.stack, "restarting", set()) | {PROGRAMS[u] for u in running}
            for unit in running:
                self.stack.stop_api(PROGRAMS[unit])
            try:
                out = self._tessera("restore", str(backup_dir / request["archive"]),
                                    "--config-dir", str(self.dir / "restored-etc"))
            finally:
                for unit in running:
                    name = PROGRAMS[unit]
                    (self.stack.start_api if name in API_PROGRAMS else self.stack.start_worker)(name, self.bin / unit)
                self.stack.restarting = self.stack.restarting - {PROGRAMS[u] for u in running}
            return {"ok": True, "output": out}
        return {"error": f"unknown action {action!r}"}

    def _backup_dir(self) -> Path:
        from_file = {}
        for line in self.stack.env_file.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                from_file[k.strip()] = v.strip()
        return Path(self.stack.env.get("TESSERA_BACKUP_DIR") or from_file.get("TESSERA_BACKUP_DIR")
                    or "/var/lib/tessera/backups")

    def _write_units(self) -> None:
        units = {}
        for unit, name in PROGRAMS.items():
            proc = self.stack.procs.get(name)
            if proc is None:
                units[unit] = {"active": "inactive", "sub": "not started by this stack"}
            else:
                units[unit] = {"active": "active" if proc.alive() else "failed", "sub": f"pid {proc.pid}",
                               "restarts": self.restarts.get(name, 0)}
        for service, name in (("postgresql", "postgres"), ("redis-server", "redis"), ("varnish", "varnish"),
                              ("nginx", "nginx"), ("tessera-admin", "admin")):
            proc = self.stack.procs.get(name)
            units[service] = {"active": "active" if proc and proc.alive() else "inactive",
                              "sub": f"pid {proc.pid}" if proc else ""}
        tmp = self.actions / ".units.json.tmp"
        tmp.write_text(json.dumps(units))
        tmp.replace(self.actions / "units.json")

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._write_units()
                for req in sorted(self.actions.glob("*.request")):
                    body = json.loads(req.read_text())
                    req.unlink()
                    try:
                        answer = self._handle(body)
                    except Exception as e:  # noqa: BLE001 - every failure is the console's answer
                        answer = {"error": str(e)[-2000:]}
                    self.handled.append(body)
                    done = req.with_suffix(".tmp")
                    done.write_text(json.dumps(answer))
                    done.replace(req.with_suffix(".done"))
            except Exception as e:  # noqa: BLE001 - keep serving; the console times out on its side
                print(f"admin_dev: {e}", flush=True)
            self._stop.wait(0.2)
