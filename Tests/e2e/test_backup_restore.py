"""`tessera backup` / `tessera restore` (issue 16, part 2) on real stacks.

A source stack gets a map, a warehouse table and an API token; an encrypted and a plain backup are
taken; then the map and table are deleted and the token revoked. Broken archives (corrupt, foreign,
wrong passphrase) are refused with the source left exactly as it was. The encrypted archive is
restored into a FRESH stack (its own PostgreSQL with nothing but `tessera migrate`), started the way
the `stack` fixture starts one, where the map, the rows and the token are back.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from helpers import (ADMIN_EMAIL, BIN, Api, assert_ok, boot_stack, finish_stack, metadata, signed_in_user, tessera,
                     warehouse)
from stack import API_PROGRAMS, Stack

PASSPHRASE = "backup passphrase 1234"
ROWS = 3


def backup(stack: Stack, out: Path, *extra: str) -> Path:
    r = tessera(stack, "backup", "--out", f"{out}/", "--config-dir", str(stack.root / "etc"), *extra)
    line = [x for x in r.stdout.splitlines() if x.startswith("backup written: ")]
    assert line, r.stdout
    return Path(line[0].removeprefix("backup written: "))


def state_of(stack: Stack) -> str:
    """What a refused restore must not change: metadata rows, warehouse tables, the secret key."""
    return "|".join([
        metadata(stack, "SELECT (SELECT count(*) FROM maps) || ',' || (SELECT count(*) FROM api_tokens) || ',' || "
                        "(SELECT count(*) FROM users) || ',' || (SELECT max(version) FROM schema_migrations)"),
        warehouse(stack, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"),
        hashlib.sha256(stack.secret_key_file.read_bytes()).hexdigest(),
        hashlib.sha256((stack.root / "etc" / "tessera.env").read_bytes()).hexdigest(),
    ])


@pytest.fixture(scope="module")
def world(request):
    """The source stack after the backups and the deletions, with what was backed up."""
    src = boot_stack("bk-src")
    out = Path(tempfile.mkdtemp(prefix="tessera-bk-out-", dir="/tmp"))
    try:
        (src.root / "etc").mkdir()
        (src.root / "etc" / "tessera.env").write_text(src.env_file.read_text())
        (src.root / "etc" / "tls").mkdir()
        (src.root / "etc" / "tls" / "note.txt").write_text("a file in a subdirectory of /etc/tessera\n")
        api = Api(src)
        admin = signed_in_user(api, src.admin_email, src.admin_password, "e2e-backup")
        warehouse(src, "CREATE TABLE public.bk_places (cartodb_id integer PRIMARY KEY, name text, geom geometry(Point, 4326));"
                       "INSERT INTO public.bk_places SELECT i, 'place ' || i, ST_SetSRID(ST_MakePoint(i, i), 4326) "
                       f"FROM generate_series(1, {ROWS}) i;")
        # An extension the owner made itself (as `tessera lds load-places` does) and an index that needs it:
        # the restore must bring the extension back before the index, although DROP OWNED removed it.
        warehouse(src, "CREATE EXTENSION IF NOT EXISTS unaccent;"
                       "CREATE FUNCTION public.bk_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE "
                       "AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, t)) $$;"
                       "CREATE INDEX bk_places_fold ON public.bk_places (public.bk_fold(name));")
        created = assert_ok(api.post("/api/v3/workspace/maps", token=admin.token, json_body={
            "title": "Backed up map", "datasets": [{"id": "d1", "type": "table", "source": "public.bk_places",
                                                    "connectionName": "carto_dw", "geoColumn": "geom"}]}), 201)
        token = assert_ok(api.post("/api/v3/tokens", token=admin.token, json_body={
            "grants": [{"connection_name": "carto_dw", "source": "*"}], "allowed_apis": ["sql", "maps"]}), 201)
        assert_ok(api.sql("SELECT count(*) AS n FROM public.bk_places", token["token"]))

        pf = out / "passphrase"
        pf.write_text(PASSPHRASE + "\n")
        encrypted = backup(src, out, "--passphrase-file", str(pf))
        plain = backup(src, out)

        # After the backup: the map and the table are deleted, the token revoked.
        assert api.delete(f"/api/v3/workspace/maps/{created['id']}", token=admin.token).status == 204
        warehouse(src, "DROP TABLE public.bk_places")
        assert api.delete(f"/api/v3/tokens/{token['id']}", token=admin.token).status == 204
        assert api.sql("SELECT 1", token["token"]).status == 401
        yield dict(src=src, api=api, admin=admin, map=created, token=token["token"], out=out, pf=pf,
                   encrypted=encrypted, plain=plain)
    finally:
        keep = bool(request.session.testsfailed)
        finish_stack(src, keep)
        if not keep:
            shutil.rmtree(out, ignore_errors=True)


def refused(stack: Stack, archive: Path, *extra: str) -> str:
    before = state_of(stack)
    r = tessera(stack, "restore", str(archive), "--config-dir", str(stack.root / "etc"), *extra, check=False)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "restore failed" in r.stderr and "Traceback" not in r.stderr
    assert state_of(stack) == before
    return r.stderr


def test_archives_are_single_files_with_manifest_and_checksums(world):
    assert world["encrypted"].name.endswith(".tar.enc") and world["plain"].name.endswith(".tar")
    assert sorted(p.name for p in world["out"].iterdir()) == sorted(["passphrase", world["encrypted"].name, world["plain"].name])
    # Group-readable for the admin console's downloads (group tessera), never for others.
    assert oct(world["encrypted"].stat().st_mode & 0o777) == "0o640"
    with tarfile.open(world["plain"]) as t:
        names = {n.removeprefix("./") for n in t.getnames()}
        assert {"manifest.json", "SHA256SUMS", "roles.json", "secret.key", "etc/tessera.env", "etc/tls/note.txt",
                "db/metadata-tessera.dump", "db/warehouse-carto_dw.dump"} <= names
        sums = t.extractfile("./SHA256SUMS").read().decode()
        dump = t.extractfile("./db/warehouse-carto_dw.dump").read()
    assert f"{hashlib.sha256(dump).hexdigest()}  db/warehouse-carto_dw.dump" in sums
    # The passphrase protects the content: no table name or secret in clear in the encrypted file.
    blob = world["encrypted"].read_bytes()
    assert b"bk_places" not in blob and world["src"].secret_key_file.read_bytes().strip() not in blob


def test_a_corrupt_archive_is_refused_before_anything_is_touched(world):
    with tarfile.open(world["plain"]) as t:
        member = t.getmember("./db/warehouse-carto_dw.dump")
    data = bytearray(world["plain"].read_bytes())
    data[member.offset_data + member.size // 2] ^= 0xFF
    corrupt = world["out"] / "corrupt.tar"
    corrupt.write_bytes(bytes(data))
    assert "checksum mismatch for db/warehouse-carto_dw.dump" in refused(world["src"], corrupt)


def test_a_foreign_or_truncated_archive_is_refused(world):
    foreign = world["out"] / "foreign.tar"
    with tarfile.open(foreign, "w") as t:
        t.add(world["src"].env_file, arcname="tessera.env")
    assert "not a Tessera backup" in refused(world["src"], foreign)
    truncated = world["out"] / "truncated.tar.enc"
    truncated.write_bytes(world["encrypted"].read_bytes()[: world["encrypted"].stat().st_size // 2])
    assert "truncated" in refused(world["src"], truncated, "--passphrase-file", str(world["pf"]))


def test_a_wrong_or_missing_passphrase_is_refused(world):
    wrong = world["out"] / "wrong-passphrase"
    wrong.write_text("not the passphrase\n")
    assert "wrong passphrase" in refused(world["src"], world["encrypted"], "--passphrase-file", str(wrong))
    assert "encrypted" in refused(world["src"], world["encrypted"])


@pytest.mark.parametrize("stage", ["dump", "archive"])
def test_a_full_disk_gives_a_clear_error_and_no_partial_archive(world, stage):
    """The backup target is a small tmpfs of its own. "dump": too small for the first pg_dump.
    "archive": room for the work directory's files (what the plain archive holds, each rounded up to
    tmpfs pages, plus two pages) but not for the archive tar then writes beside them under its
    temporary name, which is where a partial archive could be left. Either way: exit 1, the disk
    named as full, nothing left in the target."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (tests run as root here and in CI)")
    size = 16 << 10
    if stage == "archive":
        with tarfile.open(world["plain"]) as t:
            size = sum(-(-m.size // 4096) * 4096 for m in t.getmembers() if m.isfile()) + 2 * 4096
    mnt = Path(tempfile.mkdtemp(prefix="tessera-bk-full-", dir="/tmp"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        r = tessera(world["src"], "backup", "--out", f"{mnt}/", "--config-dir", str(world["src"].root / "etc"), check=False)
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert f"backup failed: the disk is full (No space left on device) in {mnt}" in r.stderr, r.stderr
        assert ("pg_dump of" if stage == "dump" else "tar failed") in r.stderr, r.stderr
        assert "backup written" not in r.stdout
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        mnt.rmdir()


def test_leftovers_of_a_killed_backup_are_removed_and_a_second_backup_at_once_is_refused(world):
    """A backup killed outright (SIGKILL, power loss) leaves its work directory and partial archive; the
    next one, holding the directory's lock, removes exactly those and nothing else. While one backup
    holds the lock another is refused with a clear message, and writes nothing."""
    out = Path(tempfile.mkdtemp(prefix="tessera-bk-left-", dir="/tmp"))
    try:
        (out / ".tessera-backup-work-dead01").mkdir()
        (out / ".tessera-backup-work-dead01" / "metadata.dump").write_bytes(b"x" * 4096)
        (out / ".tessera-backup-20260101T000000Z.tar.partial").write_bytes(b"half an archive")
        (out / "operator-notes.txt").write_text("not ours\n")
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            r = tessera(world["src"], "backup", "--out", f"{out}/", "--config-dir", str(world["src"].root / "etc"), check=False)
            assert r.returncode == 1 and f"another backup is running in {out}" in r.stderr, (r.stdout, r.stderr)
            assert (out / ".tessera-backup-work-dead01").exists(), "a refused backup must not touch the directory"
        finally:
            os.close(fd)
        written = backup(world["src"], out)
        names = sorted(p.name for p in out.iterdir())
        assert names == sorted(["operator-notes.txt", written.name]), names
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_restore_into_a_fresh_stack_brings_everything_back(world, request):
    fresh = Stack(Path(tempfile.mkdtemp(prefix="tessera-bk-new-", dir="/tmp")))
    try:
        fresh.start_postgres()
        fresh.start_redis()
        tessera(fresh, "migrate")
        assert metadata(fresh, "SELECT count(*) FROM users") == "0"
        r = tessera(fresh, "restore", str(world["encrypted"]), "--passphrase-file", str(world["pf"]),
                    "--config-dir", str(fresh.root / "etc"))
        assert "archive verified" in r.stdout and "embedded warehouse connections re-pointed: 1" in r.stdout, r.stdout
        assert "schema is up to date" in r.stdout, r.stdout
        assert fresh.secret_key_file.read_bytes() == world["src"].secret_key_file.read_bytes()
        assert (fresh.root / "etc" / "tessera.env").read_text() == (world["src"].root / "etc" / "tessera.env").read_text()
        assert (fresh.root / "etc" / "tls" / "note.txt").exists()

        for name in ("workspace-api", "maps-api"):
            fresh.start_api(name, BIN / API_PROGRAMS[name])
        fresh.start_nginx()
        api = Api(fresh)
        # The token was revoked on the source after the backup: here, restored, it verifies again.
        rows = assert_ok(api.sql("SELECT count(*) AS n FROM public.bk_places", world["token"]))["rows"]
        assert rows == [{"n": ROWS}]
        assert warehouse(fresh, "SELECT public.bk_fold('Ålesund Café')") == "alesund cafe"
        admin = signed_in_user(api, ADMIN_EMAIL, world["src"].admin_password, "e2e-restored")
        m = assert_ok(api.get(f"/api/v3/workspace/maps/{world['map']['id']}", token=admin.token))
        assert m["title"] == "Backed up map" and m["datasets"][0]["source"] == "public.bk_places"
        # And the restored stack still refuses a token it never issued.
        assert api.sql("SELECT 1", world["token"][:-2] + "xx").status == 401
    finally:
        finish_stack(fresh, bool(request.session.testsfailed))


def test_after_a_restore_roles_configuration_and_carto_dw_agree_with_a_passfile(world, request):
    """As on a packaged install: TESSERA_WAREHOUSE_URL names a passfile instead of holding the password.
    After the restore the role keeps the password that passfile holds (the archive's is another
    install's), `tessera backup` reaches carto_dw with it, and the restored carto_dw connection
    record logs in with it too (a restored token queries the restored table)."""
    fresh = Stack(Path(tempfile.mkdtemp(prefix="tessera-bk-pf-", dir="/tmp")))
    try:
        fresh.start_postgres()
        fresh.start_redis()
        passfile = fresh.root / "carto_dw.pgpass"
        passfile.write_text(f"127.0.0.1:{fresh.pg_port}:carto_dw:carto_dw:{fresh.pg_passwords['carto_dw']}\n")
        passfile.chmod(0o600)
        url = fresh.dsn("carto_dw", "carto_dw", tcp=True) + f" passfile={passfile}"
        assert "password=" not in url
        env = {**os.environ, **fresh.env, "TESSERA_WAREHOUSE_URL": url}

        def cli(*args: str) -> subprocess.CompletedProcess:
            r = subprocess.run([str(BIN / "tessera"), *args], capture_output=True, text=True, env=env, timeout=300)
            assert r.returncode == 0, (args[0], r.stdout, r.stderr)
            return r

        cli("migrate")
        r = cli("restore", str(world["plain"]), "--config-dir", str(fresh.root / "etc"))
        assert "embedded warehouse connections re-pointed: 1" in r.stdout, r.stdout
        assert "updated connection carto_dw" in r.stdout, r.stdout
        # The role's password is still the one the passfile holds (psql over TCP, scram).
        assert fresh.psql("SELECT current_user", dbname="carto_dw", user="carto_dw", tcp=True) == "carto_dw"
        r = cli("backup", "--out", f"{fresh.root}/bk/", "--config-dir", str(fresh.root / "etc"))
        assert "backup written: " in r.stdout, r.stdout

        fresh.start_api("maps-api", BIN / API_PROGRAMS["maps-api"], env={"TESSERA_WAREHOUSE_URL": url})
        fresh.start_nginx()
        rows = assert_ok(Api(fresh).sql("SELECT count(*) AS n FROM public.bk_places", world["token"]))["rows"]
        assert rows == [{"n": ROWS}]
    finally:
        finish_stack(fresh, bool(request.session.testsfailed))


@pytest.fixture(scope="module")
def previous_tessera():
    """This build's CLI without its newest migration: the previous Tessera version, as build-debs'
    `previous` mode makes it (SwiftPM resource bundles are found beside the executable)."""
    d = Path(tempfile.mkdtemp(prefix="tessera-bk-prev-", dir="/tmp"))
    subprocess.run(["cp", "-a", str(BIN / "tessera"), *map(str, BIN.glob("*.resources")), str(d)], check=True)
    migrations = sorted((d / "Tessera_Metadata.resources" / "migrations").glob("*.sql"))
    migrations[-1].unlink()
    yield d / "tessera", migrations[-1].stem
    subprocess.run(["rm", "-rf", str(d)], check=False)


def run_cli(binary: Path, stack: Stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, env={**os.environ, **stack.env}, timeout=300)


def test_an_older_backup_is_upgraded_and_a_newer_one_refused(previous_tessera, request):
    """A restore onto a newer schema: the previous version's archive (its schema one migration behind)
    restored into this version's fresh install gets the migration applied, and its user, token, map
    and warehouse table are back, the token verifying through the APIs of this version."""
    old_binary, newest = previous_tessera
    stacks = [Stack(Path(tempfile.mkdtemp(prefix=f"tessera-bk-{tag}-", dir="/tmp"))) for tag in ("old", "up")]
    old, upgraded = stacks
    try:
        for s in stacks:
            s.start_postgres()
            s.start_redis()
            (s.root / "etc").mkdir()
            (s.root / "etc" / "tessera.env").write_text(s.env_file.read_text())
        assert run_cli(old_binary, old, "migrate").returncode == 0
        r = run_cli(old_binary, old, "create-admin", "--email", "old@example.com", "--password", "old-Version-pass-1")
        assert r.returncode == 0, r.stderr
        r = run_cli(old_binary, old, "tokens", "create", "--email", "old@example.com", "--connection", "carto_dw",
                    "--source", "*", "--apis", "sql,maps")
        assert r.returncode == 0, r.stderr
        old_token = r.stdout.strip().splitlines()[-1]
        warehouse(old, "CREATE TABLE public.old_places AS SELECT i AS cartodb_id, 'old ' || i AS name "
                       f"FROM generate_series(1, {ROWS}) i")
        # The previous version's metadata as its own CLI left it, plus a map row (its APIs are not built here).
        metadata(old, "INSERT INTO maps (id, account_id, owner_id, title, kepler_map_config) "
                      "SELECT 'oldschemamap', account_id, id, 'Map of the previous version', '{}' FROM users")
        r = run_cli(old_binary, old, "backup", "--out", f"{old.root}/bk/", "--config-dir", str(old.root / "etc"))
        assert r.returncode == 0, r.stderr
        [older] = (old.root / "bk").glob("tessera-backup-*.tar")

        # This version's fresh install takes the previous version's archive and migrates it.
        tessera(upgraded, "migrate")
        r = tessera(upgraded, "restore", str(older), "--config-dir", str(upgraded.root / "etc"))
        assert f"migrations applied: {newest}" in r.stdout, r.stdout
        assert metadata(upgraded, "SELECT email FROM users") == "old@example.com"
        assert metadata(upgraded, f"SELECT count(*) FROM schema_migrations WHERE name = '{newest}'") == "1"
        for name in ("workspace-api", "maps-api"):
            upgraded.start_api(name, BIN / API_PROGRAMS[name])
        upgraded.start_nginx()
        api = Api(upgraded)
        rows = assert_ok(api.sql("SELECT count(*) AS n FROM public.old_places", old_token))["rows"]
        assert rows == [{"n": ROWS}]
        user = signed_in_user(api, "old@example.com", "old-Version-pass-1", "e2e-upgraded")
        m = assert_ok(api.get("/api/v3/workspace/maps/oldschemamap", token=user.token))
        assert m["title"] == "Map of the previous version"

        # The previous version refuses this version's archive, before touching anything.
        newer = backup(upgraded, upgraded.root / "bk")
        before = state_of(old)
        r = run_cli(old_binary, old, "restore", str(newer), "--config-dir", str(old.root / "etc"))
        assert r.returncode == 3 and "from a newer Tessera" in r.stderr, r.stderr
        assert state_of(old) == before
    finally:
        for s in stacks:
            finish_stack(s, bool(request.session.testsfailed))
