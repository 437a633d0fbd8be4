"""The admin console in a real browser (headless Chromium): log in, visit every screen, mark an invalid
configuration value, and save screenshots to test-artifacts/browser/admin-<screen>.png."""
from __future__ import annotations

import pytest

import browser
from admin_dev import AdminConsole
from helpers import BIN, boot_stack, finish_stack

PASSWORD = "operator password 1234"


@pytest.fixture(scope="module")
def page(request):
    if browser.MISSING:
        pytest.skip(browser.MISSING)
    s = boot_stack("admin-web")
    console = b = None
    try:
        # The Status screen's hit ratio comes from the cdn-invalidator's metrics file.
        s.start_worker("cdn-invalidator", BIN / "tessera-cdn-invalidator")
        console = AdminConsole(s, BIN, PASSWORD).start()
        b = browser.Browser(console.url, name="admin", extra_args=("--ignore-certificate-errors",))
        yield b
    finally:
        try:
            if b is not None:
                b.quit()
            if console is not None:
                console.stop()
        finally:
            finish_stack(s, keep=request.session.testsfailed > 0)


def test_every_console_screen(page):
    page.open("/")
    page.find("#login-form")
    page.shot("admin-login")
    page.find("#password").send_keys("wrong password here")
    page.find("#login-form button").click()
    page.wait(lambda d: page.find("#login-error").text, what="login error")
    assert "Wrong operator password" in page.find("#login-error").text
    page.find("#password").send_keys(PASSWORD)
    page.find("#login-form button").click()

    page.wait(lambda d: page._visible("#units td"), what="status table")
    page.wait(lambda d: "tessera-maps-api" in page.find("#units").text, what="units listed")
    assert "active" in page.find("#units").text
    # Varnish's hit ratio, from the cdn-invalidator's metrics file: a percentage once Varnish saw a lookup
    # (not an error: the worker reads Varnish's counters).
    page.wait(lambda d: page.find("#cache-ratio").text, what="cache hit ratio")
    assert "%" in page.find("#cache-ratio").text or page.find("#cache-ratio").text == "no lookups yet", page.find("#cache-ratio").text
    page.js("document.getElementById('cache-ratio').scrollIntoView({block: 'center'})")
    page.shot("admin-status")

    page.find('nav a[data-screen="config"]').click()
    field = page.find('input[name="TESSERA_THREADS"]')
    field.clear()
    field.send_keys("0")
    page.find("#config-form button").click()
    page.wait(lambda d: page._visible('input[name="TESSERA_THREADS"].invalid'), what="invalid field marked")
    assert "between 1 and 1024" in page.find("#msg-TESSERA_THREADS").text
    page.js("document.querySelector('input[name=TESSERA_THREADS]').scrollIntoView({block: 'center'})")
    page.shot("admin-config")

    page.find('nav a[data-screen="backups"]').click()
    page.wait(lambda d: "Archives in" in page.find("#backup-info").text, what="backup info")
    page.shot("admin-backups")

    page.find('nav a[data-screen="support"]').click()
    page.find("#support-form")
    page.shot("admin-support")

    page.find('nav a[data-screen="tls"]').click()
    page.wait(lambda d: "subject" in page.find("#tls-current").text, what="current certificate")
    from test_admin_console import make_pair
    cert, _ = make_pair("mismatch.example")
    _, other_key = make_pair("other.example")
    page.find("#tls-cert").send_keys(cert)
    page.find("#tls-key").send_keys(other_key)
    page.find("#tls-form button[type=submit]").click()
    page.wait(lambda d: "does not belong" in page.find("#tls-report").text, what="mismatch refused")
    # ACME without its settings: refused with the fields to set, shown on the screen.
    assert "TESSERA_ACME_DOMAIN" in page.find("#acme-settings").text
    page.find("#acme-obtain").click()
    page.wait(lambda d: page._visible("#acme-reason"), what="ACME reason shown")
    assert "TESSERA_ACME_DOMAIN and TESSERA_ACME_EMAIL" in page.find("#acme-reason").text
    page.js("document.getElementById('acme-reason').scrollIntoView({block: 'end'})")
    page.shot("admin-tls")
