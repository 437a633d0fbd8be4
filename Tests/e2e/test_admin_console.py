"""The admin console (issue 16, point 1) on a real stack: tessera-admin behind nginx's own HTTPS
server, its privileged actions carried out by the development harness (Tests/harness/admin_dev.py)
as systemd units carry them out on a VM. Login and its throttling, the status JSON, configuration
validation (nothing written on a bad value), a save that restarts exactly the affected program,
backups (list, create, download) and a redacted support bundle.
"""
from __future__ import annotations

import io
import re
import tarfile

import pytest
import requests
import urllib3

from helpers import BIN, REPO, boot_stack, finish_stack, warehouse
from admin_dev import AdminConsole

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
PASSWORD = "operator password 1234"


@pytest.fixture(scope="module")
def console(request):
    s = boot_stack("admin")
    c = None
    try:
        c = AdminConsole(s, BIN, PASSWORD).start()
        yield c
    finally:
        try:
            if c is not None:
                c.stop()
        finally:
            finish_stack(s, keep=request.session.testsfailed > 0)


class Client:
    def __init__(self, console: AdminConsole):
        self.base = console.url
        self.http = requests.Session()
        self.http.verify = False

    def call(self, method: str, path: str, json=None, csrf: bool = True, **kw) -> requests.Response:
        headers = {"X-Tessera-Admin": "1"} if csrf else {}
        return self.http.request(method, f"{self.base}/admin-api/{path}", json=json, headers=headers, timeout=600,
                                 verify=False, **kw)

    def login(self, password: str) -> requests.Response:
        return self.call("POST", "login", {"password": password})


@pytest.fixture(scope="module")
def op(console):
    c = Client(console)
    r = c.login(PASSWORD)
    assert r.status_code == 200, r.text
    assert "HttpOnly" in r.headers["Set-Cookie"] and "Secure" in r.headers["Set-Cookie"]
    return c


def assert_error(r: requests.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == status and body["code"] == code and body["error"], body
    return body


def env_text(console: AdminConsole) -> bytes:
    return console.stack.env_file.read_bytes()


def test_console_page_is_served_over_https_with_its_login(console):
    r = requests.get(console.url + "/", verify=False, timeout=30)
    assert r.status_code == 200
    assert "Operator login" in r.text and 'src="admin.js"' in r.text
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert requests.get(console.url + "/admin.js", verify=False, timeout=30).status_code == 200


def test_every_route_needs_the_operator(console):
    anon = Client(console)
    for method, path in (("GET", "status"), ("GET", "config"), ("PUT", "config"), ("GET", "backups"),
                         ("POST", "backups"), ("GET", "support-bundle")):
        assert_error(anon.call(method, path, json={}), 401, "login_required")
    # A platform user's password is not the operator's.
    assert_error(anon.login(console.stack.admin_password), 401, "invalid_credentials")


def test_changes_need_the_console_header(op):
    assert_error(op.call("PUT", "config", {"values": {"TESSERA_LOG_LEVEL": "debug"}}, csrf=False), 403, "csrf")


def test_status_reports_units_services_disks_and_queues(op, console):
    r = op.call("GET", "status")
    assert r.status_code == 200, r.text
    s = r.json()
    units = {u["name"]: u for u in s["units"]}
    assert units["tessera-maps-api"]["active"] == "active"
    assert units["tessera-workspace-api"]["active"] == "active"
    assert units["tessera-sql-worker"]["active"] == "inactive"  # boot_stack starts no workers
    services = {u["name"]: u for u in s["services"]}
    assert services["postgresql (metadata database)"]["active"] == "active"
    assert services["redis (cache)"]["active"] == "active"
    assert services["nginx"]["active"] == "active"
    assert s["disks"] and all(d["total_bytes"] > 0 for d in s["disks"])
    assert isinstance(s["queues"], list)
    assert set(s["errors_5xx"]) == {"workspace-api", "maps-api", "import-api", "lds-api"}
    assert s["version"]


def test_configuration_screen_lists_every_key_of_the_table(op, console):
    r = op.call("GET", "config")
    assert r.status_code == 200, r.text
    keys = {k["name"]: k for k in r.json()["keys"]}
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- config-keys:begin")[1].split("<!-- config-keys:end -->")[0]
    documented = set(re.findall(r"^\| `(TESSERA_[A-Z0-9_]+)`", section, re.M))
    assert set(keys) == documented - {"TESSERA_CONFIG_FILE"}
    tiles = keys["TESSERA_TILE_MAX_FEATURES"]
    assert tiles["default"] == "20000" and tiles["units"] == ["tessera-maps-api"] and tiles["rule"].startswith("integer")
    wh = keys["TESSERA_WAREHOUSE_URL"]
    assert wh["secret"] and "password=<redacted>" in wh["value"]
    assert console.stack.pg_passwords["carto_dw"] not in r.text


def test_an_invalid_value_writes_nothing_and_marks_the_field(op, console):
    before = env_text(console)
    maps_pid = console.stack.pid("maps-api")
    r = op.call("PUT", "config", {"values": {"TESSERA_THREADS": "0", "TESSERA_SIGNUP": "open",
                                             "TESSERA_PUBLIC_URL": "maps.example.com", "TESSERA_NOPE": "1"}})
    body = assert_error(r, 422, "invalid_config")
    assert set(body["fields"]) == {"TESSERA_THREADS", "TESSERA_PUBLIC_URL", "TESSERA_NOPE"}
    assert "between 1 and 1024" in body["fields"]["TESSERA_THREADS"]
    assert env_text(console) == before
    assert console.stack.pid("maps-api") == maps_pid
    # A newline would smuggle a second line into the file.
    assert_error(op.call("PUT", "config", {"values": {"TESSERA_LDS_CONNECTION": "x\nTESSERA_SIGNUP=open"}}), 422, "invalid_config")
    assert env_text(console) == before


def test_a_save_restarts_only_the_programs_the_key_affects(op, console):
    maps_pid, ws_pid = console.stack.pid("maps-api"), console.stack.pid("workspace-api")
    r = op.call("PUT", "config", {"values": {"TESSERA_TILE_MAX_FEATURES": "5000"}})
    assert r.status_code == 200, r.text
    assert r.json() == {"changed": ["TESSERA_TILE_MAX_FEATURES"], "restarted": ["tessera-maps-api"]}
    assert "\nTESSERA_TILE_MAX_FEATURES=5000\n" in env_text(console).decode()
    assert console.stack.pid("maps-api") not in (None, maps_pid)
    assert console.stack.pid("workspace-api") == ws_pid
    # Back to the default: the line goes, maps-api restarts again; unchanged keys restart nothing.
    r = op.call("PUT", "config", {"values": {"TESSERA_TILE_MAX_FEATURES": None}})
    assert r.json()["restarted"] == ["tessera-maps-api"]
    assert "TESSERA_TILE_MAX_FEATURES" not in env_text(console).decode()
    assert op.call("PUT", "config", {"values": {"TESSERA_SIGNUP": "invite"}}).json() == {"changed": [], "restarted": []}


def test_backups_list_create_and_download(op, console):
    backup_dir = console.stack.root / "backups"
    backup_dir.mkdir()
    r = op.call("PUT", "config", {"values": {"TESSERA_BACKUP_DIR": str(backup_dir), "TESSERA_BACKUP_KEEP": "3"}})
    assert r.status_code == 200 and r.json()["restarted"] == [], r.text
    listing = op.call("GET", "backups").json()
    assert listing["directory"] == str(backup_dir) and listing["keep"] == 3 and listing["archives"] == []
    r = op.call("POST", "backups")
    assert r.status_code == 201, r.text
    archives = r.json()["archives"]
    assert len(archives) == 1 and archives[0]["bytes"] > 0
    name = archives[0]["name"]
    d = op.call("GET", f"backups/{name}")
    assert d.status_code == 200 and len(d.content) == archives[0]["bytes"]
    assert d.content == (backup_dir / name).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(d.content)) as tar:
        assert "manifest.json" in [m.name.split("/")[-1] for m in tar.getmembers()]
    assert_error(op.call("GET", "backups/secret.key"), 400, "invalid_archive_name")
    assert_error(op.call("GET", "backups/tessera-backup-19990101T000000Z.tar"), 404, "backup_not_found")


def test_restore_from_the_console_brings_a_dropped_table_back(op, console):
    warehouse(console.stack, "CREATE TABLE public.console_probe AS SELECT 7 AS answer")
    r = op.call("POST", "backups")
    assert r.status_code == 201, r.text
    newest = r.json()["archives"][0]["name"]
    warehouse(console.stack, "DROP TABLE public.console_probe")
    maps_pid = console.stack.pid("maps-api")
    r = op.call("POST", f"backups/{newest}/restore")
    assert r.status_code == 200 and r.json() == {"restored": newest}, r.text
    assert warehouse(console.stack, "SELECT answer FROM public.console_probe").strip() == "7"
    # The programs were stopped for the restore and started again.
    assert console.stack.pid("maps-api") not in (None, maps_pid)
    assert {"action": "restore", "archive": newest} in console.handled
    assert_error(op.call("POST", "backups/not-an-archive/restore"), 400, "invalid_archive_name")


def test_support_bundle_holds_logs_versions_config_and_states_without_secrets(op, console):
    assert_error(op.call("GET", "support-bundle?hours=0"), 400, "invalid_parameter")
    r = op.call("GET", "support-bundle?hours=2")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        files = {m.name.split("/")[-1]: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}
    assert set(files) == {"tessera.env.redacted", "status.json", "versions.txt", "logs.txt"}
    assert "===== maps-api.log" in files["logs.txt"]
    assert "tessera-maps-api" in files["status.json"]
    assert re.search(r"^TESSERA_WAREHOUSE_URL=.*password=<redacted>", files["tessera.env.redacted"], re.M)
    secrets = [*console.stack.pg_passwords.values(), console.stack.secret_key_file.read_text().strip(), PASSWORD]
    for name, text in files.items():
        for secret in secrets:
            assert secret not in text, f"{name} leaks a secret"


def make_pair(cn: str, days: int = 30, expired: bool = False) -> tuple[str, str]:
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = (now - datetime.timedelta(days=60), now - datetime.timedelta(days=1)) if expired else (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())


def test_tls_upload_is_checked_and_installed(op, console):
    import ssl
    good_cert, good_key = make_pair("console-test.example")
    _, other_key = make_pair("other.example")
    old_cert, old_expired_key = make_pair("old.example", expired=True)
    before = console.stack.tls_cert.read_bytes()
    r = op.call("POST", "tls/check", {"certificate": good_cert, "key": good_key})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["key_matches"] and report["problems"] == [] and 28 <= report["days_left"] <= 30
    assert "CN=console-test.example" in report["subject"] and report["chain_trusted"] is False  # self-signed
    body = assert_error(op.call("PUT", "tls", {"certificate": good_cert, "key": other_key}), 422, "invalid_certificate")
    assert "does not belong" in body["error"] and body["certificate"]["key_matches"] is False
    body = assert_error(op.call("PUT", "tls", {"certificate": old_cert, "key": old_expired_key}), 422, "invalid_certificate")
    assert "expired" in body["error"]
    assert_error(op.call("PUT", "tls", {"certificate": "not a pem", "key": good_key}), 422, "invalid_certificate")
    assert console.stack.tls_cert.read_bytes() == before
    r = op.call("PUT", "tls", {"certificate": good_cert, "key": good_key})
    assert r.status_code == 200, r.text
    # nginx's reload replaces its workers gracefully: old ones may answer a moment longer.
    import time
    deadline = time.monotonic() + 30
    while True:
        served = ssl.get_server_certificate(("127.0.0.1", console.stack.tls_port))
        if ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(good_cert) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(good_cert)
    shown = op.call("GET", "tls").json()
    assert "CN=console-test.example" in shown["certificate"]["subject"]
    assert good_key.split("\n")[1] not in console.stack.log_path("admin").read_text()


def test_acme_needs_its_settings_and_a_failure_keeps_the_certificate(op, console):
    """The ACME path itself (certbot against pebble) runs in packaging/test-install; here: the settings
    are checked before anything starts, and a failure answers the reason and replaces nothing."""
    before = console.stack.tls_cert.read_bytes()
    shown = op.call("GET", "tls").json()["acme"]
    assert shown["server"] == "https://acme-v02.api.letsencrypt.org/directory" and shown["domains"] == [] and shown["last"] is None
    body = assert_error(op.call("POST", "tls/acme"), 422, "acme_not_configured")
    assert body["fields"] == ["TESSERA_ACME_DOMAIN", "TESSERA_ACME_EMAIL"]
    body = assert_error(op.call("PUT", "config", {"values": {"TESSERA_ACME_DOMAIN": "*.example.com"}}), 422, "invalid_config")
    assert "TESSERA_ACME_DOMAIN" in body["fields"]
    r = op.call("PUT", "config", {"values": {"TESSERA_ACME_DOMAIN": "maps.example.com", "TESSERA_ACME_EMAIL": "ops@example.com"}})
    assert r.status_code == 200 and r.json()["restarted"] == [], r.text
    assert op.call("GET", "tls").json()["acme"]["domains"] == ["maps.example.com"]
    # The development stack has no port 80 for HTTP-01: the reason comes back, the certificate stays.
    body = assert_error(op.call("POST", "tls/acme"), 502, "acme_failed")
    assert "packaged install" in body["error"]
    assert console.stack.tls_cert.read_bytes() == before
    op.call("PUT", "config", {"values": {"TESSERA_ACME_DOMAIN": None, "TESSERA_ACME_EMAIL": None}})


def test_wrong_passwords_are_throttled_and_logged(op, console):
    """Last: it locks 127.0.0.1 out of new logins (the sessions already open keep working)."""
    other = Client(console)
    for _ in range(5):
        assert_error(other.login("not the operator password"), 401, "invalid_credentials")
    r = other.login(PASSWORD)
    assert_error(r, 429, "login_throttled")
    assert int(r.headers["Retry-After"]) > 0
    assert op.call("GET", "session").status_code == 200
    log = console.stack.log_path("admin").read_text()
    assert log.count("admin_login_failed") >= 5 and "admin_login_throttled" in log
    assert "not the operator password" not in log
