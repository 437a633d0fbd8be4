"""nginx's static side of the web apps (no backend needed): Debian's Leaflet under /vendor/leaflet/,
the public map viewer at /map/{id} (the one frameable page, with the other security headers kept),
and the app modules served as JavaScript."""

from __future__ import annotations

from test_router import fetch


def test_leaflet_from_debian(router):
    r = fetch(router, "/vendor/leaflet/leaflet.esm.js")
    assert r.status == 200, r.status
    assert r.one("Content-Type").startswith("application/javascript")
    assert b"GridLayer" in r.body
    assert fetch(router, "/vendor/leaflet/leaflet.css").status == 200
    assert fetch(router, "/vendor/leaflet/../../../etc/passwd").status in (400, 404)


def test_public_viewer_page_may_be_framed(router):
    r = fetch(router, "/map/AbC_12-x")
    assert r.status == 200
    assert b"/js/viewer.js" in r.body
    assert r.one("X-Frame-Options") is None
    csp = r.one("Content-Security-Policy")
    assert "frame-ancestors" not in csp and "object-src 'none'" in csp
    assert r.one("X-Content-Type-Options") == "nosniff"
    assert r.one("Referrer-Policy") == "strict-origin-when-cross-origin"
    assert r.one("X-Request-Id")
    # Only map ids: anything else under /map/ is not the viewer.
    assert fetch(router, "/map/a/b").one("X-Frame-Options") == "DENY"


def test_app_modules_are_javascript(router):
    for path in ("/js/app.js", "/js/mvt.js", "/acc/accounts.js"):
        r = fetch(router, path)
        assert r.status == 200, path
        assert r.one("Content-Type").startswith("application/javascript"), (path, r.one("Content-Type"))
        assert r.one("X-Frame-Options") == "DENY"


def test_codemirror_from_debian(router):
    """The SQL editor's CodeMirror (libjs-codemirror): the core, its sql mode and the hint add-ons."""
    for path, needle in (("/vendor/codemirror/lib/codemirror.js", b"CodeMirror"),
                         ("/vendor/codemirror/mode/sql/sql.js", b"text/x-pgsql"),
                         ("/vendor/codemirror/addon/hint/show-hint.js", b"showHint"),
                         ("/vendor/codemirror/addon/hint/sql-hint.js", b"sql")):
        r = fetch(router, path)
        assert r.status == 200, (path, r.status)
        assert r.one("Content-Type").startswith("application/javascript"), path
        assert needle in r.body, path
    assert fetch(router, "/vendor/codemirror/lib/codemirror.css").status == 200
    assert fetch(router, "/vendor/codemirror/../../../etc/passwd").status in (400, 404)
