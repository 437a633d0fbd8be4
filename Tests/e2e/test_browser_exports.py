"""The Export menus in a real browser (headless Chromium) against the whole stack (issue 14): the SQL
console exports a query as GeoPackage and the data explorer a table as CSV, each showing progress
until the signed download link appears, which the signed-in page can fetch. Screenshots:
test-artifacts/browser/workspace-export.png and workspace-export-explorer.png."""
from __future__ import annotations

import os

import pytest

import browser as B


@pytest.fixture(scope="module")
def chrome_ok():
    if B.MISSING:
        if os.environ.get("STACK_REQUIRE_BINARIES") == "1":
            pytest.fail(B.MISSING + " (make deps installs chromium, chromium-driver and python3-selenium)")
        pytest.skip(B.MISSING)


def fetched(b, url) -> list:
    """Status, type and size of a same-origin GET made by the page itself (its cookie, no CSRF header)."""
    return b.js("return fetch(arguments[0]).then(async r => [r.status, r.headers.get('content-type'), (await r.arrayBuffer()).byteLength])", url)


def test_sql_console_and_explorer_export(stack, chrome_ok):
    b = B.Browser(f"http://127.0.0.1:{stack.http_port}", B.DESKTOP, "exports")
    try:
        b.open("/acc/#/login?next=%2F%23%2Fsql")
        b.find("input[type=email]").send_keys(stack.admin_email)
        b.find("input[type=password]").send_keys(stack.admin_password, B.Keys.ENTER)
        b.find(".CodeMirror")  # the SQL editor (CodeMirror over #sql-editor)
        b.js("document.querySelector('.CodeMirror').CodeMirror.setValue(arguments[0])", "SELECT name, geom FROM public.world_countries")
        b.find("#sql-run").click()
        b.find("#sql-stats")
        B.Select(b.find("#sql-export-format")).select_by_value("gpkg")
        b.find("#sql-export").click()
        link = b.find("#sql-export-download", timeout=60)
        assert "Export ready" in b.find("#sql-export-status").text
        b.shot("workspace-export")
        status, ctype, size = fetched(b, link.get_attribute("href"))
        assert status == 200 and ctype == "application/geopackage+sqlite3" and size > 10_000, (status, ctype, size)

        b.open("/#/explorer/carto_dw/public.world_countries")
        B.Select(b.find("#table-export-format")).select_by_value("csv")
        b.find("#table-export").click()
        link = b.find("#table-export-download", timeout=60)
        b.shot("workspace-export-explorer")
        status, ctype, size = fetched(b, link.get_attribute("href"))
        assert status == 200 and ctype.startswith("text/csv") and size > 1000, (status, ctype, size)
    finally:
        b.quit()
