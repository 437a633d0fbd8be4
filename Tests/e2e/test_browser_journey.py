"""The workspace in a real browser (headless Chromium), against the whole stack: one user journey
from an invitation to a public map, asserting on the DOM and on the pixels the map renderer drew.
Screenshots go to test-artifacts/browser/ (builder: journey-06-builder.png, public map:
journey-08-public-map.png, plus the 390×844 `-phone` variants)."""

from __future__ import annotations

import os
import re
import time
import urllib.parse

import pytest

import browser as B
import helpers as h

# Three clusters of points (Paris, Berlin, Rome), one per category, far enough apart to be probed
# on their own at the map's initial zoom.
CLUSTERS = {"alpha": (2.35, 48.85, 12), "beta": (13.4, 52.5, 8), "gamma": (12.5, 41.9, 5)}


def write_csv(path) -> None:
    lines = ["name,category,value,longitude,latitude"]
    n = 0
    for cat, (lon, lat, count) in CLUSTERS.items():
        for i in range(count):
            n += 1
            # The first point of each cluster sits exactly on the probe location.
            dx, dy = (0.0, 0.0) if i == 0 else (((i * 37) % 11 - 5) * 0.15, ((i * 53) % 7 - 3) * 0.15)
            lines.append(f"place {n},{cat},{n * 10},{lon + dx:.4f},{lat + dy:.4f}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def chrome_ok():
    if B.MISSING:
        if os.environ.get("STACK_REQUIRE_BINARIES") == "1":
            pytest.fail(B.MISSING + " (make deps installs chromium, chromium-driver and python3-selenium)")
        pytest.skip(B.MISSING)


def drawn(px) -> bool:
    return px is not None and px[3] > 60


def test_invitation_to_public_map(stack, chrome_ok, tmp_path, dw_user):
    base = f"http://127.0.0.1:{stack.http_port}"
    email = f"{h.unique('maker')}@example.org"
    password = "journey-" + os.urandom(6).hex()
    table = h.unique("journey_places")
    conn_name = h.unique("journey_conn").replace("_", "-")

    b = B.Browser(base, B.DESKTOP, "journey")
    try:
        # ---- 0. an admin invites the user in Settings, then signs out
        b.open("/acc/#/login?next=%2F%23%2Fsettings")
        b.find("input[type=email]").send_keys(stack.admin_email)
        b.find("input[type=password]").send_keys(stack.admin_password, B.Keys.ENTER)
        b.find("#invite-send")
        b.find("form[aria-label='Invite someone'] input[type=email]").send_keys(email)
        B.Select(b.find("form[aria-label='Invite someone'] select")).select_by_value("editor")
        b.find("#invite-send").click()
        link = urllib.parse.urlsplit(b.find("#invite-link").get_attribute("value"))
        assert email in b.find("table[aria-label='Pending invitations']").text
        b.shot("journey-00-invite")
        b.find(".sidebar .me a[href='/acc/#/logout']").click()
        b.find("p.notice")

        # ---- 1. sign up by invitation, with the keyboard only
        b.open(f"{link.path}#{link.fragment}")
        b.find("h1")
        assert "Join" in b.find("h1").text
        pw = b.find("input[type=password]")
        assert b.active() == pw, "the first field has focus"
        assert b.focus_ring().startswith("solid"), f"focus is visible: {b.focus_ring()}"
        pw.send_keys("short")
        pw.send_keys(B.Keys.TAB)
        assert "solid" in b.focus_ring(), "tabbing shows the focus ring"
        b.active().send_keys("short", B.Keys.ENTER)
        err = b.find(".field-error:not([hidden])")
        assert "at least 12" in err.text, "a too-short password is refused next to its field"
        b.shot("journey-01-accept-error")
        for el in b.all("input[type=password]"):
            el.clear()
            el.send_keys(password)
        b.active().send_keys(B.Keys.ENTER)
        b.wait(lambda d: "/acc/" not in d.current_url, 20, "the workspace after accepting")
        b.find("nav.nav a[aria-current=page]")
        assert email in b.find(".sidebar .me").text

        # ---- 2. add a connection (the stack's own warehouse, under another name)
        b.open("/#/connections")
        b.find("button.primary").click()
        form = b.find("form[aria-label='New connection']")
        values = {"Name": conn_name, "Host": "127.0.0.1", "Port": str(stack.pg_port),
                  "Database": "carto_dw", "User": dw_user["user"], "Password": dw_user["password"]}
        for label, value in values.items():
            field = form.find_element(B.By.XPATH, f".//label[text()='{label}']/following-sibling::*[1]")
            field.clear()
            field.send_keys(value)
        form.find_element(B.By.XPATH, ".//button[text()='Test connection']").click()
        b.wait(lambda d: "Connected" in form.text, 20, "the connection test")
        form.find_element(B.By.CSS_SELECTOR, "button[type=submit]").click()
        b.wait(lambda d: conn_name in b.find("table[aria-label=Connections]").text, 20, "the new connection in the list")
        b.shot("journey-02-connections")

        # ---- 3. import a CSV into it, watching the progress
        csv = tmp_path / f"{table}.csv"
        write_csv(csv)
        b.open("/#/imports")
        B.Select(b.find("form[aria-label='New import'] select")).select_by_visible_text(conn_name)
        b.find("input[type=file]").send_keys(str(csv))
        b.find("#import-preview").click()
        card = b.find("#import-preview-card", timeout=60)
        assert "25 rows" in card.text and "Point" in card.text, card.text
        b.find("#import-start").click()
        done = b.find("#import-done", timeout=90)
        assert table in done.text and "25 rows" in done.text, done.text
        b.shot("journey-03-import-done")

        # ---- 4. open it in the data explorer
        b.find("#import-open").click()
        b.wait(lambda d: table in b.find("#table-title").text, 20, "the table in the explorer")
        cols = b.find("table[aria-label=Columns]").text
        for c in ("name", "category", "value"):
            assert c in cols
        b.wait(lambda d: len(b.all("table[aria-label=Rows] tbody tr")) == 25, 20, "the row preview")
        b.tiles_done("table-map")
        b.wait(lambda d: drawn(b.pixel("table-map", "preview", 48.85, 2.35)), 20, "preview points drawn")
        b.shot_both_sizes("journey-04-explorer")

        # ---- 5. build a map: colour by category, a category widget
        b.find("#create-map").click()
        b.find("#builder-map")
        b.wait(lambda d: "/#/maps/" in d.current_url, 20, "the builder")
        map_id = b.driver.current_url.rsplit("/", 1)[-1]
        b.find("#layer-list .layer-item")
        B.Select(b.find("#color-by")).select_by_value("category")
        b.wait(lambda d: "alpha" in b.find(".legend").text, 20, "the category legend")
        b.tiles_done("builder-map")
        colours = {cat: b.pixel("builder-map", "l1", lat, lon) for cat, (lon, lat, _) in CLUSTERS.items()}
        for cat, px in colours.items():
            assert drawn(px), f"{cat} drawn: {px}"
        assert colours["alpha"][:3] != colours["beta"][:3], f"categories get different colours: {colours}"

        b.find("#style-editor input[type=checkbox][value=name]").click()  # tooltips show the name
        b.find("#add-widget").click()
        dlg = b.find("dialog.modal")
        B.Select(dlg.find_element(B.By.XPATH, ".//label[text()='Type']/following-sibling::select")).select_by_value("category")
        B.Select(dlg.find_element(B.By.XPATH, ".//label[text()='Column']/following-sibling::select")).select_by_value("category")
        dlg.find_element(B.By.XPATH, ".//button[text()='Add widget']").click()
        alpha = b.find(".widget[data-type=category] button.cat[data-category=alpha]")
        assert "12" in alpha.text

        # ---- 6. click a category: the layer keeps only it
        alpha.click()
        b.wait(lambda d: b.find(".widget[data-type=category] button.cat[data-category=alpha]").get_attribute("aria-pressed") == "true",
               20, "the category selected")
        b.tiles_done("builder-map")
        b.wait(lambda d: not drawn(b.pixel("builder-map", "l1", 52.5, 13.4)), 20, "beta filtered out")
        assert drawn(b.pixel("builder-map", "l1", 48.85, 2.35)), "alpha still drawn"
        assert not drawn(b.pixel("builder-map", "l1", 41.9, 12.5)), "gamma filtered out"
        b.wait(lambda d: b.find("#save-state").text == "All changes saved", 20, "autosave")
        b.js("document.querySelector('.builder .panel').scrollTop = 0")
        b.shot_both_sizes("journey-06-builder")

        # ---- 7. share it
        b.find("#share-button").click()
        b.find("#public-toggle").click()
        public = b.find("#public-link").get_attribute("value")
        assert map_id in public
        assert map_id in b.find("#embed-code").get_attribute("value")
        b.shot("journey-07-share")
        b.find("dialog.modal .actions button").click()
        assert b.find("#privacy-badge").text == "Public"
    finally:
        b.quit()

    # ---- 8. the public link in a fresh browser: no cookies, same layer drawn
    path = urllib.parse.urlsplit(public).path
    for size, tag in ((B.DESKTOP, "public-map"), (B.PHONE, "public-map-phone")):
        v = B.Browser(base, size, tag)
        try:
            v.open(path)
            assert v.find("#public-title").text.endswith("map")
            assert v.driver.get_cookies() == [], "the viewer carries no cookies"
            v.tiles_done("public-map")
            # The category filter is saved with the map (issue 13): the public map opens with it applied.
            v.wait(lambda d: drawn(v.pixel("public-map", "l1", 48.85, 2.35)), 20, "alpha drawn in the public map")
            assert v.js("return JSON.stringify(document.getElementById('public-map').mapview.filters)").count('"alpha"') == 1
            # The same category colour as in the builder: the legend colour nearest to the pixel (how much
            # translucent symbols overlap, and so blend, depends on the zoom each view opened at).
            v.wait(lambda d: "alpha" in v.js("return document.querySelector('.legend').textContent"), 20, "the legend")
            swatches = dict(v.js("return [...document.querySelectorAll('.legend li.legend-row')]"
                                 ".map(li => [li.textContent.trim(), li.querySelector('.swatch').dataset.color])"))
            rgb = {k: [int(c[i:i + 2], 16) for i in (1, 3, 5)] for k, c in swatches.items()}

            def nearest(px):
                return min(rgb, key=lambda k: sum((a - b) ** 2 for a, b in zip(rgb[k], px[:3])))
            assert nearest(v.pixel("public-map", "l1", 48.85, 2.35)) == nearest(colours["alpha"]) == "alpha", (swatches, colours)
            v.find(".widget[data-type=category] button.cat[data-category=alpha][aria-pressed=true]")
            legend = v.find(".legend")
            if size == B.PHONE:  # folded on phones so that it hides no data; a tap unfolds it
                assert legend.get_attribute("open") is None
                legend.find_element(B.By.CSS_SELECTOR, "summary").click()
            assert "alpha" in legend.text
            assert v.overflow_x() <= 1
            if size == B.DESKTOP:
                # Hovering a point shows its tooltip (the field chosen in the builder).
                tip = v.pointer_until("public-map", 48.85, 2.35, lambda: v._visible(".feature-tip"), "the tooltip of the point at Paris")
                assert re.search(r"name\s*place \d+", tip.text), tip.text
            v.shot(f"journey-08-{tag}")
        finally:
            v.quit()


def test_password_reset_and_unknown_map(stack, api, admin, chrome_ok):
    """A reset link from the admin CLI sets a new password; an unknown public map says so; the login
    form works at 390 px with the keyboard."""
    email, old = f"{h.unique('reset')}@example.org", "old-password-" + os.urandom(4).hex()
    r = api.post("/api/v3/invitations", json_body={"email": email, "role": "viewer"}, session=admin.session)
    assert r.status == 201, r
    assert api.post("/api/v3/auth/invitations/accept", json_body={"token": r.json()["token"], "password": old}).status == 201
    link = urllib.parse.urlsplit(stack.tessera("password-reset-link", "--email", email).strip().splitlines()[-1])
    assert link.fragment.startswith("/reset?token="), link

    v = B.Browser(f"http://127.0.0.1:{stack.http_port}", B.PHONE, "reset")
    try:
        v.open("/map/does-not-exist")
        assert "not available" in v.find("h3").text

        new = "new-password-" + os.urandom(4).hex()
        v.open(f"{link.path}#{link.fragment}")
        assert "new password" in v.find("h1").text.lower()
        fields = v.all("input[type=password]")
        fields[0].send_keys(new)
        fields[1].send_keys(new + "x", B.Keys.ENTER)
        assert "do not match" in v.find(".field-error:not([hidden])").text
        fields[1].clear()
        fields[1].send_keys(new, B.Keys.ENTER)
        assert "changed" in v.find("p.notice").text
        v.shot("reset-done-phone")
        # the link works once
        v.open("/acc/#/login")
        v.find("input[type=email]")
        v.open(f"{link.path}#{link.fragment}")
        v.wait(lambda d: "new password" in v.find("h1").text.lower(), 20, "the reset form again")
        for f in v.all("input[type=password]"):
            f.send_keys("another-password-1")
        v.active().send_keys(B.Keys.ENTER)
        assert "invalid" in v.find(".form-error:not([hidden])").text

        v.open("/acc/#/login")
        v.find("input[type=email]").send_keys(email)
        assert v.overflow_x() <= 1
        v.active().send_keys(B.Keys.TAB)
        assert v.active().get_attribute("type") == "password"
        assert v.focus_ring().startswith("solid")
        v.active().send_keys(old, B.Keys.ENTER)
        assert "not right" in v.find(".form-error:not([hidden])").text, "the old password no longer works"
        v.shot("login-error-phone")
        v.active().send_keys(new, B.Keys.ENTER)
        v.wait(lambda d: "/acc/" not in d.current_url, 20, "the workspace after signing in")
        v.find("nav.nav")
        assert not v.all("#new-map"), "viewers get no create button"
        v.find(".sidebar .me a[href='/acc/#/logout']").click()
        assert "signed out" in v.find("p.notice").text
        v.open("/#/maps")
        v.wait(lambda d: "/acc/#/login" in d.current_url, 20, "back to the login after signing out")
    finally:
        v.quit()
        # The session stack is shared: leave no reset token behind for suites that count them.
        h.metadata(stack, "DELETE FROM password_resets WHERE user_id IN "
                          f"(SELECT id FROM users WHERE email = '{email}')")
