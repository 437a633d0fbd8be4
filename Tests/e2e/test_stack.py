"""The harness itself (PostgreSQL, Redis, generated config), and a first smoke test of the real stack."""

from __future__ import annotations

import http.client
import json
import stat


def test_databases_roles_and_postgis(services):
    roles = services.psql("SELECT rolname || ':' || rolsuper FROM pg_roles "
                          "WHERE rolname IN ('tessera', 'carto_dw') ORDER BY 1").split()
    assert roles == ["carto_dw:false", "tessera:false"]
    owners = services.psql("SELECT datname || ':' || pg_get_userbyid(datdba) FROM pg_database "
                           "WHERE datname IN ('tessera', 'carto_dw') ORDER BY 1").split()
    assert owners == ["carto_dw:carto_dw", "tessera:tessera"]
    assert services.psql("SELECT postgis_lib_version()", dbname="carto_dw", user="carto_dw")
    # TCP on loopback, as a 'remote' connection and pgbench use it
    assert services.psql("SELECT inet_server_addr()", dbname="tessera", user="tessera", tcp=True) == "127.0.0.1"


def test_postgres_restart_keeps_port(services):
    port = services.pg_port
    services.restart_postgres("immediate")
    assert services.pg_port == port
    assert services.psql("SELECT 1", dbname="tessera", user="tessera") == "1"


def test_redis_on_unix_socket_only(services):
    assert services.redis_command("PING") == b"+PONG\r\n"
    assert b"port" in services.redis_command("CONFIG", "GET", "port")
    assert b"\r\n0\r\n" in services.redis_command("CONFIG", "GET", "port")


def test_env_and_secret(services):
    env = services.env
    assert env["TESSERA_REDIS_URL"] == f"unix:{services.redis_socket}"
    assert env["TESSERA_DATABASE_URL"] == services.metadata_dsn
    assert env["TESSERA_SIGNUP"] == "invite"
    key = services.secret_key_file
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key.read_text())) == 32
    lines = dict(l.split("=", 1) for l in services.env_file.read_text().splitlines() if l and not l.startswith("#"))
    assert lines == {k: v for k, v in env.items() if k != "TESSERA_CONFIG_FILE"}


def test_sql_api_without_token_is_401_json(stack):
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=30)
    try:
        conn.request("GET", "/api/v3/sql/carto_dw/query?q=select%201")
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    assert r.status == 401
    assert r.getheader("Content-Type", "").startswith("application/json")
    assert r.getheader("Access-Control-Allow-Origin")
    assert isinstance(json.loads(body)["error"], str)
