"""End-to-end fixtures built on Tests/harness/stack.py.

Fixtures (all session-scoped; each owns one Stack in its own /tmp directory):
  router    nginx alone, with fake FastCGI echo backends (Tests/harness/fake_fcgi.py) on the
            workspace-api, maps-api and import-api sockets; lds-api deliberately has none, so
            its routes show nginx's own 502. Needs no Swift binary and no database.
  services  PostgreSQL (+PostGIS) and Redis only.
  stack     services + `tessera migrate` + an admin + the real APIs + nginx.

Environment (no TESSERA_ prefix on purpose: the Swift config loader rejects unknown TESSERA_* keys):
  STACK_BIN               directory of the Swift executables (default .build/release)
  STACK_REQUIRE_BINARIES  1 = a missing executable fails the `stack` fixture instead of skipping
  STACK_KEEP              1 = keep the state directories (they are always kept when a test failed)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "harness"))

from fake_fcgi import FakeFastCGI  # noqa: E402
from stack import ADMIN_EMAIL, API_PROGRAMS, Stack, StackError  # noqa: E402

BIN = Path(os.environ.get("STACK_BIN", REPO / ".build" / "release")).resolve()
REQUIRE_BINARIES = os.environ.get("STACK_REQUIRE_BINARIES") == "1"
# The APIs the `stack` fixture starts (import-api and lds-api join when they exist).
STACK_APIS = ("workspace-api", "maps-api")


def _new_root(tag: str) -> Path:
    # Short path under /tmp: unix socket paths are limited to 107 bytes, and pytest's own
    # tmp_path is mode 0700, which the postgres user and nginx workers cannot enter.
    return Path(tempfile.mkdtemp(prefix=f"tessera-{tag}-", dir="/tmp"))


def _finish(request: pytest.FixtureRequest, stack: Stack) -> None:
    try:
        stack.stop_all()
    finally:
        if request.session.testsfailed or os.environ.get("STACK_KEEP") == "1":
            print(f"\n[e2e] state and logs kept in {stack.root}", file=sys.stderr)
        else:
            shutil.rmtree(stack.root, ignore_errors=True)


@pytest.fixture(scope="session")
def router(request):
    stack = Stack(_new_root("router"))
    fakes = {}
    try:
        for name in ("workspace-api", "maps-api", "import-api"):
            fakes[name] = FakeFastCGI(stack.api_socket(name), name).start()
        stack.start_nginx()
        stack.fakes = fakes
        yield stack
    finally:
        for fake in fakes.values():
            fake.stop()
        _finish(request, stack)


@pytest.fixture(scope="session")
def services(request):
    stack = Stack(_new_root("e2e"))
    try:
        stack.start_postgres()
        stack.start_redis()
        yield stack
    finally:
        _finish(request, stack)


def _tool(stack: Stack, *args: str) -> str:
    import subprocess

    r = subprocess.run([str(BIN / "tessera"), *args], capture_output=True, text=True,
                       env={**os.environ, **stack.env}, timeout=300)
    if r.returncode != 0:
        raise StackError(f"tessera {args[0]} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


@pytest.fixture(scope="session")
def stack(request):
    """The whole stack with the real Swift programs.

    TEMPORARY: while the Swift executables are being written, a missing binary makes this
    fixture skip (with the reason below) unless STACK_REQUIRE_BINARIES=1, which `make test`
    sets because it builds first. Remove the skip branch once the executables always build.
    """
    needed = [BIN / "tessera"] + [BIN / API_PROGRAMS[n] for n in STACK_APIS]
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        msg = (f"TEMPORARY skip: Swift executables not built in {BIN}: {', '.join(missing)} "
               f"(run `swift build -c release`; with STACK_REQUIRE_BINARIES=1 this fails instead)")
        if REQUIRE_BINARIES:
            pytest.fail(msg.replace("TEMPORARY skip: ", ""))
        pytest.skip(msg)
    services = request.getfixturevalue("services")
    _tool(services, "migrate")
    password = "e2e-" + os.urandom(12).hex()
    _tool(services, "create-admin", "--email", ADMIN_EMAIL, "--password", password)
    services.admin_email = ADMIN_EMAIL
    services.admin_password = password
    services.tessera = lambda *args: _tool(services, *args)
    for name, program in API_PROGRAMS.items():
        if name in STACK_APIS or (BIN / program).is_file():
            services.start_api(name, BIN / program)
    services.start_nginx()
    return services


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the component log tails of any stack a failing test used."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    seen = set()
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, Stack) and id(value) not in seen:
            seen.add(id(value))
            report.sections.append((f"stack logs ({value.root})", value.log_report(30)))
